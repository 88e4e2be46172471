package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/meridian-platform/meridian/internal/lb"
)

// upgradeH1 proxies an HTTP/1.1 Upgrade (WebSocket): the head goes to an
// endpoint, and on 101 both connections are spliced.
func (s *Server) upgradeH1(ctx *fasthttp.RequestCtx, x *Exchange, st *state) {
	cp := x.Route.Pool
	pool := s.reg.Pool(cp.ID)
	if pool == nil {
		x.respond(fasthttp.StatusServiceUnavailable, "pool not ready\n")
		writeReplyH1(ctx, x)
		return
	}
	ep, err := pool.Pick(hashFor(x, cp), nil)
	if err != nil {
		x.respond(fasthttp.StatusServiceUnavailable, "no healthy endpoint\n")
		writeReplyH1(ctx, x)
		return
	}
	x.Endpoint = ep.Addr()
	dctx, cancel := context.WithTimeout(context.Background(), cp.ConnectTimeout)
	oc, err := dialOrigin(dctx, pool, cp, ep, []string{"http/1.1"})
	cancel()
	if err != nil {
		ep.Begin()
		ep.End(lb.Result{ConnectFailed: true})
		x.respond(fasthttp.StatusBadGateway, "origin unreachable\n")
		writeReplyH1(ctx, x)
		return
	}
	req := &ctx.Request
	// Build the origin head: the client's headers minus hop-by-hop ones
	// other than the upgrade pair, plus forwarding headers.
	var head bytes.Buffer
	head.Write(req.Header.Method())
	head.WriteByte(' ')
	head.Write(req.Header.RequestURI())
	head.WriteString(" HTTP/1.1\r\n")
	upgrade := append([]byte(nil), req.Header.Peek("Upgrade")...)
	// Fields the client names in Connection (an upgrade's HTTP2-Settings,
	// or anything else) stay here, as on the other paths.
	dropConnectionNamedReq(&req.Header)
	for k, v := range req.Header.All() {
		switch {
		case bytes.EqualFold(k, []byte("Connection")), bytes.EqualFold(k, []byte("Upgrade")),
			bytes.EqualFold(k, []byte("Keep-Alive")), bytes.EqualFold(k, []byte("Proxy-Connection")),
			bytes.EqualFold(k, []byte("X-Forwarded-For")), bytes.EqualFold(k, []byte("X-Forwarded-Proto")),
			bytes.EqualFold(k, []byte("Proxy-Authorization")), bytes.EqualFold(k, []byte("Te")):
			continue
		}
		head.Write(k)
		head.WriteString(": ")
		head.Write(v)
		head.WriteString("\r\n")
	}
	xff := x.Peer.Addr().Unmap().String()
	if v, ok := x.ReqHeaders.Peek("X-Forwarded-For"); ok && x.TrustedPeer {
		xff = string(v) + ", " + xff
	}
	head.WriteString("X-Forwarded-For: " + xff + "\r\nX-Forwarded-Proto: " + x.Scheme + "\r\n")
	head.WriteString("Connection: Upgrade\r\nUpgrade: ")
	head.Write(upgrade)
	head.WriteString("\r\n\r\n")
	_ = oc.SetDeadline(time.Now().Add(s.opts.DefaultRouteTimeout))
	ep.Begin()
	t0 := time.Now()
	if _, err := oc.Write(head.Bytes()); err != nil {
		oc.Close()
		ep.End(lb.Result{Duration: time.Since(t0)})
		x.respond(fasthttp.StatusBadGateway, "origin write failed\n")
		writeReplyH1(ctx, x)
		return
	}
	if body := req.Body(); len(body) > 0 {
		_, _ = oc.Write(body)
	}
	br := bufio.NewReaderSize(oc, 16<<10)
	rawHead, status, err := readHead(br)
	if err != nil {
		oc.Close()
		ep.End(lb.Result{Duration: time.Since(t0)})
		x.respond(fasthttp.StatusBadGateway, "bad origin response\n")
		writeReplyH1(ctx, x)
		return
	}
	if status != fasthttp.StatusSwitchingProtocols {
		// Not upgraded: relay the answer and close.
		resp := &ctx.Response
		err := resp.Read(bufio.NewReader(io.MultiReader(bytes.NewReader(rawHead), br)))
		oc.Close()
		ep.End(lb.Result{Status: status, Duration: time.Since(t0)})
		if err != nil {
			x.respond(fasthttp.StatusBadGateway, "bad origin response\n")
			writeReplyH1(ctx, x)
		}
		ctx.SetConnectionClose()
		return
	}
	ep.End(lb.Result{Status: status, Duration: time.Since(t0)})
	_ = oc.SetDeadline(time.Time{})
	buffered, _ := br.Peek(br.Buffered())
	pending := append([]byte(nil), buffered...)
	ctx.Response.SetStatusCode(status)
	done := make(chan struct{})
	if mc, ok := ctx.Conn().(*metaConn); ok {
		mc.meta.hijacked = done
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer close(done)
		defer oc.Close()
		if _, err := c.Write(rawHead); err != nil {
			return
		}
		if len(pending) > 0 {
			if _, err := c.Write(pending); err != nil {
				return
			}
		}
		pipe(c, oc, 0)
	})
}

// readHead reads a response head (status line and headers, through the
// empty line), at most 16 KiB, and returns it with the status code.
func readHead(br *bufio.Reader) ([]byte, int, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, 0, err
		}
		head = append(head, line...)
		if len(head) > 16<<10 {
			return nil, 0, errors.New("response head too large")
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			break
		}
	}
	// "HTTP/1.1 101 Switching Protocols"
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) {
		return nil, 0, errors.New("malformed status line")
	}
	code := 0
	for _, c := range head[9:12] {
		if c < '0' || c > '9' {
			return nil, 0, errors.New("malformed status code")
		}
		code = code*10 + int(c-'0')
	}
	return head, code, nil
}
