package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/meridian-platform/meridian/internal/lb"
)

// forwardH1ToH2 sends a request that arrived over HTTP/1.1 to a pool that
// speaks HTTP/2 (spec.protocol http2 or h2c), on the pool's multiplexed
// HTTP/2 client. The request has been prepared (hop-by-hop headers gone,
// forwarding headers set, rewrites done); the answer's body streams back
// to the client. attempts > 1 only when the body is in memory.
func (s *Server) forwardH1ToH2(ctx *fasthttp.RequestCtx, hx *h1Exchange, rm *routeMetrics, pool *lb.Pool, hash uint64,
	affinity *lb.Endpoint, attempts int, deadline time.Time) {
	x, req := &hx.x, &ctx.Request
	rt := x.Route
	cp := rt.Pool
	pt := s.transports.get(pool, cp)
	// The URI holds the route's rewrites; its RequestURI is the path and
	// query, also for an absolute-form target.
	target, err := url.ParseRequestURI(string(req.URI().RequestURI()))
	if err != nil {
		x.respond(fasthttp.StatusBadRequest, "invalid request target\n")
		writeReplyH1(ctx, x)
		return
	}
	target.Scheme = "http"
	if cp.TLS != nil {
		target.Scheme = "https"
	}
	hdr := make(http.Header, 16)
	for k, v := range req.Header.All() {
		switch {
		case bytes.EqualFold(k, []byte("Host")), bytes.EqualFold(k, []byte("Content-Length")),
			bytes.EqualFold(k, []byte("Transfer-Encoding")), bytes.EqualFold(k, []byte("Connection")):
			continue
		}
		hdr.Add(string(k), string(v))
	}
	host := string(req.Header.Host())
	var body []byte
	var stream io.Reader
	size := int64(req.Header.ContentLength())
	if req.IsBodyStream() {
		stream = req.BodyStream()
	} else {
		body = req.Body()
		size = int64(len(body))
	}
	if size < 0 {
		size = -1
	}
	var (
		exclude *lb.Endpoint
		resp    *http.Response
		cancel  context.CancelFunc = func() {}
	)
	for try := 0; try < attempts; try++ {
		if try > 0 {
			if !rm.allowRetry() {
				break
			}
			x.Retries++
			rm.retries.Inc()
		}
		ep := affinity
		affinity = nil
		if ep == nil {
			ep, err = pool.Pick(hash, exclude)
			if err != nil {
				break
			}
		}
		exclude = ep
		u := *target
		u.Host = ep.Addr()
		var rctx context.Context
		cancel()
		rctx, cancel = context.WithDeadline(context.Background(), deadline)
		out := (&http.Request{Method: string(x.Method), URL: &u, Host: host, Header: hdr, ContentLength: size,
			Proto: "HTTP/2.0", ProtoMajor: 2}).WithContext(context.WithValue(rctx, endpointKey, ep))
		switch {
		case stream != nil:
			out.Body = io.NopCloser(stream)
		case len(body) > 0:
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		ep.Begin()
		t0 := time.Now()
		resp, err = pt.h2.RoundTrip(out)
		d := time.Since(t0)
		x.UpstreamTime += d
		x.Endpoint = ep.Addr()
		res := lb.Result{Duration: d, ConnectFailed: isDialError(err)}
		if err == nil {
			res.Status = resp.StatusCode
		}
		ep.End(res)
		if err == nil {
			if rt.Retry != nil && try+1 < attempts && rt.Retry.RetryOnStatus(resp.StatusCode) {
				resp.Body.Close()
				continue
			}
			break
		}
		if rt.Retry == nil || res.ConnectFailed && !rt.Retry.ConnectFailure || !res.ConnectFailed && !rt.Retry.Reset {
			break
		}
	}
	if err != nil {
		cancel()
		switch {
		case hx.body.err != nil && !errors.Is(err, errStoppedByStage):
			failBody(ctx, x, hx.body.err)
			return
		case errors.Is(err, errStoppedByStage):
		case errors.Is(err, lb.ErrNoHealthyEndpoint), errors.Is(err, lb.ErrCircuitOpen):
			x.respond(fasthttp.StatusServiceUnavailable, err.Error()+"\n")
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
			x.respond(fasthttp.StatusGatewayTimeout, "origin timeout\n")
		default:
			x.respond(fasthttp.StatusBadGateway, "origin unreachable\n")
		}
		writeReplyH1(ctx, x)
		return
	}
	removeHopByHop(resp.Header)
	r := &ctx.Response
	r.SetStatusCode(resp.StatusCode)
	for k, vv := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			r.Header.Add(k, v)
		}
	}
	if cp.AffinityCookie != "" && string(req.Header.Cookie(cp.AffinityCookie)) != exclude.ID() {
		setAffinityCookie(r, cp, exclude)
	}
	n := int(resp.ContentLength)
	if resp.ContentLength < 0 || req.Header.IsHead() {
		n = -1
	}
	if req.Header.IsHead() || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		cancel()
		if resp.ContentLength >= 0 {
			r.Header.SetContentLength(int(resp.ContentLength))
		}
		r.SkipBody = true
		return
	}
	// The engine writes the body after the handler returns and closes it
	// then, which ends the origin stream.
	r.SetBodyStream(&h2Answer{rc: resp.Body, cancel: cancel}, n)
}

// h2Answer is an origin's HTTP/2 response body, streamed to an HTTP/1.1
// client; closing it ends the stream and its deadline.
type h2Answer struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
}

func (a *h2Answer) Read(p []byte) (int, error) { return a.rc.Read(p) }

func (a *h2Answer) Close() error {
	err := a.rc.Close()
	a.cancel()
	return err
}
