package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/search"
)

// The SMART tests drive the authorization pages as a browser would, with
// net/http: a cookie jar, no automatic redirects, and the forms read out
// of the HTML.

const (
	appRedirect  = "https://app.example/callback"
	appRedirect2 = "https://app.example/other"
)

// smartEnv is a Hale auth server (TLS, so the Secure cookies flow) with
// a FHIR stand-in behind the guard, apps, users and patients.
type smartEnv struct {
	*testEnv
	srv     *httptest.Server
	served  func() int64
	public  *Client // public app, PKCE only
	public2 *Client // another public app with the same redirect URI
	conf    *testClient
	confApp *Client // confidential app (private_key_jwt)
	nurse   *Created
	phys    *Created
	pat     *Created
}

func newSmartEnv(t *testing.T, st hale.Store) *smartEnv {
	t.Helper()
	e := &smartEnv{testEnv: newEnv(t, st)}
	e.svc.opts.Patients = StorePatients{Store: st, Fold: search.Fold}
	ctx := context.Background()
	var err error
	appScopes := []string{"patient/*.cruds", "user/*.rs", "user/Observation.cruds", "offline_access", "online_access"}
	e.public, err = e.svc.AddClient(ctx, NewClient{Name: "Growth Chart", Scopes: appScopes, Public: true,
		RedirectURIs: []string{appRedirect, appRedirect2}})
	if err != nil {
		t.Fatal(err)
	}
	e.public2, err = e.svc.AddClient(ctx, NewClient{Name: "Other App", Scopes: appScopes, Public: true,
		RedirectURIs: []string{appRedirect}})
	if err != nil {
		t.Fatal(err)
	}
	e.conf = registerClient(t, e.testEnv, "system/*.rs") // keys
	e.confApp, err = e.svc.AddClient(ctx, NewClient{Name: "Cardiology Suite", Scopes: appScopes, JWKS: e.conf.jwks,
		RedirectURIs: []string{"https://cardio.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	e.conf.id = e.confApp.ID
	e.nurse = addUser(t, e.testEnv, "nina", hale.RoleNurse)
	e.phys = addUser(t, e.testEnv, "phil", hale.RolePhysician)
	e.pat, err = e.svc.AddUser(ctx, NewUser{Username: "pat", Password: pw, Role: hale.RolePatient, FHIRUser: "Patient/pt-own"})
	if err != nil {
		t.Fatal(err)
	}
	putPatient(t, st, "pt-smith", "Alice", "Smith")
	putPatient(t, st, "pt-smythe", "Bob", "Smythe")
	putPatient(t, st, "pt-own", "Pat", "Jones")
	var n atomic.Int64
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hale.PrincipalFrom(r.Context()) == nil {
			w.WriteHeader(599)
			return
		}
		n.Add(1)
		w.Write([]byte("ok"))
	})
	mux := http.NewServeMux()
	mux.Handle("/auth/", e.svc.Handler())
	mux.Handle("GET /fhir/.well-known/smart-configuration", e.svc.SMARTConfigurationHandler())
	mux.Handle("/fhir/", next)
	e.srv = httptest.NewTLSServer(e.svc.Middleware(append(Public{"GET /fhir/.well-known/smart-configuration"}, PublicRoutes...), mux))
	t.Cleanup(e.srv.Close)
	e.served = n.Load
	return e
}

// putPatient stores a Patient with the name index rows a search needs.
func putPatient(t *testing.T, st hale.Store, id, given, family string) {
	t.Helper()
	data, _ := json.Marshal(map[string]any{"resourceType": "Patient", "id": id,
		"name": []any{map[string]any{"family": family, "given": []string{given}}}, "birthDate": "1980-02-03", "gender": "female"})
	err := st.Update(context.Background(), func(tx hale.Tx) error {
		return tx.Put(context.Background(), &hale.Version{Type: "Patient", ID: id, VersionID: 1, Method: "PUT", Data: data},
			&hale.Index{Strings: []hale.StringValue{
				{Param: "name", Norm: search.Fold(family), Exact: family},
				{Param: "name", Norm: search.Fold(given), Exact: given}}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// browser is a user agent: cookies kept, redirects not followed, a
// page's meta refresh followed (as browsers do).
type browser struct {
	t   *testing.T
	c   *http.Client
	e   *smartEnv
	jar *siteJar
}

// siteJar is a cookie jar that can play a navigation started by another
// site: while crossSite is set it sends no cookies, as a browser sends
// none of Hale's (all SameSite=Strict) on such a navigation.
type siteJar struct {
	http.CookieJar
	crossSite bool
}

func (j *siteJar) Cookies(u *url.URL) []*http.Cookie {
	if j.crossSite {
		return nil
	}
	return j.CookieJar.Cookies(u)
}

func (e *smartEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	sj := &siteJar{CookieJar: jar}
	c := *e.srv.Client()
	c.Jar = sj
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, c: &c, e: e, jar: sj}
}

// refreshRE finds a page's <meta http-equiv="refresh"> target.
var refreshRE = regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]+)">`)

// page is one response as the browser saw it.
type resp struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) *resp {
	b.t.Helper()
	r := b.doRaw(req)
	if m := refreshRE.FindStringSubmatch(r.body); m != nil && r.status == 200 {
		// The refresh is a navigation of Hale's own page: same-site.
		b.jar.crossSite = false
		next, _ := http.NewRequest("GET", b.e.srv.URL+html.UnescapeString(m[1]), nil)
		return b.do(next)
	}
	return r
}

// doRaw is do without following a meta refresh.
func (b *browser) doRaw(req *http.Request) *resp {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return &resp{status: res.StatusCode, header: res.Header, body: string(body)}
}

// getRaw is get without following a meta refresh.
func (b *browser) getRaw(path string, crossSite bool) *resp {
	b.jar.crossSite = crossSite
	defer func() { b.jar.crossSite = false }()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	if crossSite {
		req.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	return b.doRaw(req)
}

// getCrossSite is a navigation another site starts (an app's redirect
// to Hale): none of Hale's cookies go with it, and it says so in its
// Fetch Metadata.
func (b *browser) getCrossSite(path string) *resp {
	b.jar.crossSite = true
	defer func() { b.jar.crossSite = false }()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	return b.do(req)
}

// signInSession gives the browser a Hale session of username, as the
// clinician app's sign-in does.
func (b *browser) signInSession(username, code string) *Session {
	b.t.Helper()
	sess, err := b.e.svc.Login(context.Background(), username, pw, code, "10.0.0.5")
	if err != nil {
		b.t.Fatal(err)
	}
	u, _ := url.Parse(b.e.srv.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: SessionCookie, Value: sess.ID, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}})
	return sess
}

func (b *browser) get(path string) *resp {
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *resp {
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// htmlForm is a form of a page: where it goes and what it would send.
type htmlForm struct {
	method, action string
	fields         url.Values // hidden and pre-filled inputs, ticked checkboxes
	boxes          []string   // every checkbox value
}

var (
	formRE  = regexp.MustCompile(`(?s)<form method="(\w+)" action="([^"]+)"[^>]*>(.*?)</form>`)
	inputRE = regexp.MustCompile(`<input ([^>]*)>`)
	attrRE  = regexp.MustCompile(`([\w-]+)(?:="([^"]*)")?`)
)

func forms(body string) []htmlForm {
	var out []htmlForm
	for _, m := range formRE.FindAllStringSubmatch(body, -1) {
		f := htmlForm{method: strings.ToUpper(m[1]), action: html.UnescapeString(m[2]), fields: url.Values{}}
		for _, in := range inputRE.FindAllStringSubmatch(m[3], -1) {
			a := map[string]string{}
			for _, kv := range attrRE.FindAllStringSubmatch(in[1], -1) {
				a[kv[1]] = html.UnescapeString(kv[2])
			}
			_, checked := a["checked"]
			switch {
			case a["type"] == "checkbox":
				f.boxes = append(f.boxes, a["value"])
				if checked {
					f.fields.Add(a["name"], a["value"])
				}
			case a["value"] != "":
				f.fields.Set(a["name"], a["value"])
			}
		}
		out = append(out, f)
	}
	return out
}

// form returns the page's first form posting to action.
func (r *resp) form(t *testing.T, action string) htmlForm {
	t.Helper()
	return r.formM(t, "POST", action)
}

// formM returns the page's first form to action with method.
func (r *resp) formM(t *testing.T, method, action string) htmlForm {
	t.Helper()
	for _, f := range forms(r.body) {
		if f.action == action && f.method == method {
			return f
		}
	}
	t.Fatalf("no form %s on the page (status %d):\n%s", action, r.status, r.body)
	return htmlForm{}
}

func (b *browser) submit(f htmlForm, set url.Values) *resp {
	v := url.Values{}
	for k, vs := range f.fields {
		v[k] = slices.Clone(vs)
	}
	for k, vs := range set {
		v[k] = vs
	}
	if f.method == "GET" {
		return b.get(f.action + "?" + v.Encode())
	}
	return b.post(f.action, v)
}

// pkce is a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	buf := make([]byte, 32)
	rand.Read(buf)
	verifier = b64.EncodeToString(buf)
	return verifier, s256(verifier)
}

// authzQuery is a well-formed authorization request of app.
func authzQuery(app *Client, redirect, scope string) (q url.Values, verifier string) {
	verifier, challenge := pkce()
	return url.Values{"response_type": {"code"}, "client_id": {app.ID}, "redirect_uri": {redirect},
		"scope": {scope}, "state": {"st-" + randomID()}, "aud": {testAudience},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, verifier
}

// signIn fills the sign-in form.
func (b *browser) signIn(page *resp, username, code string) *resp {
	b.t.Helper()
	return b.submit(page.form(b.t, "/auth/authorize/signin"), url.Values{"username": {username}, "password": {pw}, "code": {code}})
}

// approve allows on the consent page, leaving unticked the scopes named.
func (b *browser) approve(page *resp, untick ...string) *resp {
	b.t.Helper()
	f := page.form(b.t, "/auth/authorize/consent")
	f.fields["scope"] = slices.DeleteFunc(f.fields["scope"], func(s string) bool { return slices.Contains(untick, s) })
	return b.submit(f, url.Values{"action": {"approve"}})
}

// redirected returns the query of the redirect to the app, failing if
// the response is not one to want.
func redirected(t *testing.T, r *resp, want string) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusFound && r.status != http.StatusSeeOther || !strings.HasPrefix(loc, want+"?") {
		t.Fatalf("want a redirect to %s, got %d Location %q:\n%s", want, r.status, loc, r.body)
	}
	u, _ := url.Parse(loc)
	return u.Query()
}

// flow runs a standalone authorization for username (nurse without a
// second factor) and returns the app's callback query and the verifier.
func (e *smartEnv) flow(t *testing.T, app *Client, redirect, scope, username string) (cb url.Values, verifier string, state string) {
	t.Helper()
	b := e.browser(t)
	q, verifier := authzQuery(app, redirect, scope)
	page := b.get("/auth/authorize?" + q.Encode())
	page = b.signIn(page, username, "")
	if strings.Contains(page.body, `action="/auth/authorize/patient"`) {
		page = b.submit(page.formM(t, "GET", "/auth/authorize/patient"), url.Values{"name": {"smith"}})
		page = b.submit(page.form(t, "/auth/authorize/patient"), nil) // the first one found
	}
	page = b.approve(page)
	return redirected(t, page, redirect), verifier, q.Get("state")
}

// token posts to the token endpoint.
func (e *smartEnv) token(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	status, body, _ := postForm(t, e.srv, "/auth/token", form, "")
	return status, body
}

func redeem(app *Client, code, redirect, verifier string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "client_id": {app.ID}}
	if verifier != "\x00" {
		f.Set("code_verifier", verifier)
	}
	return f
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }
