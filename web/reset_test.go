package web

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
)

var resetCodeRE = regexp.MustCompile(`name="code" value="([^"]+)"`)

// resetWith opens the link of code and submits the form; it returns the
// status and page of the POST.
func (c *client) resetWith(code, password, confirm string) (int, string) {
	c.e.t.Helper()
	status, page := c.get("/app/reset?code=" + url.QueryEscape(code))
	if status != 200 {
		c.e.t.Fatalf("GET reset: %d\n%s", status, page)
	}
	m := resetCodeRE.FindStringSubmatch(page)
	if m == nil || m[1] != code {
		c.e.t.Fatalf("the form does not carry the code:\n%s", page)
	}
	tok := tokenRE.FindStringSubmatch(page)[1]
	return c.post("/app/reset", url.Values{"token": {tok}, "code": {code}, "password": {password}, "confirm": {confirm}})
}

func TestPasswordResetPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u, err := e.auth.UserByName(ctx, testUser)
	if err != nil {
		t.Fatal(err)
	}
	code, err := e.auth.IssueReset(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	const newPassword = "a brand new passphrase"

	// Mistakes keep the code unspent.
	if status, page := c.resetWith(code, newPassword, newPassword+"x"); status != 400 || !strings.Contains(page, "not the same") {
		t.Fatalf("mismatch: %d\n%s", status, page)
	}
	if status, page := c.resetWith(code, "short", "short"); status != 400 || !strings.Contains(page, "password must be") {
		t.Fatalf("short: %d\n%s", status, page)
	}
	// Without the form's token (another site): refused.
	if status, _ := c.post("/app/reset", url.Values{"token": {"forged"}, "code": {code}, "password": {newPassword}, "confirm": {newPassword}}); status != 403 {
		t.Fatalf("forged token: %d", status)
	}
	status, page := c.resetWith(code, newPassword, newPassword)
	if status != 200 || !strings.Contains(page, "Your password was changed") {
		t.Fatalf("reset: %d\n%s", status, page)
	}
	// Nobody was signed in.
	if status, page := c.get("/app/"); status != 200 || !strings.Contains(page, "Sign in to Hale") {
		t.Fatalf("signed in after a reset: %d", status)
	}
	// Second use: refused with the same message as any bad link.
	status, page = c.resetWith(code, "yet another passphrase", "yet another passphrase")
	if status != 400 || !strings.Contains(page, "not valid") {
		t.Fatalf("second use: %d\n%s", status, page)
	}
	reused := page
	// The old password is gone, the new one works, and the second factor
	// is still asked for (kept by the reset).
	if _, err := e.auth.Login(ctx, testUser, testPassword, e.totp(0), "127.0.0.1"); err == nil {
		t.Fatal("the old password still works")
	}
	if _, err := e.auth.Login(ctx, testUser, newPassword, "", "127.0.0.1"); err != auth.ErrSecondFactor {
		t.Fatalf("login without the code: %v, want the second factor asked", err)
	}
	if _, err := e.auth.Login(ctx, testUser, newPassword, e.totp(0), "127.0.0.1"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}

	// A wrong code: the same answer, nothing about any account.
	status, page = c.resetWith("not-a-code-"+code[:8], newPassword, newPassword)
	if status != 400 || msgOf(page) != msgOf(reused) {
		t.Fatalf("wrong code: %d %q vs %q", status, msgOf(page), msgOf(reused))
	}
	// A link without a code.
	if status, page := c.get("/app/reset"); status != 400 || !strings.Contains(page, "not valid") || strings.Contains(page, `name="password"`) {
		t.Fatalf("no code: %d", status)
	}

	// Expired: a code issued 25 hours ago.
	past, err := auth.New(ctx, auth.Options{Records: e.store.(hale.Records), SecretKey: make([]byte, 32),
		Issuer: "http://hale.test/auth", Audience: "http://hale.test/fhir", Argon2: testArgon2,
		Now: func() time.Time { return time.Now().Add(-25 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	old, err := past.IssueReset(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	status, page = c.resetWith(old, "expired passphrase!", "expired passphrase!")
	if status != 400 || msgOf(page) != msgOf(reused) {
		t.Fatalf("expired: %d\n%s", status, page)
	}
	if _, err := e.auth.Login(ctx, testUser, newPassword, e.totp(1), "127.0.0.1"); err != nil {
		t.Fatalf("the expired code changed the password: %v", err)
	}
}

var alertRE = regexp.MustCompile(`role="alert"[^>]*>([^<]*)<`)

func msgOf(page string) string {
	if m := alertRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}
