package waf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/secevents"
)

// WAF is a compiled AppFirewall. It is immutable and safe for concurrent
// use; each request gets its own Tx.
type WAF struct {
	// Hash identifies the compiled configuration (hex SHA-256 of the
	// directives).
	Hash string
	Spec v1.AppFirewallSpec // effective (defaulted) spec

	waf       coraza.WAF
	blockBody []byte
	blockType string

	// The no-match fast path (fastpath.go); nil when the configuration is
	// not one it handles (custom rules) or it is switched off.
	fp      *fpProgram
	lean    coraza.WAF
	fpWhy   string // why there is no fast path
	fpStats fpStats
	// native: transactions of the common shape start without a lean
	// Coraza transaction (runstate.go); nativeWhy says why not.
	native    *runProg
	nativeWhy string
	// noValCache: the fast path's checks do not use the verdict cache
	// (valcache.go; tests compare with and without it).
	noValCache bool
}

// Compile compiles an AppFirewall spec. Compiling CRS takes a while: use a
// Cache.
func Compile(spec v1.AppFirewallSpec) (*WAF, error) {
	d, err := directives(spec, false)
	if err != nil {
		return nil, fmt.Errorf("rendering AppFirewall directives: %w", err)
	}
	return compileDirectives(spec, d)
}

func compileDirectives(spec v1.AppFirewallSpec, d string) (*WAF, error) {
	af := v1.AppFirewall{Spec: spec}
	af.Default()
	root, err := rootFS(strings.TrimSpace(spec.CustomRules) != "")
	if err != nil {
		return nil, fmt.Errorf("reading the embedded CRS: %w", err)
	}
	cfg := coraza.NewWAFConfig().WithRootFS(root).WithDirectives(d)
	cw, err := coraza.NewWAF(cfg)
	if err != nil {
		return nil, fmt.Errorf("compiling AppFirewall rules: %w", err)
	}
	sum := sha256.Sum256([]byte(d))
	w := &WAF{Hash: hex.EncodeToString(sum[:]), Spec: af.Spec, waf: cw}
	if strings.TrimSpace(spec.CustomRules) != "" {
		w.fpWhy = "custom rules"
	} else if p, why := compileFastPath(d, root); p == nil {
		w.fpWhy = why
	} else {
		lean, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(p.leanFS).WithDirectives(p.lean))
		if err != nil {
			return nil, fmt.Errorf("compiling the AppFirewall's bookkeeping rules: %w", err)
		}
		w.fp, w.lean, w.fpStats = p, lean, p.stats
		w.native, w.nativeWhy = p.native, p.nativeWhy
		if w.native != nil {
			if why, ok := w.native.bind(lean); !ok {
				w.native, w.nativeWhy = nil, why
			}
		}
	}
	w.blockType = af.Spec.BlockResponse.ContentType
	if af.Spec.BlockResponse.Body != "" {
		w.blockBody = []byte(af.Spec.BlockResponse.Body)
	} else {
		w.blockType = "text/html; charset=utf-8"
	}
	return w, nil
}

// BlockPage returns the content type and body answered to a blocked
// request; the default page names the request id so that support can find
// the event.
func (w *WAF) BlockPage(requestID string) (contentType string, body []byte) {
	if w.blockBody != nil {
		return w.blockType, w.blockBody
	}
	return w.blockType, []byte("<!DOCTYPE html><html><head><title>Request blocked</title></head><body><h1>Request blocked</h1>" +
		"<p>This request was blocked by the web application firewall.</p><p>Request id: " + htmlEscape(requestID) + "</p></body></html>\n")
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

// Verdict says a phase interrupted the request.
type Verdict struct {
	// Status is the status to answer (the AppFirewall's block status, or
	// 400/413 for unparsable or oversized bodies).
	Status int
	RuleID int
}

// Tx is the WAF transaction of one request. Not safe for concurrent use.
//
// With the fast path, the transaction runs in the lean instance (bookkeeping
// rules only) and records what it was given; after each phase the
// detection rules of that phase are checked, and as soon as one of them
// might match, everything recorded is replayed into a transaction of the
// full instance, which then carries on alone.
type Tx struct {
	w        *WAF
	id       string
	tx       types.Transaction
	v        *Verdict
	bodyDone bool
	bodySeen bool

	fast    bool
	checked types.RulePhase // phases checked by the fast path
	rec     *fpRecord
	fpe     *fpEval // the fast path's memo, from the first check to the end
	// FellBackAt is the id of the rule the fast path could not rule out
	// (0: none, or no fast path).
	fellBackAt int
	// nat is the native state while no Coraza transaction runs
	// (runstate.go); nil once the lean or the full instance took over.
	nat *runState
	// leanAt is the phase at which a native transaction went to the lean
	// instance (-1: never; for tests).
	leanAt types.RulePhase
	recBuf fpRecord
	hdrBuf [24]string
}

// fpRecord is what a fast transaction was given, for a replay.
type fpRecord struct {
	conn                     bool
	client, server           netip.AddrPort
	reqHeaders               bool
	method, uri, proto, host string
	hdrs                     []string // name, value, ...
	body                     [][]byte
	bodyLen                  int
	bodyEnd                  bool
	respHeaders              bool
	status                   int
	respProto                string
	respHdrs                 []string
	respBody                 [][]byte
	respLen                  int
	respEnd                  bool
}

// fpMaxRecorded bounds the body bytes a fast transaction keeps for a
// replay; past it the transaction goes to the full instance at once.
const fpMaxRecorded = 256 << 10

// NewTx starts a transaction; id is the request id.
func (w *WAF) NewTx(id string) *Tx {
	if w.fp != nil {
		t := &Tx{w: w, id: id, fast: true, leanAt: -1}
		t.rec = &t.recBuf
		t.rec.hdrs = t.hdrBuf[:0]
		if w.native != nil {
			t.nat = w.native.get(id)
			return t
		}
		t.tx = newCorazaTx(w.lean, id)
		w.fp.initTX(t.tx)
		return t
	}
	return &Tx{w: w, id: id, tx: newCorazaTx(w.waf, id)}
}

func newCorazaTx(w coraza.WAF, id string) types.Transaction {
	if id != "" {
		return w.NewTransactionWithID(id)
	}
	return w.NewTransaction()
}

// WithoutFastPath returns the same WAF with the fast path switched off
// (every request runs through all rules in Coraza).
func (w *WAF) WithoutFastPath() *WAF {
	c := *w
	c.fp, c.lean, c.native = nil, nil, nil
	if c.fpWhy == "" {
		c.fpWhy = "switched off"
	}
	return &c
}

// newEval starts the checks of a transaction on st.
func (w *WAF) newEval(st plugintypes.TransactionState) *fpEval {
	e := w.fp.newEval(st)
	if w.noValCache {
		e.vc = nil
	}
	return e
}

// FastPath reports whether the fast path is on, and why not.
func (w *WAF) FastPath() (on bool, why string) { return w.fp != nil, w.fpWhy }

// Fast reports whether the transaction has so far been decided by the fast
// path alone (no detection rule could match).
func (t *Tx) Fast() bool { return t.fast }

// FellBackAt returns the id of the detection rule that sent the
// transaction to the full rule set (0 if none did).
func (t *Tx) FellBackAt() int { return t.fellBackAt }

// check runs the fast path's checks after the lean transaction ran phase
// (0: no phase ran); when they do not clear the request (or the lean
// transaction was interrupted, or another phase ran), it replays into the
// full instance.
func (t *Tx) check(v *Verdict, phase types.RulePhase) *Verdict {
	if !t.fast {
		return v
	}
	if v != nil {
		return t.replay()
	}
	if phase == 0 {
		return nil
	}
	st, ok := t.tx.(plugintypes.TransactionState)
	if !ok || st.LastPhase() != phase {
		return t.replay()
	}
	if t.fpe == nil {
		t.fpe = t.w.newEval(st)
	}
	if ok, id := t.w.fp.noMatch(t.fpe, int(phase)); !ok {
		t.fellBackAt = id
		return t.replay()
	}
	t.checked = phase
	return nil
}

func (t *Tx) freeEval() {
	if t.fpe != nil {
		t.w.fp.freeEval(t.fpe)
		t.fpe = nil
	}
	if t.nat != nil {
		t.w.native.put(t.nat)
		t.nat = nil
	}
}

// replay moves the transaction to the full instance.
func (t *Tx) replay() *Verdict { return t.replayInto(t.w.waf, false) }

// replayInto gives a new transaction of cw everything recorded: the full
// instance (the transaction leaves the fast path), or the lean one (a
// native transaction that met something it does not handle).
func (t *Tx) replayInto(cw coraza.WAF, lean bool) *Verdict {
	r := t.rec
	t.freeEval()
	if t.tx != nil {
		_ = t.tx.Close()
	}
	t.v, t.bodyDone = nil, false
	t.tx = newCorazaTx(cw, t.id)
	if lean {
		t.w.fp.initTX(t.tx)
	} else {
		t.fast, t.rec = false, nil
	}
	if r.conn {
		t.doConnection(r.client, r.server)
	}
	if !r.reqHeaders {
		return nil
	}
	v := t.doRequestHeaders(r.method, r.uri, r.proto, r.host, func(add func(n, v string)) {
		for i := 0; i+1 < len(r.hdrs); i += 2 {
			add(r.hdrs[i], r.hdrs[i+1])
		}
	})
	for i, c := range r.body {
		v = t.doRequestBody(c, r.bodyEnd && i == len(r.body)-1)
	}
	if r.bodyEnd && len(r.body) == 0 {
		v = t.doRequestBody(nil, true)
	}
	if !r.respHeaders {
		return v
	}
	v = t.doResponseHeaders(r.status, r.respProto, func(add func(n, v string)) {
		for i := 0; i+1 < len(r.respHdrs); i += 2 {
			add(r.respHdrs[i], r.respHdrs[i+1])
		}
	})
	for i, c := range r.respBody {
		v = t.doResponseBody(c, r.respEnd && i == len(r.respBody)-1)
	}
	if r.respEnd && len(r.respBody) == 0 {
		v = t.doResponseBody(nil, true)
	}
	return v
}

func (t *Tx) verdict(it *types.Interruption) *Verdict {
	if it == nil || t.v != nil {
		return t.v
	}
	st := t.w.Spec.BlockResponse.Status
	switch {
	case it.RuleID >= idBodyProcessor && it.RuleID < idBodyProcessor+100:
		st = 400
	case it.Status == 413:
		st = 413
	}
	t.v = &Verdict{Status: st, RuleID: it.RuleID}
	return t.v
}

// toLean moves a native transaction to the lean instance: what was
// recorded is replayed into it and the phase it reached is checked.
func (t *Tx) toLean() *Verdict {
	r := t.rec
	v := t.replayInto(t.w.lean, true)
	ph := types.RulePhase(0)
	switch {
	case r.respEnd:
		ph = types.PhaseResponseBody
	case r.respHeaders:
		ph = types.PhaseResponseHeaders
	case r.bodyEnd:
		ph = types.PhaseRequestBody
	case r.reqHeaders:
		ph = types.PhaseRequestHeaders
	}
	t.leanAt = ph
	return t.check(v, ph)
}

// runNative runs phase on the native state: the lean rules (runlean.go),
// then the checks; false: the lean rules cannot be followed natively
// (the caller moves the transaction to the lean instance).
func (t *Tx) runNative(phase types.RulePhase) (*Verdict, bool) {
	s := t.nat
	if t.fpe == nil {
		t.fpe = t.w.newEval(s)
	}
	if !t.w.native.run(s, t.fpe, int(phase)) {
		return nil, false
	}
	if ok, id := t.w.fp.noMatch(t.fpe, int(phase)); !ok {
		t.fellBackAt = id
		return t.replay(), true
	}
	t.checked = phase
	return nil, true
}

// Interrupted returns the verdict if an earlier phase interrupted.
func (t *Tx) Interrupted() *Verdict { return t.v }

// Connection records the client and server addresses.
func (t *Tx) Connection(client, server netip.AddrPort) {
	if t.fast {
		t.rec.conn, t.rec.client, t.rec.server = true, client, server
	}
	if t.nat != nil {
		t.nat.connection(client, server)
		return
	}
	t.doConnection(client, server)
}

func (t *Tx) doConnection(client, server netip.AddrPort) {
	ca, sa := "", ""
	if client.Addr().IsValid() {
		ca = client.Addr().Unmap().String()
	}
	if server.Addr().IsValid() {
		sa = server.Addr().Unmap().String()
	}
	t.tx.ProcessConnection(ca, int(client.Port()), sa, int(server.Port()))
}

// RequestHeaders runs phase 1. uri is the request target as sent (raw, with
// the query); headers visits every request header including Host.
func (t *Tx) RequestHeaders(method, uri, proto, host string, headers func(add func(name, value string))) *Verdict {
	if !t.fast {
		return t.doRequestHeaders(method, uri, proto, host, headers)
	}
	r := t.rec
	r.reqHeaders, r.method, r.uri, r.proto, r.host = true, method, uri, proto, host
	if t.nat != nil {
		headers(func(n, v string) { r.hdrs = append(r.hdrs, n, v) })
		if !t.nat.reqSet && t.nat.phase == 0 && t.nat.request(method, uri, proto, host, r.hdrs) {
			if v, ok := t.runNative(types.PhaseRequestHeaders); ok {
				return v
			}
		}
		return t.toLean()
	}
	return t.check(t.doRequestHeaders(method, uri, proto, host, func(add func(n, v string)) {
		headers(func(n, v string) {
			r.hdrs = append(r.hdrs, n, v)
			add(n, v)
		})
	}), types.PhaseRequestHeaders)
}

func (t *Tx) doRequestHeaders(method, uri, proto, host string, headers func(add func(name, value string))) *Verdict {
	t.tx.ProcessURI(uri, method, proto)
	if h := hostOnly(host); h != "" {
		t.tx.SetServerName(h)
	}
	headers(t.tx.AddRequestHeader)
	return t.verdict(t.tx.ProcessRequestHeaders())
}

func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// WantsRequestBody reports whether request bodies are inspected.
func (t *Tx) WantsRequestBody() bool {
	if t.nat != nil {
		return t.w.native.reqBodyAccess
	}
	return t.tx.IsRequestBodyAccessible()
}

// RequestBody feeds a chunk of the request body; at end it runs phase 2.
// Bodies larger than the limit are refused (413) or cut, as configured.
func (t *Tx) RequestBody(chunk []byte, end bool) *Verdict {
	t.bodySeen = true
	if !t.fast {
		return t.doRequestBody(chunk, end)
	}
	if t.v != nil || t.bodyDone {
		return t.v
	}
	r := t.rec
	if t.nat != nil {
		switch {
		case len(chunk) == 0 && !end:
			return nil
		case len(chunk) == 0 && t.nat.phase == types.PhaseRequestHeaders:
			r.bodyEnd = true
			if v, ok := t.runNative(types.PhaseRequestBody); ok {
				t.bodyDone = true
				return v
			}
			return t.toLean()
		}
		if v := t.toLean(); v != nil {
			return v
		}
		if !t.fast {
			return t.doRequestBody(chunk, end)
		}
	}
	if len(chunk) > 0 || end {
		r.body = append(r.body, bytes.Clone(chunk))
		r.bodyLen += len(chunk)
		r.bodyEnd = end
	}
	if r.bodyLen > fpMaxRecorded {
		return t.replay()
	}
	ph := types.RulePhase(0)
	if end {
		ph = types.PhaseRequestBody
	}
	return t.check(t.doRequestBody(chunk, end), ph)
}

func (t *Tx) doRequestBody(chunk []byte, end bool) *Verdict {
	if t.v != nil || t.bodyDone {
		return t.v
	}
	if len(chunk) > 0 && t.tx.IsRequestBodyAccessible() {
		it, _, err := t.tx.WriteRequestBody(chunk)
		if it != nil {
			return t.verdict(it)
		}
		if err != nil {
			return t.verdict(&types.Interruption{Status: 400, Action: "deny"})
		}
	}
	if !end {
		return nil
	}
	t.bodyDone = true
	it, err := t.tx.ProcessRequestBody()
	if it != nil {
		return t.verdict(it)
	}
	if err != nil {
		return t.verdict(&types.Interruption{Status: 400, Action: "deny"})
	}
	return nil
}

// FinishRequest runs phase 2 without a body when RequestBody was never
// called (a body was expected but none came), so that the request's
// anomaly score is still added up; otherwise it only returns the verdict.
func (t *Tx) FinishRequest() *Verdict {
	if t.bodySeen {
		return t.v
	}
	return t.RequestBody(nil, true)
}

// ResponseHeaders runs phase 3.
func (t *Tx) ResponseHeaders(status int, proto string, headers func(add func(name, value string))) *Verdict {
	if !t.fast {
		return t.doResponseHeaders(status, proto, headers)
	}
	if t.v != nil {
		return t.v
	}
	r := t.rec
	r.respHeaders, r.status, r.respProto = true, status, proto
	if t.nat != nil {
		headers(func(n, v string) { r.respHdrs = append(r.respHdrs, n, v) })
		if ph := t.nat.phase; !t.nat.respSet && (ph == types.PhaseRequestHeaders || ph == types.PhaseRequestBody) {
			t.nat.response(status, proto, r.respHdrs)
			if v, ok := t.runNative(types.PhaseResponseHeaders); ok {
				return v
			}
		}
		return t.toLean()
	}
	return t.check(t.doResponseHeaders(status, proto, func(add func(n, v string)) {
		headers(func(n, v string) {
			r.respHdrs = append(r.respHdrs, n, v)
			add(n, v)
		})
	}), types.PhaseResponseHeaders)
}

func (t *Tx) doResponseHeaders(status int, proto string, headers func(add func(name, value string))) *Verdict {
	if t.v != nil {
		return t.v
	}
	headers(t.tx.AddResponseHeader)
	return t.verdict(t.tx.ProcessResponseHeaders(status, proto))
}

// WantsResponseBody reports whether this response's body is inspected
// (response inspection on and a matching content type).
func (t *Tx) WantsResponseBody() bool {
	if t.nat != nil {
		return t.w.native.wantsResponseBody(t.nat)
	}
	return t.tx.IsResponseBodyAccessible() && t.tx.IsResponseBodyProcessable()
}

// ResponseBody feeds a chunk of the response body; at end it runs phase 4.
func (t *Tx) ResponseBody(chunk []byte, end bool) *Verdict {
	if !t.fast {
		return t.doResponseBody(chunk, end)
	}
	if t.v != nil {
		return t.v
	}
	r := t.rec
	if t.nat != nil {
		wants := t.w.native.wantsResponseBody(t.nat)
		switch {
		case !end && (len(chunk) == 0 || !wants):
			return nil // not inspected
		case end && !wants && t.nat.phase == types.PhaseResponseHeaders:
			r.respEnd = true
			if v, ok := t.runNative(types.PhaseResponseBody); ok {
				return v
			}
			return t.toLean()
		}
		if v := t.toLean(); v != nil {
			return v
		}
		if !t.fast {
			return t.doResponseBody(chunk, end)
		}
	}
	if len(chunk) > 0 && t.WantsResponseBody() || end {
		r.respBody = append(r.respBody, bytes.Clone(chunk))
		r.respLen += len(chunk)
		r.respEnd = end
	}
	if r.respLen > fpMaxRecorded {
		return t.replay()
	}
	ph := types.RulePhase(0)
	if end {
		ph = types.PhaseResponseBody
	}
	return t.check(t.doResponseBody(chunk, end), ph)
}

func (t *Tx) doResponseBody(chunk []byte, end bool) *Verdict {
	if t.v != nil {
		return t.v
	}
	if len(chunk) > 0 && t.WantsResponseBody() {
		it, _, err := t.tx.WriteResponseBody(chunk)
		if it != nil {
			return t.verdict(it)
		}
		if err != nil {
			return nil
		}
	}
	if !end {
		return nil
	}
	it, _ := t.tx.ProcessResponseBody()
	return t.verdict(it)
}

// Hit is one rule that matched in a transaction.
type Hit = secevents.RuleHit

// Close runs the logging phase, ends the transaction and returns the rules
// that matched and logged (in rule id order, matched data masked).
func (t *Tx) Close() []Hit {
	if t.nat != nil && t.nat.reqSet {
		if _, ok := t.runNative(types.PhaseLogging); ok {
			if t.nat != nil { // decided natively: nothing matched
				t.freeEval()
				return nil
			}
			// replayed: the full instance's logging phase
			t.tx.ProcessLogging()
			return t.finish()
		}
	}
	if t.nat != nil {
		t.toLean()
		if !t.fast { // replayed into the full instance
			t.tx.ProcessLogging()
			return t.finish()
		}
	}
	t.tx.ProcessLogging()
	if t.fast {
		t.check(nil, types.PhaseLogging)
		if !t.fast { // replayed: the full instance's logging phase
			t.tx.ProcessLogging()
		}
	}
	return t.finish()
}

// finish collects the hits and ends the Coraza transaction.
func (t *Tx) finish() []Hit {
	var hits []Hit
	for _, m := range t.tx.MatchedRules() {
		r := m.Rule()
		if m.Message() == "" || r.ID() >= 900000 && r.ID() < 902000 {
			continue // CRS setup and initialization rules
		}
		h := Hit{ID: r.ID(), Message: m.Message(), Severity: r.Severity().String()}
		if md := m.MatchedDatas(); len(md) > 0 {
			v := md[0].Variable().Name()
			if k := md[0].Key(); k != "" {
				v += ":" + k
			}
			h.Variable = v
			h.Data = secevents.MaskMatched(v, md[0].Value())
		}
		hits = append(hits, h)
	}
	t.freeEval()
	_ = t.tx.Close()
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].ID < hits[j].ID })
	return hits
}

// IDs returns the rule ids of hits.
func IDs(hits []Hit) []int {
	out := make([]int, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

// Cache keeps compiled WAFs by the hash of their directives, so that load
// balancers sharing an AppFirewall, and configuration pushes that do not
// change it, reuse one instance.
type Cache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	max     int
	gen     uint64
}

type cacheEntry struct {
	once sync.Once
	w    *WAF
	err  error
	used uint64
}

// NewCache returns a cache keeping at most max instances (0: 16).
func NewCache(max int) *Cache {
	if max <= 0 {
		max = 16
	}
	return &Cache{entries: map[string]*cacheEntry{}, max: max}
}

// Get returns the compiled WAF for spec, compiling it at most once.
func (c *Cache) Get(spec v1.AppFirewallSpec) (*WAF, error) {
	d, err := directives(spec, false)
	if err != nil {
		return nil, fmt.Errorf("rendering AppFirewall directives: %w", err)
	}
	return c.get(spec, d)
}

func (c *Cache) get(spec v1.AppFirewallSpec, d string) (*WAF, error) {
	sum := sha256.Sum256([]byte(d))
	key := string(sum[:])
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{}
		c.entries[key] = e
		c.evictLocked(key)
	}
	c.gen++
	e.used = c.gen
	c.mu.Unlock()
	e.once.Do(func() { e.w, e.err = compileDirectives(spec, d) })
	return e.w, e.err
}

func (c *Cache) evictLocked(keep string) {
	for len(c.entries) > c.max {
		var oldest string
		var min uint64 = ^uint64(0)
		for k, e := range c.entries {
			if k != keep && e.used < min {
				oldest, min = k, e.used
			}
		}
		delete(c.entries, oldest)
	}
}

// Len returns the number of cached instances.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// CompileForCRSTests compiles spec with the additional settings the CRS
// project prescribes for running its regression tests (paranoia level 4
// for blocking, argument limits, UTF-8 validation, the X-CRS-Test marker
// rule). It exists for the CRS regression suite, not for production use.
func CompileForCRSTests(spec v1.AppFirewallSpec) (*WAF, error) {
	d, err := directives(spec, true)
	if err != nil {
		return nil, fmt.Errorf("rendering AppFirewall directives: %w", err)
	}
	return compileDirectives(spec, d)
}
