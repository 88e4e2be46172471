package waf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3"
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
		lean, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(root).WithDirectives(p.lean))
		if err != nil {
			return nil, fmt.Errorf("compiling the AppFirewall's bookkeeping rules: %w", err)
		}
		w.fp, w.lean, w.fpStats = p, lean, p.stats
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
type Tx struct {
	w        *WAF
	tx       types.Transaction
	v        *Verdict
	bodyDone bool
	bodySeen bool // RequestBody was called
}

// NewTx starts a transaction; id is the request id.
func (w *WAF) NewTx(id string) *Tx {
	var tx types.Transaction
	if id != "" {
		tx = w.waf.NewTransactionWithID(id)
	} else {
		tx = w.waf.NewTransaction()
	}
	return &Tx{w: w, tx: tx}
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

// Interrupted returns the verdict if an earlier phase interrupted.
func (t *Tx) Interrupted() *Verdict { return t.v }

// Connection records the client and server addresses.
func (t *Tx) Connection(client, server netip.AddrPort) {
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
func (t *Tx) WantsRequestBody() bool { return t.tx.IsRequestBodyAccessible() }

// RequestBody feeds a chunk of the request body; at end it runs phase 2.
// Bodies larger than the limit are refused (413) or cut, as configured.
func (t *Tx) RequestBody(chunk []byte, end bool) *Verdict {
	t.bodySeen = true
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
	if t.v != nil {
		return t.v
	}
	headers(t.tx.AddResponseHeader)
	return t.verdict(t.tx.ProcessResponseHeaders(status, proto))
}

// WantsResponseBody reports whether this response's body is inspected
// (response inspection on and a matching content type).
func (t *Tx) WantsResponseBody() bool {
	return t.tx.IsResponseBodyAccessible() && t.tx.IsResponseBodyProcessable()
}

// ResponseBody feeds a chunk of the response body; at end it runs phase 4.
func (t *Tx) ResponseBody(chunk []byte, end bool) *Verdict {
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
	t.tx.ProcessLogging()
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
