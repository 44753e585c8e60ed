package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/httpsec"
)

// Config is every setting of `hale serve`. Values come from, in rising
// order of precedence: the defaults, a JSON config file, HALE_*
// environment variables, and command-line flags.
type Config struct {
	Addr              string `json:"addr"`               // listen address, HOST:PORT
	Data              string `json:"data"`               // data folder for the embedded SQLite database
	Database          string `json:"database"`           // postgres://… to use PostgreSQL instead of SQLite
	NoDemo            bool   `json:"no_demo"`            // do not load the demo patients into an empty database
	BaseURL           string `json:"base_url"`           // public FHIR base URL when behind a proxy
	MaxBodyBytes      int64  `json:"max_body_bytes"`     // request body limit
	SQLiteSynchronous string `json:"sqlite_synchronous"` // FULL (default) or NORMAL
	LogLevel          string `json:"log_level"`          // debug, info, warn, error
	SearchCount       int64  `json:"search_count"`       // default _count of searches and history
	SearchMaxCount    int64  `json:"search_max_count"`   // largest _count honoured
	// SecretKey seals TOTP seeds and signing keys (package auth): 32
	// bytes in base64. Empty: the file secret.key in the data folder,
	// created on first use. Nodes sharing a PostgreSQL database must all
	// be given the same key.
	SecretKey string `json:"secret_key"`

	// HTTP hardening (package internal/httpsec, docs/security.md "HTTP").
	TLSCert       string `json:"tls_cert"`        // PEM certificate (chain) file: serve HTTPS
	TLSKey        string `json:"tls_key"`         // PEM private key file of tls_cert
	TLSSelfSigned bool   `json:"tls_self_signed"` // serve HTTPS with a self-signed certificate made in the data folder (development)
	CORSOrigins   string `json:"cors_origins"`    // comma-separated origins allowed to call the API from browsers (SMART apps)
	RateLimit     int64  `json:"rate_limit"`      // requests a minute per caller (principal, else address); 0: no limit
	RateBurst     int64  `json:"rate_burst"`      // requests a caller may send at once above the rate
}

// DefaultConfig is what `hale serve` runs with when nothing is set.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		Data:              "hale-data",
		MaxBodyBytes:      16 << 20,
		SQLiteSynchronous: "FULL",
		LogLevel:          "info",
		SearchCount:       50,
		SearchMaxCount:    1000,
		RateLimit:         6000,
		RateBurst:         1000,
	}
}

// setting describes one setting for the three sources.
type setting struct {
	flag, env, help string
	ptr             any // *string, *bool or *int64 field of Config
}

func settings(c *Config) []setting {
	return []setting{
		{"addr", "HALE_ADDR", "listen address HOST:PORT", &c.Addr},
		{"data", "HALE_DATA", "data folder for the embedded SQLite database", &c.Data},
		{"database", "HALE_DATABASE", "PostgreSQL URL (postgres://…) to use instead of SQLite", &c.Database},
		{"no-demo", "HALE_NO_DEMO", "do not load demo patients into an empty database", &c.NoDemo},
		{"base-url", "HALE_BASE_URL", "public FHIR base URL (default: derived from each request)", &c.BaseURL},
		{"max-body-bytes", "HALE_MAX_BODY_BYTES", "largest request body accepted, in bytes", &c.MaxBodyBytes},
		{"sqlite-synchronous", "HALE_SQLITE_SYNCHRONOUS", "SQLite synchronous mode: FULL or NORMAL", &c.SQLiteSynchronous},
		{"log-level", "HALE_LOG_LEVEL", "log level: debug, info, warn or error", &c.LogLevel},
		{"search-count", "HALE_SEARCH_COUNT", "default page size of searches (_count)", &c.SearchCount},
		{"search-max-count", "HALE_SEARCH_MAX_COUNT", "largest page size a search may ask for", &c.SearchMaxCount},
		{"secret-key", "HALE_SECRET_KEY", "key sealing TOTP seeds and signing keys, 32 bytes base64 (default: secret.key in the data folder)", &c.SecretKey},
		{"tls-cert", "HALE_TLS_CERT", "serve HTTPS with this PEM certificate file (with --tls-key)", &c.TLSCert},
		{"tls-key", "HALE_TLS_KEY", "PEM private key file of --tls-cert", &c.TLSKey},
		{"tls-self-signed", "HALE_TLS_SELF_SIGNED", "serve HTTPS with a self-signed certificate kept in the data folder (development only)", &c.TLSSelfSigned},
		{"cors-origins", "HALE_CORS_ORIGINS", "comma-separated origins (https://app.example.org) whose browser apps may call the API", &c.CORSOrigins},
		{"rate-limit", "HALE_RATE_LIMIT", "requests a minute per caller before 429 (0: no limit)", &c.RateLimit},
		{"rate-burst", "HALE_RATE_BURST", "requests a caller may send at once above the rate", &c.RateBurst},
	}
}

// LoadConfig builds the configuration from defaults, the config file
// (--config, else $HALE_CONFIG, else ./hale.json if it exists), the
// environment and the flags in args. Unknown keys in the file, malformed
// values and unknown flags are errors.
func LoadConfig(name string, args []string, getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	configFile := fs.String("config", "", "JSON config file (default $HALE_CONFIG, else ./hale.json if present)")
	// Flags are parsed into a scratch config so that they can be applied
	// last, after the file and the environment.
	var flagged Config
	for _, s := range settings(&flagged) {
		switch p := s.ptr.(type) {
		case *string:
			fs.StringVar(p, s.flag, "", s.help+" ($"+s.env+")")
		case *bool:
			fs.BoolVar(p, s.flag, false, s.help+" ($"+s.env+")")
		case *int64:
			fs.Int64Var(p, s.flag, 0, s.help+" ($"+s.env+")")
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	path, required := *configFile, true
	if path == "" {
		path = getenv("HALE_CONFIG")
	}
	if path == "" {
		path, required = "hale.json", false
	}
	if err := readConfigFile(path, &c); err != nil && (required || !errors.Is(err, fs_ErrNotExist)) {
		return c, err
	}

	for _, s := range settings(&c) {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := setFromString(s.ptr, v); err != nil {
			return c, fmt.Errorf("$%s: %v", s.env, err)
		}
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	dst, src := settings(&c), settings(&flagged)
	for i, s := range src {
		if !set[s.flag] {
			continue
		}
		switch p := s.ptr.(type) {
		case *string:
			*dst[i].ptr.(*string) = *p
		case *bool:
			*dst[i].ptr.(*bool) = *p
		case *int64:
			*dst[i].ptr.(*int64) = *p
		}
	}
	return c, c.Validate()
}

var fs_ErrNotExist = fs.ErrNotExist

func readConfigFile(path string, c *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	return nil
}

func setFromString(ptr any, v string) error {
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*p = b
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
	}
	return nil
}

// Validate checks the settings at start-up, so a typo fails fast.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr %q: expected HOST:PORT", c.Addr)
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return fmt.Errorf("database %q: expected a postgres:// URL", c.Database)
	}
	if c.Database == "" && c.Data == "" {
		return errors.New("data: a data folder is needed for the embedded database")
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("max_body_bytes %d: must be at least 1024", c.MaxBodyBytes)
	}
	switch strings.ToUpper(c.SQLiteSynchronous) {
	case "FULL", "NORMAL":
	default:
		return fmt.Errorf("sqlite_synchronous %q: expected FULL or NORMAL", c.SQLiteSynchronous)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: expected debug, info, warn or error", c.LogLevel)
	}
	if c.SearchCount < 1 || c.SearchMaxCount < c.SearchCount {
		return fmt.Errorf("search_count %d and search_max_count %d: need 1 <= search_count <= search_max_count", c.SearchCount, c.SearchMaxCount)
	}
	if c.SecretKey != "" {
		if _, err := auth.ParseSecretKey(c.SecretKey); err != nil {
			return fmt.Errorf("secret_key: %v", err)
		}
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("base_url %q: expected an http:// or https:// URL", c.BaseURL)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert and tls_key: give both or neither")
	}
	if c.TLSSelfSigned && c.TLSCert != "" {
		return errors.New("tls_self_signed: not with tls_cert")
	}
	for _, o := range c.Origins() {
		if err := httpsec.CheckOrigin(o); err != nil {
			return fmt.Errorf("cors_origins: %v", err)
		}
	}
	if c.RateLimit < 0 || c.RateBurst < 0 || c.RateLimit > 0 && c.RateBurst < 1 {
		return fmt.Errorf("rate_limit %d and rate_burst %d: need rate_limit >= 0, and rate_burst >= 1 with a limit", c.RateLimit, c.RateBurst)
	}
	return nil
}

// TLS reports whether the server speaks HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" || c.TLSSelfSigned }

func (c Config) scheme() string {
	if c.TLS() {
		return "https"
	}
	return "http"
}

// Origins is the CORS allow-list.
func (c Config) Origins() []string {
	var out []string
	for _, o := range strings.Split(c.CORSOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}
