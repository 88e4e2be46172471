//go:build linux

package dataplane

import (
	"sync"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// evLoopX is the exchange of one event loop for the requests it runs
// stages on: reused from one request to the next (a loop routes one request
// at a time), so that running the stages allocates no exchange. It is also
// the Answerer of a request a stage answered.
type evLoopX struct {
	x     Exchange
	hdr   rawHeaderView
	q     queryView
	query func(string) ([]byte, bool)
}

// evLoopExchanges holds each loop's evLoopX, by the loop's Request (each
// loop routes through its own, for its life).
type evLoopExchanges struct{ m sync.Map }

func (l *evLoopExchanges) get(q *evloop.Request) *evLoopX {
	if v, ok := l.m.Load(q); ok {
		return v.(*evLoopX)
	}
	lx := &evLoopX{}
	lx.query = lx.q.lookup
	l.m.Store(q, lx)
	return lx
}

// runStages runs the loop-servable stages of er's load balancer on a
// request the loop serves (t is where it goes), in Meridian's request view
// as the goroutine engine fills it (on a TLS listener: scheme "https" and
// the connection's TLS state, which the loop keeps per connection), then
// their completion hooks. A request that announces a body goes to the
// goroutine engine (whose stages inspect the body). When a stage answers,
// the loop writes its reply (Target.Answer; through the connection's TLS
// session on a TLS listener); otherwise the request goes on to t. Either
// way the request id the stages saw is the one the loop sends and logs.
func (r *evRouter) runStages(q *evloop.Request, t evloop.Target, er *evRoute) (evloop.Target, bool) {
	if bodyAnnounced(q.Headers) {
		return evloop.Target{}, false
	}
	lc := r.tr.Listener()
	if lc == nil || (lc.TLS != nil) != (q.TLS != nil) {
		return evloop.Target{}, false // the table changed meanwhile
	}
	lx := r.loops.get(q)
	x := &lx.x
	x.reset()
	lx.hdr.b = q.Headers
	lx.q = queryView{raw: q.Query, buf: lx.q.buf[:0]}
	x.ReqHeaders = &lx.hdr
	x.query = lx.query
	x.Method, x.Path, x.RawQuery, x.Host = q.Method, q.Path, q.Query, q.Host
	x.Scheme, x.Proto, x.TLS = "http", "HTTP/1.1", q.TLS
	if q.TLS != nil {
		x.Scheme = "https"
	}
	x.RawTarget, x.RawHeaders = q.Target, q.Headers
	x.Peer = q.Peer
	x.Start = time.Now()
	x.Listener, x.VHost, x.Route = lc, er.vh, er.rt
	x.BytesIn = int64(len(q.Headers))
	x.OnLoop = true
	resolveClient(x, er.vh)
	r.rid.fill(&x.idBuf)
	x.RequestID = x.idBuf[:]
	pl := er.stages
	act := Continue
	for _, f := range pl.evReq {
		if act = f.OnRequestHeaders(x); act == Respond {
			x.Status = x.Reply.Status
			break
		}
	}
	for _, d := range pl.evDone {
		d.OnDone(x)
	}
	t.RequestID = x.RequestID
	if act == Respond {
		t.Answer, t.Origin, t.Endpoint, t.Rewrite = lx, evloop.Target{}.Origin, nil, nil
	}
	return t, true
}

// Answer implements evloop.Answerer: the reply of the stage that answered
// (the loop calls it right after Route, before it routes another request).
func (lx *evLoopX) Answer(b []byte, q *evloop.Request, closing bool) ([]byte, int, int) {
	r := &lx.x.Reply
	b = appendReply(b, r, string(q.Method) == "HEAD", closing)
	return b, r.Status, len(r.Body)
}

// bodyAnnounced says a request head announces a body: a Transfer-Encoding
// field, or a Content-Length other than 0.
func bodyAnnounced(headers []byte) bool {
	h := rawHeaderView{b: headers}
	if _, ok := h.Peek("Transfer-Encoding"); ok {
		return true
	}
	v, ok := h.Peek("Content-Length")
	return ok && !(len(v) == 1 && v[0] == '0')
}
