package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/clientauth"
	"github.com/hale-ehr/hale/rest"
)

// authService builds the auth service on store with cfg's secret key and
// URLs. fhirBase is the FHIR base URL tokens are for (cfg.BaseURL, or
// the one serve derives from its listener). Each of more may set further
// options (the audit hook, demo mode, a logger).
func authService(ctx context.Context, cfg Config, store hale.Store, fhirBase string, more ...func(*auth.Options)) (*auth.Service, error) {
	rec, ok := store.(hale.Records)
	if !ok {
		return nil, errors.New("the store keeps no records")
	}
	var key []byte
	var err error
	if cfg.SecretKey != "" {
		key, err = auth.ParseSecretKey(cfg.SecretKey)
	} else {
		key, err = auth.LoadSecretKeyFile(filepath.Join(cfg.Data, "secret.key"))
	}
	if err != nil {
		return nil, err
	}
	if fhirBase == "" {
		fhirBase = cfg.BaseURL
	}
	if fhirBase == "" {
		fhirBase = cfg.scheme() + "://" + cfg.Addr + "/fhir"
	}
	u, err := url.Parse(fhirBase)
	if err != nil {
		return nil, err
	}
	issuer := u.Scheme + "://" + u.Host + "/auth"
	opts := auth.Options{Records: rec, SecretKey: key, Issuer: issuer, Audience: fhirBase}
	for _, f := range more {
		f(&opts)
	}
	return auth.New(ctx, opts)
}

// splitFlags separates a subcommand's own flags (those fs defines) from
// the storage settings, which go to LoadConfig as `hale serve` reads them.
// parseFlags parses a command's own flags from args into fs and returns
// the store flags (--data, --database, …) for LoadConfig; --help prints
// usage and returns flag.ErrHelp. Errors are prefixed with fs's name.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) ([]string, error) {
	own, storeArgs, err := splitFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil, err
	}
	if err == nil {
		err = fs.Parse(own)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", fs.Name(), err)
	}
	return storeArgs, nil
}

func splitFlags(fs *flag.FlagSet, args []string) (own, storeArgs []string, err error) {
	takesValue := map[string]bool{"config": true}
	var probe Config
	for _, s := range settings(&probe) {
		_, isBool := s.ptr.(*bool)
		takesValue[s.flag] = !isBool
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, nil, fmt.Errorf("unexpected argument %q", a)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		dst := &storeArgs
		f := fs.Lookup(name)
		switch {
		case name == "h" || name == "help":
			return nil, nil, flag.ErrHelp
		case f != nil:
			dst = &own
		case takesValue[name] || name == "no-demo":
		default:
			return nil, nil, fmt.Errorf("unknown flag %s", a)
		}
		*dst = append(*dst, a)
		isBool := false
		if f != nil {
			bf, ok := f.Value.(interface{ IsBoolFlag() bool })
			isBool = ok && bf.IsBoolFlag()
		}
		if !hasValue && (f != nil && !isBool || f == nil && takesValue[name]) && i+1 < len(args) {
			i++
			*dst = append(*dst, args[i])
		}
	}
	return own, storeArgs, nil
}

// listFlag is a flag that may be repeated or given comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const userUsage = `Usage: hale user add --username NAME --role ROLE --password-stdin
                     [--organization ID]… [--fhir-user Practitioner/ID] [--data DIR | --database URL]

Creates a user account in the data folder or database, also while hale serve runs.
The password is read from the first line of standard input (at least 12 characters).
Roles: physician, nurse, frontdesk, billing, admin, patient. Admins and physicians must
use a one-time code: the command prints the otpauth:// URI to enrol in an authenticator
app (shown once).
`

const userResetUsage = `Usage: hale user reset --username NAME [--base URL] [--data DIR | --database URL]

Issues a one-time password-reset code for the user (valid 24 hours, usable once) and
prints the link to hand to the user out of band: <base>/app/reset?code=…
The base is --base (e.g. https://ehr.example.org), else the scheme and host of the
base_url setting (HALE_BASE_URL), else http(s)://ADDR from the addr setting.
The user's one-time-code enrolment (if any) is kept.
`

const userRoleUsage = `Usage: hale user role --username NAME --role ROLE [--organization ID]… [--data DIR | --database URL]

Changes a user's role and, with --organization (repeatable), the organizations whose patients
the role applies to (without it they are kept). It takes effect at the user's next request.
A role that must use a one-time code gets one if the account has none: the command prints the
otpauth:// URI to enrol (shown once). An account cannot move into or out of the patient role.
`

// userCommand implements `hale user add`, `hale user role` and `hale
// user reset`.
func userCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "reset" {
		return userResetCommand(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "role" {
		return userRoleCommand(ctx, args[1:], getenv, stdout)
	}
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stdout, userUsage+"\n"+userRoleUsage+"\n"+userResetUsage)
		return errors.New("hale user: expected \"add\", \"role\" or \"reset\"")
	}
	fs := flag.NewFlagSet("hale user add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	username := fs.String("username", "", "")
	role := fs.String("role", "", "")
	pwStdin := fs.Bool("password-stdin", false, "")
	fhirUser := fs.String("fhir-user", "", "")
	var orgs listFlag
	fs.Var(&orgs, "organization", "")
	storeArgs, err := parseFlags(fs, args[1:], userUsage, stdout)
	if err != nil {
		return err
	}
	if *username == "" || *role == "" || !*pwStdin {
		fmt.Fprint(stdout, userUsage)
		return errors.New("hale user add: --username, --role and --password-stdin are required")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	password := strings.TrimRight(line, "\r\n")
	ctx, svc, done, err := operatorAuth(ctx, "hale user add", "hale user", storeArgs, getenv)
	if err != nil {
		return err
	}
	defer done()
	c, err := svc.AddUser(ctx, auth.NewUser{Username: *username, Password: password, Role: hale.Role(*role),
		FHIRUser: *fhirUser, Organizations: orgs})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s created: id %s, role %s\n", c.User.Username, c.User.ID, c.User.Role)
	if c.ProvisioningURI != "" {
		fmt.Fprintf(stdout, "this role logs in with a one-time code; enrol this URI in an authenticator app (shown once):\n%s\n", c.ProvisioningURI)
	}
	return nil
}

// operatorAudit starts the audit recorder of a command that changes
// accounts on the data folder or database (docs/security.md, "Audit
// trail"): its changes are recorded as made by the operator's command,
// from this host. closeRecorder writes what is queued.
func operatorAudit(ctx context.Context, cfg Config, store hale.Store, command string, getenv func(string) string) (context.Context, *audit.Recorder, error) {
	rec, err := newAuditRecorder(cfg, store, rest.NewService(store), discardLogger())
	if err != nil {
		return ctx, nil, err
	}
	go rec.Run()
	user := getenv("USER")
	if user == "" {
		user = "operator"
	}
	ctx = hale.WithPrincipal(ctx, &hale.Principal{Subject: "system/hale-cli", Name: command + " (" + user + ")",
		Role: hale.RoleSystem, Address: "local"})
	return ctx, rec, nil
}

// operatorAuth opens the data folder or database of a command that
// changes accounts (cmd names it in errors, command in the audit trail)
// and returns its auth service, recording through operatorAudit, and
// done, which writes the queued audit records and closes the store.
func operatorAuth(ctx context.Context, cmd, command string, storeArgs []string, getenv func(string) string) (context.Context, *auth.Service, func(), error) {
	cfg, err := LoadConfig(cmd, storeArgs, getenv)
	if err != nil {
		return ctx, nil, nil, err
	}
	store, _, err := openStore(ctx, cfg)
	if err != nil {
		return ctx, nil, nil, err
	}
	ctx, rec, err := operatorAudit(ctx, cfg, store, command, getenv)
	if err != nil {
		store.Close()
		return ctx, nil, nil, err
	}
	done := func() {
		closeRecorder(rec)
		store.Close()
	}
	svc, err := authService(ctx, cfg, store, "", func(o *auth.Options) { o.Audit = rec })
	if err != nil {
		done()
		return ctx, nil, nil, err
	}
	return ctx, svc, done, nil
}

func closeRecorder(rec *audit.Recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec.Close(ctx)
}

// userRoleCommand implements `hale user role` (auth.Service.SetRole).
func userRoleCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hale user role", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	username := fs.String("username", "", "")
	role := fs.String("role", "", "")
	var orgs listFlag
	fs.Var(&orgs, "organization", "")
	storeArgs, err := parseFlags(fs, args, userRoleUsage, stdout)
	if err != nil {
		return err
	}
	if *username == "" || *role == "" {
		fmt.Fprint(stdout, userRoleUsage)
		return errors.New("hale user role: --username and --role are required")
	}
	ctx, svc, done, err := operatorAuth(ctx, "hale user role", "hale user role", storeArgs, getenv)
	if err != nil {
		return err
	}
	defer done()
	u, err := svc.UserByName(ctx, *username)
	if hale.IsKind(err, hale.KindNotFound) {
		return fmt.Errorf("hale user role: there is no user %q", *username)
	}
	if err != nil {
		return err
	}
	var set []string // nil keeps the organizations
	if len(orgs) > 0 {
		set = orgs
	}
	c, err := svc.SetRole(ctx, u.ID, hale.Role(*role), set)
	if err != nil {
		return fmt.Errorf("hale user role: %w", err)
	}
	fmt.Fprintf(stdout, "user %s: role %s, organizations %s\n", c.User.Username, c.User.Role, strings.Join(c.User.Organizations, " "))
	if c.ProvisioningURI != "" {
		fmt.Fprintf(stdout, "this role logs in with a one-time code; enrol this URI in an authenticator app (shown once):\n%s\n", c.ProvisioningURI)
	}
	return nil
}

// userResetCommand implements `hale user reset` (auth.Service.IssueReset).
func userResetCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hale user reset", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	username := fs.String("username", "", "")
	base := fs.String("base", "", "")
	storeArgs, err := parseFlags(fs, args, userResetUsage, stdout)
	if err != nil {
		return err
	}
	if *username == "" {
		fmt.Fprint(stdout, userResetUsage)
		return errors.New("hale user reset: --username is required")
	}
	cfg, err := LoadConfig("hale user reset", storeArgs, getenv)
	if err != nil {
		return err
	}
	origin, err := resetOrigin(*base, cfg)
	if err != nil {
		return fmt.Errorf("hale user reset: %v", err)
	}
	store, _, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := authService(ctx, cfg, store, "")
	if err != nil {
		return err
	}
	u, err := svc.UserByName(ctx, *username)
	if hale.IsKind(err, hale.KindNotFound) {
		return fmt.Errorf("hale user reset: there is no user %q", *username)
	}
	if err != nil {
		return err
	}
	code, err := svc.IssueReset(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "one-time reset link for %s (valid %s, usable once; hand it over in person or by a trusted channel):\n%s/app/reset?code=%s\n",
		u.Username, auth.ResetTTL, origin, url.QueryEscape(code))
	return nil
}

// resetOrigin is the scheme and host the reset link points to: base, else
// those of cfg.BaseURL, else the listen address.
func resetOrigin(base string, cfg Config) (string, error) {
	if base == "" && cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil {
			return "", err
		}
		base = u.Scheme + "://" + u.Host
	}
	if base == "" {
		return cfg.scheme() + "://" + cfg.Addr, nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--base %q: expected an http:// or https:// URL", base)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

const clientUsage = `Usage: hale client add --name NAME --scope SCOPES (--jwks FILE | --new-key FILE | --public)
                       [--redirect-uri URI]… [--data DIR | --database URL]

Registers a SMART client and prints its client id. --jwks is the client's public key set
(JSON Web Key Set; RSA keys sign RS384, EC P-384 keys ES384); --new-key instead makes an
EC P-384 key, writes it to FILE (PEM, mode 0600) and registers its public half, for
hale token, hale import --url and hale bench --url (--client-id ID --client-key FILE).
Without --redirect-uri it is a backend-services client (client_credentials), and its
scopes must be system/ scopes, e.g. "system/*.rs" or "system/Patient.read system/Observation.read".

With --redirect-uri (repeatable; exact https URIs, or http on the loopback address) it is a
SMART app (authorization code with PKCE): its scopes are patient/ and user/ scopes and, to
allow refresh tokens, offline_access or online_access, e.g.
  --scope "patient/*.rs user/Patient.rs offline_access"
(launch, launch/patient, openid and fhirUser need not be listed). An app that cannot keep a
key (a browser or native app) is registered --public, without a key; a confidential app
authenticates at the token endpoint with a private_key_jwt assertion signed by its key.
`

// clientCommand implements `hale client add`.
func clientCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stdout, clientUsage)
		return errors.New("hale client: expected \"add\"")
	}
	fs := flag.NewFlagSet("hale client add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "")
	scope := fs.String("scope", "", "")
	jwksFile := fs.String("jwks", "", "")
	public := fs.Bool("public", false, "")
	newKey := fs.String("new-key", "", "")
	var redirects listFlag
	fs.Var(&redirects, "redirect-uri", "")
	storeArgs, err := parseFlags(fs, args[1:], clientUsage, stdout)
	if err != nil {
		return err
	}
	keys := 0
	for _, set := range []bool{*jwksFile != "", *newKey != "", *public} {
		if set {
			keys++
		}
	}
	if *name == "" || *scope == "" || keys != 1 {
		fmt.Fprint(stdout, clientUsage)
		return errors.New("hale client add: --name, --scope and one of --jwks, --new-key or --public are required")
	}
	var jwks []byte
	if *jwksFile != "" {
		if jwks, err = os.ReadFile(*jwksFile); err != nil {
			return fmt.Errorf("hale client add: %v", err)
		}
	}
	cfg, err := LoadConfig("hale client add", storeArgs, getenv)
	if err != nil {
		return err
	}
	store, _, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := authService(ctx, cfg, store, "")
	if err != nil {
		return err
	}
	if *newKey != "" {
		key, err := clientauth.NewKey(*newKey)
		if err != nil {
			return fmt.Errorf("hale client add: --new-key: %v", err)
		}
		jwks = key.PublicJWKS()
	}
	c, err := svc.AddClient(ctx, auth.NewClient{Name: *name, Scopes: strings.Fields(*scope), JWKS: jwks, RedirectURIs: redirects,
		Public: *public})
	if err != nil {
		if *newKey != "" {
			os.Remove(*newKey)
		}
		return err
	}
	fmt.Fprintln(stdout, c.ID)
	return nil
}
