package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./hale.json here
	c, err := LoadConfig("serve", nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.Data != "hale-data" || c.Database != "" || c.NoDemo || c.MaxBodyBytes != 16<<20 || c.SQLiteSynchronous != "FULL" {
		t.Errorf("defaults: %+v", c)
	}
}

// TestConfigPrecedence: file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hale.json")
	os.WriteFile(file, []byte(`{"addr":"127.0.0.1:1111","data":"from-file","no_demo":true,"max_body_bytes":2048}`), 0o600)

	c, err := LoadConfig("serve", []string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:1111" || c.Data != "from-file" || !c.NoDemo || c.MaxBodyBytes != 2048 {
		t.Errorf("file: %+v", c)
	}

	e := env(map[string]string{"HALE_CONFIG": file, "HALE_ADDR": "127.0.0.1:2222", "HALE_NO_DEMO": "false"})
	c, err = LoadConfig("serve", nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:2222" || c.Data != "from-file" || c.NoDemo {
		t.Errorf("env over file: %+v", c)
	}

	c, err = LoadConfig("serve", []string{"--addr", "127.0.0.1:3333", "--no-demo", "--database", "postgres://x@h/db"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:3333" || !c.NoDemo || c.Database != "postgres://x@h/db" {
		t.Errorf("flags over env: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"adr":"typo"}`), 0o600)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{[]string{"--config", bad}, nil, "adr"},
		{[]string{"--config", filepath.Join(dir, "missing.json")}, nil, "missing.json"},
		{[]string{"--addr", "nonsense"}, nil, "HOST:PORT"},
		{[]string{"--database", "mysql://x"}, nil, "postgres"},
		{nil, map[string]string{"HALE_NO_DEMO": "maybe"}, "HALE_NO_DEMO"},
		{[]string{"--sqlite-synchronous", "OFF"}, nil, "FULL or NORMAL"},
		{[]string{"--bogus"}, nil, "bogus"},
		{[]string{"--search-count", "500", "--search-max-count", "100"}, nil, "search_max_count"},
		{[]string{"extra"}, nil, "extra"},
	} {
		t.Chdir(dir)
		_, err := LoadConfig("serve", tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v %v: error %v, want one mentioning %q", tc.args, tc.env, err, tc.says)
		}
	}
}
