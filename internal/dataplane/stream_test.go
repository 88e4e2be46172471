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
	"testing"
	"time"
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
	body := bytes.Repeat([]byte("upload-"), 1<<20) // 7 MiB
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
