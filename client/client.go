package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"
	"unicode"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// TenantHeader lets a system-tenant admin act inside another tenant.
const TenantHeader = "X-Meridian-Tenant"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// Config says which console to talk to and as whom.
type Config struct {
	// Server is the console's base URL, e.g. "https://127.0.0.1:7443".
	Server string
	// Token is sent as "Authorization: Bearer <token>" (API token or
	// session token from Login). Empty sends no credentials.
	Token string
	// CAData is the PEM of the CA to trust for the console's certificate
	// (the console CA); CAFile is read when CAData is empty. With neither,
	// the system roots are used.
	CAData []byte
	CAFile string
	// Tenant, when set, is sent as X-Meridian-Tenant (system admins only).
	Tenant string
	// HTTPClient replaces the client built from CAData/CAFile.
	HTTPClient *http.Client
	// UserAgent is sent with every request; defaults to "meridian-client".
	UserAgent string
	// MaxRetries bounds how often a request answered 429 is retried after
	// the Retry-After delay; 0 means 3, negative means never.
	MaxRetries int
}

// Client talks to one console. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	token      string
	tenant     string
	userAgent  string
	maxRetries int
	http       *http.Client
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, errors.New("client: no server URL given")
	}
	base, err := url.Parse(strings.TrimRight(cfg.Server, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: parsing server URL %q: %w", cfg.Server, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" {
		return nil, fmt.Errorf("client: server URL %q must start with https:// (or http://)", cfg.Server)
	}
	c := &Client{base: base, token: cfg.Token, tenant: cfg.Tenant, userAgent: cfg.UserAgent, maxRetries: cfg.MaxRetries, http: cfg.HTTPClient}
	if c.userAgent == "" {
		c.userAgent = "meridian-client"
	}
	if c.maxRetries == 0 {
		c.maxRetries = 3
	}
	if c.http == nil {
		hc, err := httpClientFor(cfg)
		if err != nil {
			return nil, err
		}
		c.http = hc
	}
	return c, nil
}

func httpClientFor(cfg Config) (*http.Client, error) {
	caData := cfg.CAData
	if len(caData) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client: reading CA file: %w", err)
		}
		caData = b
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caData) {
			return nil, errors.New("client: the CA data holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	tr.TLSClientConfig = tlsCfg
	// No overall timeout: watches are long-lived; callers bound requests
	// with their context.
	return &http.Client{Transport: tr}, nil
}

// Server returns the console's base URL.
func (c *Client) Server() string { return c.base.String() }

// request is one API call.
type request struct {
	method      string
	path        string // escaped path, starting with /
	query       url.Values
	body        []byte
	contentType string
}

// send performs req and returns the response of a 2xx answer; any other
// answer becomes a *StatusError. 429 answers are retried after Retry-After.
func (c *Client) send(ctx context.Context, req request) (*http.Response, error) {
	u, err := url.Parse(c.base.String() + req.path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if req.body != nil {
			body = bytes.NewReader(req.body)
		}
		hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
		hr.Header.Set("Accept", "application/json")
		hr.Header.Set("User-Agent", c.userAgent)
		if req.body != nil {
			ct := req.contentType
			if ct == "" {
				ct = "application/json"
			}
			hr.Header.Set("Content-Type", ct)
		}
		if c.token != "" {
			hr.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.tenant != "" {
			hr.Header.Set(TenantHeader, c.tenant)
		}
		resp, err := c.http.Do(hr)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.method, u.Redacted(), err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		se := decodeStatusError(resp.StatusCode, resp.Header, data)
		if se.Code == http.StatusTooManyRequests && c.maxRetries > 0 && attempt < c.maxRetries {
			wait := se.RetryAfter
			if !se.retryAfterSet {
				wait = time.Second
			}
			if wait > 30*time.Second {
				return nil, se
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			continue
		}
		return nil, se
	}
}

// call performs req and decodes a JSON answer into out (nil: discard,
// *[]byte: raw bytes).
func (c *Client) call(ctx context.Context, req request, out any) error {
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", req.method, req.path, err)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	default:
		resetValue(out)
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding answer: %w", req.method, req.path, err)
		}
		return nil
	}
}

func jsonBody(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	if b, ok := v.(json.RawMessage); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// Resource says where a kind lives in the REST API.
type Resource struct {
	Kind       string
	Plural     string
	Namespaced bool
}

// ResourceFor resolves a kind (its Kind, plural, singular or short name) with
// api/v1's registry. A kind this build does not know (a newer console's)
// is guessed from its name: lower-case plural, namespaced when a namespace
// is given.
func ResourceFor(kind, namespace string) Resource {
	if ki, ok := v1.LookupKind(kind); ok {
		return Resource{Kind: ki.Kind, Plural: ki.Plural, Namespaced: ki.Scope == v1.ScopeNamespaced}
	}
	return Resource{Kind: kind, Plural: pluralize(strings.ToLower(kind)), Namespaced: namespace != ""}
}

func pluralize(s string) string {
	switch {
	case s == "":
		return s
	case strings.HasSuffix(s, "s"), strings.HasSuffix(s, "x"), strings.HasSuffix(s, "ch"), strings.HasSuffix(s, "sh"):
		return s + "es"
	case strings.HasSuffix(s, "y") && len(s) > 1 && !strings.ContainsRune("aeiou", rune(s[len(s)-2])):
		return s[:len(s)-1] + "ies"
	}
	return s + "s"
}

// Path returns the escaped REST path of a collection (name empty) or of
// one object, with an optional sub-resource ("history", "rollback").
// A namespaced kind with an empty namespace gives the cross-namespace
// collection.
func (r Resource) Path(namespace, name, sub string) string {
	var b strings.Builder
	b.WriteString("/api/v1/")
	if r.Namespaced && namespace != "" {
		b.WriteString("namespaces/")
		b.WriteString(url.PathEscape(namespace))
		b.WriteString("/")
	}
	b.WriteString(url.PathEscape(r.Plural))
	if name != "" {
		b.WriteString("/")
		b.WriteString(url.PathEscape(name))
		if sub != "" {
			b.WriteString("/")
			b.WriteString(sub)
		}
	}
	return b.String()
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '/' {
			return false
		}
	}
	return true
}

// resetValue zeroes what out points to, so that decoding an answer into an
// object that was sent does not keep fields the answer left out.
func resetValue(out any) {
	v := reflect.ValueOf(out)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().CanSet() {
		v.Elem().Set(reflect.Zero(v.Elem().Type()))
	}
}
