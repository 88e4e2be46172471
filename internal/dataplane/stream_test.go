package dataplane

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

func TestHTTP1Streaming(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
			}
			fmt.Fprint(w, "data: second\n\n")
		case "/big":
			w.Write(big)
		}
	}))
	defer backend.Close()
	port := freePort(t)
	startServer(t, pool("a", hostOf(backend.URL))+lbYAML(port, "a"), Options{})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Server-sent events: the first event arrives before the origin ends.
	req, _ := http.NewRequest("GET", base+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	done := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		done <- l
	}()
	select {
	case l := <-done:
		if strings.TrimSpace(l) != "data: first" {
			t.Fatalf("first event %q", l)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first event held back by the proxy")
	}
	close(next)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest %q", rest)
	}
	// Large bodies arrive intact, buffered the first time and streamed after.
	want := sha256.Sum256(big)
	for i := 0; i < 3; i++ {
		r, err := http.Get(base + "/big")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if sha256.Sum256(b) != want {
			t.Fatalf("try %d: body of %d bytes differs", i, len(b))
		}
	}
}

func TestHTTP1LargeUploads(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	defer backend.Close()
	port := freePort(t)
	startServer(t, pool("a", hostOf(backend.URL))+lbYAML(port, "a"), Options{})
	body := bytes.Repeat([]byte("upload-"), 300<<10) // 2.1 MB: above the 1 MiB buffering limit
	want := fmt.Sprintf("%d %x", len(body), sha256.Sum256(body))
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/up", port), "application/octet-stream", rd)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != want {
			t.Fatalf("chunked=%v: %d %q", chunked, resp.StatusCode, got)
		}
	}
}

// bodyScanner is a body stage that asks for 1 KiB up front (and gets one
// byte more when the body is longer), counts every byte it sees and stops
// uploads containing "EVIL".
type bodyScanner struct {
	seen  *atomic.Int64
	first *atomic.Int64
}

func (b bodyScanner) Name() string           { return "waf" }
func (b bodyScanner) BufferRequestBody() int { return 1024 }
func (b bodyScanner) OnRequestBody(x *Exchange, chunk []byte, end bool) Action {
	if b.seen.Load() == 0 {
		b.first.Store(int64(len(chunk)))
	}
	b.seen.Add(int64(len(chunk)))
	if bytes.Contains(chunk, []byte("EVIL")) {
		x.Reply = Reply{Status: 403, Body: []byte("blocked")}
		return Respond
	}
	return Continue
}

func TestHTTP1BodyStageOnStreamedUpload(t *testing.T) {
	var originGot atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		originGot.Store(n)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	defer backend.Close()
	var seen, first atomic.Int64
	port := freePort(t)
	startServer(t, pool("a", hostOf(backend.URL))+lbYAML(port, "a"), Options{Stages: map[string]StageFactory{
		"waf": func(*config.VHost, *StageEnv) Stage { return bodyScanner{seen: &seen, first: &first} }}})
	url := fmt.Sprintf("http://127.0.0.1:%d/up", port)
	clean := bytes.Repeat([]byte("clean-data-"), 140<<10) // 1.5 MB, streamed
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(clean))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", len(clean), sha256.Sum256(clean)); string(got) != want {
		t.Fatalf("clean upload: %d %q", resp.StatusCode, got)
	}
	if seen.Load() != int64(len(clean)) || first.Load() != 1025 {
		t.Fatalf("stage saw %d bytes (first chunk %d) of %d", seen.Load(), first.Load(), len(clean))
	}
	// A small body is handed over whole.
	seen.Store(0)
	resp, _ = http.Post(url, "text/plain", strings.NewReader("tiny EVIL body"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(b) != "blocked" {
		t.Fatalf("small evil body: %d %q", resp.StatusCode, b)
	}
	// A large upload with the bad bytes late is stopped mid-stream.
	seen.Store(0)
	evil := append(append([]byte(nil), clean...), []byte("EVIL")...)
	resp, err = http.Post(url, "application/octet-stream", io.MultiReader(bytes.NewReader(evil)))
	if err == nil {
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("late evil body: %d %q", resp.StatusCode, b)
		}
	}
	if originGot.Load() == int64(len(evil)) {
		t.Fatal("origin received the whole blocked upload")
	}
}
