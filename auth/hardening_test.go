package auth

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/hale-ehr/hale"
)

// fakeAudit records the login events it is told of.
type fakeAudit struct {
	mu     sync.Mutex
	events []string
}

func (f *fakeAudit) Login(ctx context.Context, who hale.Principal, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	outcome := "ok"
	if err != nil {
		outcome = "fail"
	}
	f.events = append(f.events, "login "+outcome+" "+who.Name+" "+who.Subject+" "+who.Address)
	return nil
}

func (f *fakeAudit) Logout(ctx context.Context, who hale.Principal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "logout "+who.Name+" "+who.Subject)
	return nil
}

// TestLoginAudit: every login success and failure, and every logout, is
// reported to Options.Audit; the "code needed" step is not a failure.
func TestLoginAudit(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	fa := &fakeAudit{}
	e.svc.opts.Audit = fa
	addUser(t, e, "nurse1", hale.RoleNurse)
	doc := addUser(t, e, "drwho", hale.RolePhysician)
	u, _ := e.svc.UserByName(context.Background(), "nurse1")
	srv, _ := guarded(e, PublicRoutes)
	defer srv.Close()
	form := func(u, p, c string) url.Values { return url.Values{"username": {u}, "password": {p}, "code": {c}} }
	postForm(t, srv, "/auth/login", form("nobody", "wrong-password", ""), "")
	postForm(t, srv, "/auth/login", form("nurse1", "wrong-password", ""), "")
	postForm(t, srv, "/auth/login", form("drwho", pw, ""), "") // asks for the code: not an event
	code, _ := TOTPCode(seedOf(t, doc.ProvisioningURI), e.clock.Now())
	postForm(t, srv, "/auth/login", form("drwho", pw, code), "")
	c, _, h := postForm(t, srv, "/auth/login", form("nurse1", pw, ""), "")
	if c != 200 {
		t.Fatalf("login: %d", c)
	}
	cookie := (&http.Response{Header: h}).Cookies()[0]
	req, _ := http.NewRequest("POST", srv.URL+"/auth/logout", nil)
	req.AddCookie(cookie)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []string{
		"login fail nobody  127.0.0.1",
		"login fail nurse1 user/" + u.ID + " 127.0.0.1",
		"login ok drwho user/" + doc.User.ID + " 127.0.0.1",
		"login ok nurse1 user/" + u.ID + " 127.0.0.1",
		"logout nurse1 user/" + u.ID,
	}
	if len(fa.events) != len(want) {
		t.Fatalf("events:\n%q\nwant\n%q", fa.events, want)
	}
	for i := range want {
		if fa.events[i] != want[i] {
			t.Errorf("event %d: %q, want %q", i, fa.events[i], want[i])
		}
	}
}

// TestDemoAccount: the demo account logs in without a second factor in
// demo mode only, and cannot be made outside it.
func TestDemoAccount(t *testing.T) {
	st := openSQLite(t)
	e := newEnv(t, st)
	ctx := context.Background()
	if _, err := e.svc.AddUser(ctx, NewUser{Username: "demo", Password: pw, Role: hale.RolePhysician, DemoNoMFA: true}); !hale.IsKind(err, hale.KindInvalid) {
		t.Fatalf("demo account outside demo mode: %v", err)
	}
	e.svc.opts.DemoMode = true
	c, err := e.svc.AddUser(ctx, NewUser{Username: "demo", Password: pw, Role: hale.RolePhysician, DemoNoMFA: true})
	if err != nil || c.ProvisioningURI != "" {
		t.Fatalf("demo account: %v %+v", err, c)
	}
	if _, err := e.svc.Login(ctx, "demo", pw, "", "192.0.2.1"); err != nil {
		t.Fatalf("demo login in demo mode: %v", err)
	}
	e.svc.opts.DemoMode = false
	if _, err := e.svc.Login(ctx, "demo", pw, "", "192.0.2.1"); err != ErrCredentials {
		t.Fatalf("demo login outside demo mode: %v", err)
	}
	// Other physicians still need their code in demo mode.
	e.svc.opts.DemoMode = true
	addUser(t, e, "drwho", hale.RolePhysician)
	if _, err := e.svc.Login(ctx, "drwho", pw, "", "192.0.2.1"); err != ErrSecondFactor {
		t.Fatalf("physician without a code in demo mode: %v", err)
	}
}

// TestPublicExact: "{$}" entries match their path only.
func TestPublicExact(t *testing.T) {
	p := Public{"GET /{$}", "GET /healthz"}
	for path, want := range map[string]bool{"/": true, "/x": false, "/fhir/Patient": false, "/healthz": true, "//": false} {
		req, _ := http.NewRequest("GET", "http://h", nil)
		req.URL.Path = path
		if p.Allows(req) != want {
			t.Errorf("%s: %v", path, !want)
		}
	}
}
