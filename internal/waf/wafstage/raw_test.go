package wafstage

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
)

// The stage splits the raw head itself (one copy for all fields): it must
// find the same fields as Exchange.VisitRawHeaders.
func TestRawFieldsMatchVisitRawHeaders(t *testing.T) {
	for _, head := range []string{
		"",
		"\r\n",
		"Host: a\r\n\r\n",
		"Host: a\r\nUser-Agent: \r\nAccept:*/*\r\n\r\n",
		"host:\ta b \t\r\nX-Empty:\r\nCookie: a; b=c; =d\r\n\r\nbody: not a field\r\n",
		"Host: a\nX-Bare-LF: yes\n\nAfter: end\n",
		"no colon here\r\n: no name\r\nX: 1\r\n\r\n",
		"X: last line without CRLF",
		"Connection: close,close\r\nconnection: Keep-Alive\r\n\r\n",
	} {
		x := &dataplane.Exchange{RawHeaders: []byte(head)}
		var want, got [][2]string
		x.VisitRawHeaders(func(n, v []byte) { want = append(want, [2]string{string(n), string(v)}) })
		rawFields(head, func(n, v string) { got = append(got, [2]string{n, v}) })
		if !slices.Equal(got, want) {
			t.Errorf("head %q: stage splits %q, VisitRawHeaders %q", head, got, want)
		}
	}
}

func TestAnnouncesBody(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"Content-Length", "12", true},
		{"content-length", "0", false},
		{"CONTENT-LENGTH", "00", true},
		{"Transfer-Encoding", "chunked", true},
		{"transfer-encoding", "", true},
		{"Content-Type", "text/plain", false},
		{"Content-Lengths", "1", false},
	} {
		if got := announcesBody(c.name, c.value); got != c.want {
			t.Errorf("%s: %s: got %v", c.name, c.value, got)
		}
		if got := announcesBody([]byte(c.name), []byte(c.value)); got != c.want {
			t.Errorf("%s: %s (bytes): got %v", c.name, c.value, got)
		}
	}
}

func TestURI(t *testing.T) {
	for _, c := range []struct {
		raw, path, query, want string
	}{
		{"/get/file:%2f%2f/etc//passwd?a=%41", "/get/file://etc/passwd", "a=%41", "/get/file:%2f%2f/etc//passwd?a=%41"},
		{"http://localhost", "/", "", "http://localhost"},
		// No raw target (an engine that gives none): rebuilt, with what a
		// decoded path cannot carry escaped again.
		{"", "/a b/%/?", "x=1", "/a%20b/%25/%3F?x=1"},
		{"", "/plain", "", "/plain"},
	} {
		x := &dataplane.Exchange{RawTarget: []byte(c.raw), Path: []byte(c.path), RawQuery: []byte(c.query)}
		if got := uri(x); got != c.want {
			t.Errorf("target %q path %q: uri %q, want %q", c.raw, c.path, got, c.want)
		}
	}
}

// sendRaw writes a request as given and returns the status.
func sendRaw(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ruleIDs collects the rule IDs of a load balancer's events for up to
// wait, until want is among them (events are emitted when the exchange is
// done, which may follow the answer).
func ruleIDs(lb string, want int, wait time.Duration) []int {
	var ids []int
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		for _, e := range events.takeAll(lb) {
			for _, r := range e.Rules {
				ids = append(ids, r.ID)
			}
		}
		if slices.Contains(ids, want) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ids
}

// TestStageSeesTheRequestAsSent sends requests whose meaning lies in what
// the engine's parsed view hides (an empty value, a repeated Connection
// token, an absolute-form target, encodings in the path, a raw Cookie
// header) and checks the rule that needs it fires, and that the same
// request without the trait does not fire it.
func TestStageSeesTheRequestAsSent(t *testing.T) {
	addr := startFront(t, "raw", v1.AppFirewallSpec{Mode: v1.AppFirewallMonitor, ParanoiaLevel: 2}, reflectBackend(t))
	const ua = "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
	const accept = "Accept: text/html\r\n"
	for _, c := range []struct {
		name, attack, benign string
		rule                 int
	}{
		{"empty User-Agent", "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \r\n" + accept + "\r\n",
			"GET / HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "\r\n", 920330},
		{"absolute-form target without a path", "GET http://localhost HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "\r\n",
			"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "\r\n", 920100},
		{"repeated Connection token", "GET / HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "Connection: close,close\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "Connection: close\r\n\r\n", 920210},
		{"encoded slashes in the path", "GET /get/file:%2f%2f/usr/src/etc/passwd HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "\r\n",
			"GET /get/file/usr/src/etc/passwd HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "\r\n", 931131},
		{"raw Cookie header", "GET /get HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "Cookie: c=require(\"child_process\").exec('whoami')\r\n\r\n",
			"GET /get HTTP/1.1\r\nHost: localhost\r\n" + ua + accept + "Cookie: c=plain\r\n\r\n", 934101},
	} {
		if st := sendRaw(t, addr, c.benign); st != 200 {
			t.Fatalf("%s: benign request answered %d", c.name, st)
		}
		// (Not matching cannot be waited for: a short look, which a
		// late event can only make pass, not fail.)
		if ids := ruleIDs("t/raw", c.rule, 250*time.Millisecond); slices.Contains(ids, c.rule) {
			t.Errorf("%s: benign request matched %d (%v)", c.name, c.rule, ids)
		}
		if st := sendRaw(t, addr, c.attack); st != 200 {
			t.Fatalf("%s: request answered %d in monitor mode", c.name, st)
		}
		if ids := ruleIDs("t/raw", c.rule, 15*time.Second); !slices.Contains(ids, c.rule) {
			t.Errorf("%s: rule %d did not match (matched %v)", c.name, c.rule, ids)
		}
	}
}
