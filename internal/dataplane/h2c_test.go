package dataplane

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// TestH2CUpgradeNotProxied: an HTTP/1.1 request asking to upgrade to h2c
// (RFC 7540 §3.2, deprecated by RFC 9113 §3.1) is served as HTTP/1.1 and
// reaches the origin without the upgrade, with each HTTP/1.1 engine: were
// it passed on, an origin that supports h2c would switch protocols and the
// client would speak HTTP/2 straight to it, past the routes and stages
// ("h2c smuggling").
func TestH2CUpgradeNotProxied(t *testing.T) {
	o := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s upgrade=%q settings=%q", r.Proto, r.Header.Get("Upgrade"), r.Header.Get("HTTP2-Settings"))
	}), &http2.Server{}))
	defer o.Close()
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) {
			port, h2cPort := freePort(t), freePort(t)
			startServer(t, pool("web", hostOf(o.URL))+lbDoc([]string{listenerAt(port), listenerAt(h2cPort, "h2c: true")}, "{pool: web}"),
				Options{HTTP1Engine: engine})
			for _, p := range []int{port, h2cPort} {
				for _, conn := range []string{"Upgrade, HTTP2-Settings", "HTTP2-Settings, Upgrade, keep-alive"} {
					resp, body := rawHTTP1(t, fmt.Sprintf("127.0.0.1:%d", p), "GET / HTTP/1.1\r\nHost: a\r\nConnection: "+conn+
						"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
					if resp.StatusCode != 200 || !strings.Contains(body, `proto=HTTP/1.1 upgrade="" settings=""`) {
						t.Fatalf("port %d, Connection %s: %d %q, want the origin's 200 to a plain HTTP/1.1 request", p, conn, resp.StatusCode, body)
					}
				}
			}
		})
	}
}

func TestUpgradesToH2C(t *testing.T) {
	for v, want := range map[string]bool{"h2c": true, "websocket, H2C": true, " h2c ,x": true, "websocket": false, "h2": false, "h2cx": false, "": false} {
		if got := upgradesToH2C([]byte(v)); got != want {
			t.Errorf("upgradesToH2C(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestH2CHTTP1: what an h2c listener that did not get the preface hands
// to the HTTP/1.1 engine, and what it closes.
func TestH2CHTTP1(t *testing.T) {
	long := "GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\n"
	for in, want := range map[string]bool{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n":  true,
		"\r\n\r\nGET / HTTP/1.0\r\n":         true,
		"GET / HTTP/1.1\n":                   true,
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n":   true, // a version; the HTTP/1.1 engine answers it
		"GET / HTTP/1.1":                     true, // the client stopped: the engine decides
		long:                                 true, // longer than the buffer: the engine answers 414
		"INVALID CONNECTION PREFACE\r\n\r\n": false,
		"GET /\r\n":                          false,
		"GET / HTTP/11\r\n":                  false,
		"\x16\x03\x01\x02\x00\x01\r\n":       false,
	} {
		if got := h2cHTTP1(bufio.NewReaderSize(strings.NewReader(in), 4096)); got != want {
			t.Errorf("h2cHTTP1(%.40q) = %v, want %v", in, got, want)
		}
	}
}
