package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConfigRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "config.yaml")
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if len(cfg.Contexts) != 0 || cfg.CurrentContext != "" {
		t.Fatalf("missing file gives %+v", cfg)
	}
	want := &Config{
		CurrentContext: "prod",
		Contexts: []Context{
			{Name: "dev", Server: "https://127.0.0.1:7443", CAData: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", Token: "t1", Tenant: "system", Namespace: "default"},
			{Name: "prod", Server: "https://console:7443", Token: "t2", Tenant: "acme", ActAsTenant: true, Namespace: "retail"},
		},
	}
	if err := want.Save(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600 (it holds tokens)", st.Mode().Perm())
	}
	got, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	data, _ := os.ReadFile(p)
	for _, s := range []string{"current-context: prod", "caData: |", "name: dev"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("config file lacks %q:\n%s", s, data)
		}
	}
	if c, ok := got.Current(); !ok || c.Name != "prod" {
		t.Fatalf("current: %+v %v", c, ok)
	}
}

func TestConfigRejectsUnknownFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("contexts:\n- name: a\n  sever: https://typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "sever") {
		t.Fatalf("want an error naming the unknown field, got %v", err)
	}
}

func TestWriteContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := WriteContext(p, Context{Name: "a", Server: "https://a"}, false); err != nil {
		t.Fatal(err)
	}
	cfg, _ := LoadConfig(p)
	if cfg.CurrentContext != "a" {
		t.Fatalf("the first context becomes current, got %q", cfg.CurrentContext)
	}
	if err := WriteContext(p, Context{Name: "b", Server: "https://b"}, false); err != nil {
		t.Fatal(err)
	}
	cfg, _ = LoadConfig(p)
	if cfg.CurrentContext != "a" || len(cfg.Contexts) != 2 {
		t.Fatalf("without makeCurrent: %+v", cfg)
	}
	if err := WriteContext(p, Context{Name: "b", Server: "https://b2", Token: "x"}, true); err != nil {
		t.Fatal(err)
	}
	cfg, _ = LoadConfig(p)
	if c, _ := cfg.Current(); c.Name != "b" || c.Server != "https://b2" || len(cfg.Contexts) != 2 {
		t.Fatalf("replace and make current: %+v", cfg)
	}
	if err := WriteContext(p, Context{}, true); err == nil {
		t.Fatal("a context without a name must be refused")
	}
}

func TestDefaultConfigPath(t *testing.T) {
	t.Setenv(ConfigEnv, "/x/y.yaml")
	if p, _ := DefaultConfigPath(); p != "/x/y.yaml" {
		t.Fatalf("%s overrides: got %s", ConfigEnv, p)
	}
	t.Setenv(ConfigEnv, "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("HOME", "/home/u")
	p, err := DefaultConfigPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, filepath.Join("meridian", "config.yaml")) {
		t.Fatalf("default path %s", p)
	}
}
