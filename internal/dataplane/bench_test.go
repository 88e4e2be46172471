package dataplane

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// BenchmarkHTTP1Proxy measures the HTTP/1.1 path end to end on loopback:
// a fasthttp client, Meridian (the default engine, or the one
// DATAPLANE_HTTP1_ENGINE names), and a fasthttp origin, all keep-alive.
// The allocations reported are those of the whole process per request;
// the client and origin are allocation-free in steady state, so what
// remains is Meridian's. "log" has the load balancer's access log on
// (every field, written to io.Discard).
func BenchmarkHTTP1Proxy(b *testing.B) {
	b.Run("19B", func(b *testing.B) { benchProxy(b, []byte("hello from origin!\n"), false) })
	b.Run("16KiB", func(b *testing.B) { benchProxy(b, make([]byte, 16<<10), false) })
	b.Run("19B-log", func(b *testing.B) { benchProxy(b, []byte("hello from origin!\n"), true) })
}

func benchProxy(b *testing.B, body []byte, accessLog bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	go origin.Serve(ln)
	defer origin.Shutdown()
	port := freePort(b)
	conf := pool("a", ln.Addr().String()) + lbYAML(port, "a")
	if accessLog {
		conf = pool("a", ln.Addr().String()) + lbSpec(`["*"]`, []string{listenerAt(port)},
			"defaultPool: a", "accessLog: {enabled: true, fields: ["+strings.Join(v1.AccessLogFields, ", ")+"]}")
	}
	startServer(b, conf, Options{})
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
