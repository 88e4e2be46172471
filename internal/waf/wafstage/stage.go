package wafstage

import (
	"net/netip"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/waf"
)

// Options are the optional hooks of the stage.
type Options struct {
	// Events receives one event per blocked request or per request on
	// which rules matched (may be nil).
	Events secevents.Sink
	// Metrics counts verdicts and rule hits (may be nil).
	Metrics *Metrics
	// Concurrency is how many requests the stages of one Factory inspect
	// at once; the others wait their turn in arrival order. Inspection
	// is CPU work: running more at once than there are CPUs only
	// interleaves them, which stretches every request's latency and
	// keeps more transactions alive for the garbage collector. 0 means
	// GOMAXPROCS; a negative value, no limit.
	Concurrency int
}

// gate admits a bounded number of holders at a time, first come first
// served (a goroutine blocked sending on a channel is woken in order). A
// nil gate admits everyone.
type gate chan struct{}

func newGate(n int) gate {
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if n < 0 {
		return nil
	}
	return make(gate, n)
}

func (g gate) enter() {
	if g != nil {
		g <- struct{}{}
	}
}

func (g gate) leave() {
	if g != nil {
		<-g
	}
}

// stage is the WAF of one load balancer.
type stage struct {
	vhost string
	name  string // AppFirewall "namespace/name"
	w     *waf.WAF
	err   error
	opts  Options
	gate  gate
	// loop says the stage may run on the event loops (LoopServable):
	// the compiled rules can do nothing with a response
	// (waf.WAF.ResponseInert), or the stage only answers 503.
	loop bool
}

// The pipeline calls only the callbacks a stage implements, so the stage
// comes in variants with and without body callbacks.
type (
	reqBodyStage  struct{ *stage }
	respBodyStage struct{ *stage }
	bothStage     struct{ *stage }
)

var (
	_ dataplane.RequestHeadersFilter  = (*stage)(nil)
	_ dataplane.ResponseHeadersFilter = (*stage)(nil)
	_ dataplane.DoneHook              = (*stage)(nil)
	_ dataplane.LoopStage             = (*stage)(nil)
	_ dataplane.RequestBodyFilter     = reqBodyStage{}
	_ dataplane.ResponseBodyFilter    = respBodyStage{}
	_ dataplane.RequestBodyFilter     = bothStage{}
	_ dataplane.ResponseBodyFilter    = bothStage{}
)

// New builds the stage of a load balancer from a compiled WAF. A non-nil
// err (a missing or broken AppFirewall) makes it fail closed with 503.
// opts.Concurrency bounds the requests this stage inspects at once.
func New(vhost, firewall string, w *waf.WAF, err error, opts Options) dataplane.Stage {
	return newStage(vhost, firewall, w, err, opts, newGate(opts.Concurrency))
}

func newStage(vhost, firewall string, w *waf.WAF, err error, opts Options, g gate) dataplane.Stage {
	s := &stage{vhost: vhost, name: firewall, w: w, err: err, opts: opts, gate: g}
	if err != nil {
		s.loop = true
		return s
	}
	s.loop, _ = w.ResponseInert()
	reqBody := !w.Spec.RequestBody.Disabled
	respBody := w.Spec.ResponseInspection.Enabled
	switch {
	case reqBody && respBody:
		return bothStage{s}
	case reqBody:
		return reqBodyStage{s}
	case respBody:
		return respBodyStage{s}
	}
	return s
}

// Factory returns a dataplane.StageFactory for the "waf" slot. The
// AppFirewall a load balancer names is found in the table being installed
// (StageEnv.Table); compiled instances come from cache. The stages it
// builds share one opts.Concurrency bound.
func Factory(cache *waf.Cache, opts Options) dataplane.StageFactory {
	g := newGate(opts.Concurrency)
	return func(vh *config.VHost, env *dataplane.StageEnv) dataplane.Stage {
		if vh.Spec == nil || vh.Spec.AppFirewall == "" {
			return nil
		}
		id := vh.Namespace + "/" + vh.Spec.AppFirewall
		var af *v1.AppFirewall
		if env != nil && env.Table != nil {
			af, _ = env.Table.Object("AppFirewall", vh.Namespace, vh.Spec.AppFirewall).(*v1.AppFirewall)
		}
		if af == nil {
			return newStage(vh.ID, id, nil, &missingError{id}, opts, g)
		}
		w, err := cache.Get(af.Spec)
		return newStage(vh.ID, id, w, err, opts, g)
	}
}

type missingError struct{ id string }

func (e *missingError) Error() string { return "AppFirewall " + e.id + " not found" }

// Err returns the configuration error of a stage built by New or Factory.
func Err(s dataplane.Stage) error {
	switch v := s.(type) {
	case *stage:
		return v.err
	case reqBodyStage:
		return v.err
	case respBodyStage:
		return v.err
	case bothStage:
		return v.err
	}
	return nil
}

func (s *stage) Name() string { return "waf" }

// LoopServable implements dataplane.LoopStage: the event loops may run the
// stage when no response phase of its rules can act (then a bodiless
// request is decided in OnRequestHeaders, which runs the response-header
// phase itself on the loop) or when it fails closed.
func (s *stage) LoopServable() bool { return s.loop }

func (s *stage) reply(x *dataplane.Exchange, v *waf.Verdict) dataplane.Action {
	ct, body := s.w.BlockPage(string(x.RequestID))
	if v.Status == 400 || v.Status == 413 {
		ct, body = "text/plain; charset=utf-8", []byte(strconv.Itoa(v.Status)+" request body refused by the firewall\n")
	}
	x.Reply = dataplane.Reply{Status: v.Status, ContentType: ct, Body: body}
	return dataplane.Respond
}

// uri is the request target for the WAF: as the client sent it
// (Exchange.RawTarget), so that REQUEST_URI, REQUEST_LINE, REQUEST_FILENAME
// and ARGS_GET see every encoding, doubled slash and scheme in it. Only
// when the engine gives no raw target is one rebuilt from the normalized
// path and the raw query.
func uri(x *dataplane.Exchange) string {
	if len(x.RawTarget) > 0 {
		return string(x.RawTarget)
	}
	p := escapePath(x.Path)
	if len(x.RawQuery) == 0 {
		return p
	}
	return p + "?" + string(x.RawQuery)
}

// escapePath re-encodes what a decoded path cannot carry in a request
// target ('%', '?', '#', controls, spaces and non-ASCII bytes), so that the
// rebuilt URI means what the client sent.
func escapePath(p []byte) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for _, c := range p {
		if c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f {
			n++
		}
	}
	if n == 0 {
		return string(p)
	}
	b := make([]byte, 0, len(p)+2*n)
	for _, c := range p {
		if c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func (s *stage) OnRequestHeaders(x *dataplane.Exchange) dataplane.Action {
	if s.err != nil {
		x.Reply = dataplane.Reply{Status: 503, ContentType: "text/plain; charset=utf-8", Body: []byte("web application firewall configuration error\n")}
		return dataplane.Respond
	}
	if !x.OnLoop {
		// (The loops are bounded by their number: a loop must not wait.)
		s.gate.enter()
		defer s.gate.leave()
	}
	tx := s.w.NewTx(string(x.RequestID))
	x.SetStageValue(s, tx)
	var server netip.AddrPort
	if x.Listener != nil {
		if a, err := netip.ParseAddr(x.Listener.Address); err == nil {
			server = netip.AddrPortFrom(a, uint16(x.Listener.Port))
		}
	}
	tx.Connection(netip.AddrPortFrom(x.Client, x.Peer.Port()), server)
	host := string(x.Host)
	body := false
	v := tx.RequestHeaders(string(x.Method), uri(x), x.Proto, host, func(add func(n, v string)) {
		body = requestHeaders(x, host, add)
	})
	if v != nil {
		return s.reply(x, v)
	}
	// Phase 2 (where CRS adds up the anomaly score) must run even when
	// no body callback will come: bodiless requests and disabled body
	// inspection.
	if s.w.Spec.RequestBody.Disabled || !body {
		if v := tx.RequestBody(nil, true); v != nil {
			return s.reply(x, v)
		}
	}
	if x.OnLoop {
		// No response callback comes on a loop: the response-header
		// phase runs now. Its rules that can be reached read only the
		// transaction's variables (ResponseInert), so the response it
		// is not given changes nothing.
		if v := tx.ResponseHeaders(200, x.Proto, func(func(n, v string)) {}); v != nil {
			return s.reply(x, v)
		}
	}
	return dataplane.Continue
}

// requestHeaders gives add the request's header fields and reports whether
// they announce a body (Transfer-Encoding, or a Content-Length other than
// 0).
//
// Over HTTP/1.x the fields are those of the head as received
// (Exchange.RawHeaders): in the client's order and name case, repeated
// fields apart, empty values kept, Cookie and Connection as sent, nothing
// the engine added. The block is copied into one string and every name and
// value handed to the WAF (which keeps them for the transaction) is a
// substring of it: one allocation for the whole head instead of two per
// field. The fields are split as Exchange.VisitRawHeaders splits them
// (TestRawFieldsMatchVisitRawHeaders holds the two together).
//
// Over HTTP/2 there is no raw block: the fields come from the engine's
// header map, plus a Host field for the :authority, which is not one of
// them. An HTTP/2 body needs no Content-Length (DATA frames until the
// stream ends), so whether one follows is the engine's
// Exchange.BodyFollows (the stream stayed open after its HEADERS frame),
// whatever the method: phase 2 waits for that body.
func requestHeaders(x *dataplane.Exchange, host string, add func(n, v string)) (body bool) {
	if x.RawHeaders == nil {
		sawHost := false
		if x.ReqHeaders != nil {
			x.ReqHeaders.VisitAll(func(n, val []byte) {
				if len(n) == 4 && (n[0]|0x20) == 'h' && (n[1]|0x20) == 'o' && (n[2]|0x20) == 's' && (n[3]|0x20) == 't' {
					sawHost = true
				}
				body = body || announcesBody(n, val)
				add(string(n), string(val))
			})
		}
		if !sawHost && host != "" {
			add("Host", host)
		}
		return body || x.BodyFollows
	}
	rawFields(string(x.RawHeaders), func(n, val string) {
		body = body || announcesBody(n, val)
		add(n, val)
	})
	// The engine's word counts too; the fields alone may say more (a
	// "Content-Length: 00" the engine reads as 0), which only moves phase 2
	// to the body callback: the engine calls it, with or without a body,
	// whenever a stage inspects request bodies.
	return body || x.BodyFollows
}

// rawFields calls f for each field line of a raw header block, in order:
// the name as sent, the value without surrounding blanks. It stops at the
// empty line that ends the head and skips lines without a name.
func rawFields(b string, f func(name, value string)) {
	for len(b) > 0 {
		line := b
		if i := strings.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = ""
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return
		}
		c := strings.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		f(line[:c], strings.Trim(line[c+1:], " \t"))
	}
}

// announcesBody reports whether a request header field says a body
// follows.
func announcesBody[T string | []byte](name, value T) bool {
	switch len(name) {
	case len("content-length"):
		return equalFold(name, "content-length") && !(len(value) == 1 && value[0] == '0')
	case len("transfer-encoding"):
		return equalFold(name, "transfer-encoding")
	}
	return false
}

// equalFold compares an ASCII header name with a lower-case one.
func equalFold[T string | []byte](name T, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (s *stage) tx(x *dataplane.Exchange) *waf.Tx {
	tx, _ := x.StageValue(s).(*waf.Tx)
	return tx
}

func (s *stage) onRequestBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	tx := s.tx(x)
	if tx == nil {
		return dataplane.Continue
	}
	if v := s.inspectBody(tx, chunk, end); v != nil {
		return s.reply(x, v)
	}
	return dataplane.Continue
}

func (s *stage) inspectBody(tx *waf.Tx, chunk []byte, end bool) *waf.Verdict {
	s.gate.enter()
	defer s.gate.leave()
	return tx.RequestBody(chunk, end)
}

func (s *stage) OnResponseHeaders(x *dataplane.Exchange) dataplane.Action {
	tx := s.tx(x)
	if tx == nil || tx.Interrupted() != nil {
		return dataplane.Continue
	}
	// Phase 2 not run yet: a body was expected (HTTP/2 without
	// Content-Length) but the request had none, so no body callback came.
	if v := tx.FinishRequest(); v != nil {
		return s.reply(x, v)
	}
	v := tx.ResponseHeaders(x.Status, x.Proto, func(add func(n, v string)) {
		if x.RespHeaders != nil {
			x.RespHeaders.VisitAll(func(n, val []byte) { add(string(n), string(val)) })
		}
	})
	if v != nil {
		return s.reply(x, v)
	}
	return dataplane.Continue
}

func (s *stage) onResponseBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	tx := s.tx(x)
	if tx == nil || tx.Interrupted() != nil {
		return dataplane.Continue
	}
	if v := tx.ResponseBody(chunk, end); v != nil {
		return s.reply(x, v)
	}
	return dataplane.Continue
}

// OnDone ends the transaction and emits the event.
func (s *stage) OnDone(x *dataplane.Exchange) {
	tx := s.tx(x)
	if tx == nil {
		return
	}
	x.SetStageValue(s, nil)
	hits := tx.Close()
	verdict := "pass"
	switch {
	case tx.Interrupted() != nil:
		verdict = "blocked"
	case len(hits) > 0:
		verdict = "detected"
	}
	s.opts.Metrics.observe(s.name, verdict, waf.IDs(hits))
	if s.opts.Events == nil || verdict == "pass" {
		return
	}
	e := &secevents.Event{Kind: secevents.KindWAF, Action: secevents.ActionDetected, RequestID: string(x.RequestID),
		LoadBalancer: s.vhost, Method: string(x.Method), Host: string(x.Host), Path: string(x.Path),
		Source: s.name, Rules: hits}
	if iv := tx.Interrupted(); iv != nil {
		e.Action, e.Status = secevents.ActionBlocked, iv.Status
		e.Message = "blocked by rule " + strconv.Itoa(iv.RuleID)
	}
	if x.Route != nil {
		e.Route = x.Route.Name
	}
	if x.Client.IsValid() {
		e.Client = x.Client.String()
	}
	s.opts.Events.Emit(e)
}

func (s reqBodyStage) OnRequestBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return s.onRequestBody(x, chunk, end)
}
func (s reqBodyStage) BufferRequestBody() int { return s.w.Spec.RequestBody.Limit }

func (s respBodyStage) OnResponseBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return s.onResponseBody(x, chunk, end)
}
func (s respBodyStage) BufferResponseBody() int { return s.w.Spec.ResponseInspection.Limit }

func (s bothStage) OnRequestBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return s.onRequestBody(x, chunk, end)
}
func (s bothStage) BufferRequestBody() int { return s.w.Spec.RequestBody.Limit }
func (s bothStage) OnResponseBody(x *dataplane.Exchange, chunk []byte, end bool) dataplane.Action {
	return s.onResponseBody(x, chunk, end)
}
func (s bothStage) BufferResponseBody() int { return s.w.Spec.ResponseInspection.Limit }
