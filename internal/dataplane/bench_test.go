package dataplane

import (
	"fmt"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHTTP1Proxy measures the HTTP/1.1 path end to end on loopback:
// a fasthttp client, Meridian, and a fasthttp origin, all keep-alive. The
// allocations reported are those of the whole process per request; the
// client and origin are allocation-free in steady state, so what remains is
// Meridian's.
func BenchmarkHTTP1Proxy(b *testing.B) {
	b.Run("19B", func(b *testing.B) { benchProxy(b, []byte("hello from origin!\n")) })
	b.Run("16KiB", func(b *testing.B) { benchProxy(b, make([]byte, 16<<10)) })
}

func benchProxy(b *testing.B, body []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go origin.Serve(ln)
	defer origin.Shutdown()
	port := freePort(b)
	startServer(b, pool("a", ln.Addr().String())+lbYAML(port, "a"), Options{})
	c := &fasthttp.HostClient{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(fmt.Sprintf("http://127.0.0.1:%d/bench?x=1", port))
	req.Header.Set("User-Agent", "bench")
	for i := 0; i < 1000; i++ { // warm pools
		if err := c.Do(req, resp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("%v %d", err, resp.StatusCode())
		}
	}
}
