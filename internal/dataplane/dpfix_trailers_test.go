package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

// trailerOrigin is an HTTP/2 (h2c) origin that reports the request
// trailers it received and answers with trailers of its own: announced
// ones (X-Sum) and, after the body, an unannounced one (X-Late).
func trailerOrigin(t *testing.T) *httptest.Server {
	o := newTrailerServer()
	startH2C(t, o, true)
	return o
}

// newTrailerServer is trailerOrigin's server, not started.
func newTrailerServer() *httptest.Server {
	return httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var tr []string
		for k, vv := range r.Trailer {
			tr = append(tr, k+"="+strings.Join(vv, "|"))
		}
		sort.Strings(tr)
		w.Header().Set("Trailer", "X-Sum")
		report := fmt.Sprintf("body=%s;trailers=%s", b, strings.Join(tr, ","))
		if te := r.Header.Get("Te"); te != "" {
			report += ";te=" + te
		}
		if h := r.Header.Get("X-Checksum"); h != "" {
			report += ";header=" + h // a trailer turned into a header
		}
		if r.URL.Query().Get("len") != "" {
			w.Header().Set("Content-Length", fmt.Sprint(len(report)))
		}
		io.WriteString(w, report)
		if r.URL.Query().Get("len") == "" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		if r.URL.Query().Get("big") != "" {
			io.WriteString(w, strings.Repeat("x", bigAnswer)) // streams in many reads
		}
		w.Header().Set("X-Sum", fmt.Sprint(len(b)))
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
}

// bigAnswer is how many bytes trailerOrigin adds to its report for a
// request with the query "big".
const bigAnswer = 256 << 10

// rawHTTP1 sends a raw request on a new connection and reads one answer.
func rawHTTP1(t *testing.T, addr, req string) (*http.Response, string) {
	return rawHTTP1Method(t, addr, req, "")
}

// rawHTTP1Method is rawHTTP1 for a request whose method changes how the
// answer is framed (HEAD).
func rawHTTP1Method(t *testing.T, addr, req, method string) (*http.Response, string) {
	t.Helper()
	c := dialFor(t, addr, 10*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var r *http.Request
	if method != "" {
		r, _ = http.NewRequest(method, "http://"+addr+"/", nil)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

// TestH1ClientH2OriginTrailers checks trailers across an HTTP/1.1 client
// and an HTTP/2 pool, both ways: request trailers of a chunked body reach
// the origin as trailers (streamed or read ahead for a retry), response
// trailers reach the client in a chunked answer's trailer section when the
// answer is chunked anyway or the client said TE: trailers.
func TestH1ClientH2OriginTrailers(t *testing.T) {
	o := trailerOrigin(t)
	port := freePort(t)
	src := h1AndH2CPools("h1", "h2", hostOf(o.URL)) + lbDoc([]string{listenerAt(port)},
		`{match: {pathPrefix: /h1retry}, pool: h1, retries: {attempts: 2, "on": [reset], retryNonIdempotent: true}}`,
		`{match: {pathPrefix: /retry}, pool: h2, retries: {attempts: 2, "on": [reset], retryNonIdempotent: true}}`,
		"{match: {pathPrefix: /}, pool: h2}")
	startServer(t, src, Options{})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	const chunked = "Trailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
	cases := []struct {
		name, req string
		// wantBody is a part of the origin's report; wantTrailer the
		// trailers the client gets ("" none); chunked whether the answer
		// is chunked.
		wantBody    string
		wantTrailer string
		chunked     bool
	}{
		{"streamed request trailers, answer of unknown length",
			"POST /s HTTP/1.1\r\nHost: a.test\r\n" + chunked,
			"body=hello;trailers=X-Checksum=abc", "X-Late=late,X-Sum=5", true}, // Go's server keeps announced ones only
		{"read-ahead request trailers stay trailers",
			"POST /retry HTTP/1.1\r\nHost: a.test\r\n" + chunked,
			"body=hello;trailers=X-Checksum=abc,X-Other=1", "X-Late=late,X-Sum=5", true},
		{"read-ahead request trailers to an HTTP/1.1 pool stay trailers",
			"POST /h1retry HTTP/1.1\r\nHost: a.test\r\n" + chunked,
			"body=hello;trailers=X-Checksum=abc,X-Other=1", "X-Late=late,X-Sum=5", true},
		{"known length without TE keeps Content-Length",
			"POST /s?len=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
			"body=hello;trailers=", "", false},
		{"known length with TE: trailers turns chunked",
			"POST /s?len=1 HTTP/1.1\r\nHost: a.test\r\nTE: gzip;q=0.5, Trailers\r\nContent-Length: 5\r\n\r\nhello",
			"body=hello;trailers=;te=trailers", "X-Late=late,X-Sum=5", true},
		{"HTTP/1.0 client gets no trailers",
			"POST /s HTTP/1.0\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
			"body=hello;trailers=", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := rawHTTP1(t, addr, c.req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %q", resp.StatusCode, body)
			}
			if !strings.HasPrefix(body, c.wantBody) || strings.Contains(body, "header=") || !strings.Contains(body, "te=") && strings.Contains(c.wantBody, "te=") {
				t.Fatalf("origin saw %q, want %q (a trailer must not become a header)", body, c.wantBody)
			}
			if got := len(resp.TransferEncoding) > 0; got != c.chunked {
				t.Fatalf("chunked %v, want %v (%v)", got, c.chunked, resp.Header)
			}
			var tr []string
			for k, vv := range resp.Trailer {
				if len(vv) > 0 {
					tr = append(tr, k+"="+strings.Join(vv, "|"))
				}
			}
			sort.Strings(tr)
			if got := strings.Join(tr, ","); got != c.wantTrailer {
				t.Fatalf("trailers %q, want %q", got, c.wantTrailer)
			}
			if c.wantTrailer != "" && resp.Header.Get("Trailer") == "" && len(resp.Trailer) == 0 {
				t.Fatal("trailers not announced")
			}
		})
	}
	// HEAD: no body, no trailers, the connection stays usable.
	resp, body := rawHTTP1Method(t, addr, "HEAD /s HTTP/1.1\r\nHost: a.test\r\n\r\n", "HEAD")
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
}

// TestH1OriginTrailersStayTrailers: an HTTP/1.1 origin's chunked answer
// with trailers reaches an HTTP/1.1 client chunked with its trailers (in
// both engines), and an HTTP/1.0 client without them; a trailer field
// never becomes a header field.
func TestH1OriginTrailersStayTrailers(t *testing.T) {
	o := trailerOrigin(t)
	for _, engine := range engineNames {
		t.Run(engine, func(t *testing.T) {
			port := freePort(t)
			startServer(t, pool("a", hostOf(o.URL))+lbYAML(port, "a"), Options{HTTP1Engine: engine})
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			for _, c := range []struct {
				req         string
				wantTrailer bool
			}{
				{"GET /s HTTP/1.1\r\nHost: a\r\n\r\n", true},
				{"GET /s HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n", true},
				{"GET /s HTTP/1.0\r\nHost: a\r\n\r\n", false},
			} {
				resp, body := rawHTTP1(t, addr, c.req)
				if resp.StatusCode != 200 || !strings.HasPrefix(body, "body=;trailers=") {
					t.Fatalf("%q: %d %q", c.req, resp.StatusCode, body)
				}
				if resp.Header.Get("X-Sum") != "" || resp.Header.Get("X-Late") != "" {
					t.Fatalf("%q: trailer fields among the header fields: %v", c.req, resp.Header)
				}
				got := resp.Trailer.Get("X-Sum") == "0" && resp.Trailer.Get("X-Late") == "late"
				if got != c.wantTrailer {
					t.Fatalf("%q: trailers %v, want them: %v", c.req, resp.Trailer, c.wantTrailer)
				}
			}
		})
	}
}
