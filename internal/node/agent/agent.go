package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/distrib"
)

// MaxUpdateSize bounds one update from the console (a full snapshot).
const MaxUpdateSize = 256 << 20

// Options configures a node agent.
type Options struct {
	// ConsoleURL is the console's base URL (https://HOST:PORT).
	ConsoleURL string
	// Token is the SiteToken; needed only until the node is registered.
	Token string
	// Name is the site name to register as.
	Name string
	// DataDir keeps the key, certificate, console CA and the sealed
	// last-known-good snapshot.
	DataDir string
	// CAData is the console CA (PEM) to trust when registering; once
	// registered, the CA saved in DataDir is used.
	CAData []byte
	// NodeVersion is reported to the console.
	NodeVersion string
	// CapabilityVersion is the protocol version the node understands
	// (default distrib.CapabilityVersion).
	CapabilityVersion int
	// Applier puts received objects in force. Required.
	Applier Applier
	// MinBackoff and MaxBackoff bound reconnection delays (defaults 500ms
	// and 30s); each delay is drawn at random up to the exponential bound.
	MinBackoff, MaxBackoff time.Duration
	// MaxBufferedEvents bounds the telemetry events kept while the console
	// is away (default 1000).
	MaxBufferedEvents int
	// ObjectMetrics, when set, is read every TelemetryInterval for the data
	// plane's per-load-balancer counters (requests, bytes, TCP sessions),
	// reported as object counters (see SetObjectCounter).
	ObjectMetrics prometheus.Gatherer
	// TelemetryInterval is how often counters are reported (default 10s).
	TelemetryInterval time.Duration
	// RetryMin and RetryMax bound the delays between applying the
	// configuration again while the Applier reports that part of it may
	// start later (Retrier: a listener whose port is taken); the delay
	// starts at RetryMin and doubles up to RetryMax (defaults 1s and 30s).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	Now                func() time.Time
}

// Agent keeps a node in step with its console.
type Agent struct {
	opts Options
	log  *slog.Logger
	aead interface {
		NonceSize() int
		Seal(dst, nonce, plaintext, additionalData []byte) []byte
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	}

	// applyMu serialises applying configuration (updates, retries, the
	// decommission) with sending the ack that reports it, so that acks
	// reach the console in the order the configurations were applied.
	applyMu sync.Mutex
	// retryKick starts the retry loop (see Retrier).
	retryKick chan struct{}

	mu sync.Mutex
	id *identity
	// streamSend sends on the current sync stream (nil while there is
	// none).
	streamSend func(*distrib.NodeMessage) error
	// consoleSkipped is what the console said it left out of the running
	// version (repeated in every ack of that version).
	consoleSkipped []distrib.ObjectRef
	version        string
	objects        map[string]json.RawMessage // ref key -> object
	updates        chan string
	// rejected and skipped are what the running version left out (sent
	// again when the console confirms the version).
	rejected []distrib.ObjectError
	skipped  []distrib.ObjectRef

	telMu   sync.Mutex
	tel     telemetry
	telKick chan struct{}
	// telAcks says the console confirms telemetry reports: events of
	// reports it has not confirmed when a stream ends are sent again.
	telAcks atomic.Bool
}

// New checks the options and prepares the data directory.
func New(opts Options) (*Agent, error) {
	if opts.Applier == nil {
		return nil, errors.New("node agent: an Applier is required")
	}
	if opts.DataDir == "" {
		return nil, errors.New("node agent: a data directory is required")
	}
	u, err := url.Parse(opts.ConsoleURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("node agent: console URL %q: want https://HOST:PORT", opts.ConsoleURL)
	}
	if opts.CapabilityVersion <= 0 {
		opts.CapabilityVersion = distrib.CapabilityVersion
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxBufferedEvents <= 0 {
		opts.MaxBufferedEvents = 1000
	}
	if opts.TelemetryInterval <= 0 {
		opts.TelemetryInterval = 10 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node agent: creating data directory: %w", err)
	}
	a := &Agent{opts: opts, log: opts.Logger.With("component", "node-agent"), objects: map[string]json.RawMessage{},
		updates: make(chan string, 16), telKick: make(chan struct{}, 1), retryKick: make(chan struct{}, 1)}
	aead, err := a.stateAEAD()
	if err != nil {
		return nil, err
	}
	a.aead = aead
	return a, nil
}

// Version returns the snapshot version in force ("" before any).
func (a *Agent) Version() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Applied receives each version once it is applied and saved (for tests
// and the dev command; dropped when nobody reads).
func (a *Agent) Applied() <-chan string { return a.updates }

// Run starts from the last-known-good snapshot, registers when the node
// has no identity yet, then keeps the sync stream up (renewing the
// certificate as it goes) until ctx ends. It returns early only when
// registration is refused for good (bad token, name taken).
func (a *Agent) Run(ctx context.Context) error {
	rctx, stopRetry := context.WithCancel(ctx)
	retryDone := make(chan struct{})
	go func() { defer close(retryDone); a.retryLoop(rctx) }()
	defer func() { stopRetry(); <-retryDone }()
	if lg, err := a.loadLastGood(); err != nil {
		a.log.Error("last-known-good snapshot unusable; waiting for the console", "err", err)
	} else if lg != nil {
		objs := map[string]json.RawMessage{}
		for _, raw := range lg.Objects {
			objs[rawKey(raw)] = raw
		}
		a.applyMu.Lock()
		rej, skipped := a.applyObjects(ctx, objs)
		a.mu.Lock()
		a.version, a.objects, a.rejected, a.skipped = lg.Version, objs, rej, skipped
		a.mu.Unlock()
		a.applyMu.Unlock()
		a.kickRetry()
		a.log.Info("serving last-known-good configuration", "version", lg.Version, "objects", len(objs),
			"rejected", len(rej), "skipped", len(skipped))
	}
	id, err := a.loadIdentity()
	if err != nil {
		return err
	}
	if id == nil {
		if id, err = a.registerLoop(ctx); id == nil {
			return err
		}
	}
	a.setIdentity(id)
	attempt := 0
	// forceRenew: the console refused the certificate as expired or not
	// yet valid although the node's clock says otherwise (the clocks
	// drifted apart): renew before the next stream.
	forceRenew := false
	for ctx.Err() == nil {
		id = a.identity()
		if renewDue(id.leaf, a.opts.Now()) || forceRenew {
			forceRenew = false
			nid, err := a.renew(ctx, id)
			if distrib.IsDecommissioned(err) {
				return a.decommissioned(ctx, id, err)
			}
			if err != nil {
				a.log.Warn("certificate renewal failed; keeping the current one", "err", err, "expires", id.leaf.NotAfter)
			} else {
				a.setIdentity(nid)
				id = nid
			}
		}
		healthy, err := a.syncOnce(ctx, id)
		if ctx.Err() != nil {
			return nil
		}
		if distrib.IsDecommissioned(err) {
			return a.decommissioned(ctx, id, err)
		}
		forceRenew = refusedAsExpired(err)
		if a.opts.Token != "" && mustRegisterAgain(err) {
			// The site was deleted (a recommissioned site, say) or
			// registered again elsewhere: enrol with the token given.
			a.log.Warn("the console no longer accepts this node's identity; registering again with the site token",
				"site", id.rec.Site, "err", err)
			if a.opts.Name == "" {
				a.opts.Name = id.rec.Site
			}
			nid, err := a.registerLoop(ctx)
			if nid == nil {
				return err
			}
			a.setIdentity(nid)
			attempt = 0
			continue
		}
		if healthy {
			attempt = 0
		}
		a.log.Warn("sync stream ended; reconnecting", "err", err)
		if !a.sleep(ctx, &attempt) {
			return nil
		}
	}
	return nil
}

// registerLoop registers with the token, retrying with backoff; it
// returns a nil identity when ctx ends (nil error) or registration is
// refused for good.
func (a *Agent) registerLoop(ctx context.Context) (*identity, error) {
	attempt := 0
	for {
		id, err := a.register(ctx)
		var p *permanent
		if errors.As(err, &p) {
			return nil, err
		}
		if err == nil {
			return id, nil
		}
		a.log.Warn("registration failed; retrying", "err", err)
		if !a.sleep(ctx, &attempt) {
			return nil, nil
		}
	}
}

// mustRegisterAgain reports whether the console refused the node's
// certificate because its site no longer exists or is a newer site of the
// same name (the console says "register again").
func mustRegisterAgain(err error) bool {
	st := statusOf(err)
	return st != nil && st.Code() == codes.PermissionDenied && strings.Contains(st.Message(), "register again")
}

// statusOf returns the gRPC status in err's chain (nil when there is
// none).
func statusOf(err error) *status.Status {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, ok := status.FromError(e); ok {
			return st
		}
	}
	return nil
}

// refusedAsExpired reports whether the console refused the node's
// certificate as outside its validity.
func refusedAsExpired(err error) bool {
	st := statusOf(err)
	return st != nil && st.Code() == codes.Unauthenticated && strings.Contains(st.Message(), "expired or is not yet valid")
}

func (a *Agent) identity() *identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

func (a *Agent) setIdentity(id *identity) {
	a.mu.Lock()
	a.id = id
	a.mu.Unlock()
}

// sleep waits for a random delay up to MinBackoff·2^attempt (capped at
// MaxBackoff): full jitter, so that thousands of nodes coming back after a
// console restart spread out.
func (a *Agent) sleep(ctx context.Context, attempt *int) bool {
	bound := a.opts.MinBackoff << min(*attempt, 20)
	if bound > a.opts.MaxBackoff || bound <= 0 {
		bound = a.opts.MaxBackoff
	}
	*attempt++
	d := a.opts.MinBackoff/2 + time.Duration(rand.Int64N(int64(bound)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dial returns a gRPC connection to the console presenting the client
// certificate cert returns.
func (a *Agent) dial(roots *x509.CertPool, cert func() *tls.Certificate) (*grpc.ClientConn, error) {
	u, _ := url.Parse(a.opts.ConsoleURL)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: u.Hostname(), NextProtos: []string{"h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert(), nil }}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(distrib.Codec{}), grpc.MaxCallRecvMsgSize(MaxUpdateSize)),
		grpc.WithInitialWindowSize(256<<10), grpc.WithInitialConnWindowSize(256<<10),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("dialling the console: %w", err)
	}
	return conn, nil
}

// syncOnce runs one stream; healthy reports that it got as far as an
// update (so the backoff starts over).
func (a *Agent) syncOnce(ctx context.Context, id *identity) (healthy bool, err error) {
	conn, err := a.dial(id.caPool, func() *tls.Certificate { return &a.identity().cert })
	if err != nil {
		return false, err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Renew while the stream runs; the console ends the stream when the
	// old certificate expires and the reconnect uses the new one. A
	// renewal refused because the site is decommissioned ends the stream
	// with that cause.
	go a.renewLoop(sctx, cancel)
	defer func() {
		if c := context.Cause(sctx); distrib.IsDecommissioned(c) {
			err = c
		}
	}()
	cs, err := conn.NewStream(sctx, &distrib.StreamDesc, distrib.StreamMethod)
	if err != nil {
		return false, fmt.Errorf("opening the sync stream: %w", err)
	}
	var sendMu sync.Mutex
	send := func(m *distrib.NodeMessage) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return cs.SendMsg(m)
	}
	if err := send(&distrib.NodeMessage{Hello: &distrib.Hello{Site: id.rec.Site, NodeVersion: a.opts.NodeVersion,
		CapabilityVersion: a.opts.CapabilityVersion, AppliedVersion: a.Version()}}); err != nil {
		// The console's reason (a refused certificate, ...) comes with
		// RecvMsg.
		var up distrib.Update
		if rerr := cs.RecvMsg(&up); rerr != nil {
			err = rerr
		}
		return false, fmt.Errorf("sending hello: %w", err)
	}
	var telAcked atomic.Uint64 // the last report of this stream the console confirmed
	telDone := make(chan struct{})
	go func() { defer close(telDone); a.telemetryLoop(sctx, send, &telAcked) }()
	// The loop has put back what the console did not confirm before the
	// next stream starts.
	defer func() { cancel(nil); <-telDone }()
	a.mu.Lock()
	a.streamSend = send
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.streamSend = nil
		a.mu.Unlock()
	}()
	for {
		var up distrib.Update
		if err := cs.RecvMsg(&up); err != nil {
			if s, ok := status.FromError(err); ok && (s.Code() == codes.Unauthenticated || s.Code() == codes.PermissionDenied) {
				a.log.Error("the console refused this site", "code", s.Code().String(), "message", s.Message())
			}
			return healthy, err
		}
		if up.TelemetryAcks {
			a.telAcks.Store(true)
		}
		if up.TelemetryAck != 0 && up.Version == "" {
			a.telAcks.Store(true)
			telAcked.Store(up.TelemetryAck)
			continue
		}
		healthy = true
		a.applyMu.Lock()
		ack, err := a.handle(ctx, &up)
		if err == nil {
			if err = send(&distrib.NodeMessage{Ack: ack}); err != nil {
				err = fmt.Errorf("sending ack: %w", err)
			}
		}
		a.applyMu.Unlock()
		if err != nil {
			return healthy, err
		}
	}
}

func (a *Agent) renewLoop(ctx context.Context, stop context.CancelCauseFunc) {
	for {
		id := a.identity()
		life := id.leaf.NotAfter.Sub(id.leaf.NotBefore)
		due := id.leaf.NotBefore.Add(life * 2 / 3).Sub(a.opts.Now())
		if due < time.Second {
			due = time.Second
		}
		t := time.NewTimer(due)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if nid, err := a.renew(ctx, id); distrib.IsDecommissioned(err) {
			stop(err)
			return
		} else if err != nil {
			a.log.Warn("certificate renewal failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(life/20+time.Second, time.Minute)):
			}
		} else {
			a.setIdentity(nid)
		}
	}
}

// handle applies an update, saves the result as last-known-good and
// returns the ack to send.
func (a *Agent) handle(ctx context.Context, up *distrib.Update) (*distrib.Ack, error) {
	a.mu.Lock()
	cur, curVersion := a.objects, a.version
	a.mu.Unlock()
	next := map[string]json.RawMessage{}
	if !up.Full {
		if up.Base != curVersion {
			a.log.Warn("update does not apply to the running version; asking for a full snapshot", "base", up.Base, "running", curVersion)
			return &distrib.Ack{Resync: true}, nil
		}
		for k, v := range cur {
			next[k] = v
		}
		for _, r := range up.Deleted {
			delete(next, refKeyOf(r))
		}
	}
	for _, raw := range up.Objects {
		next[rawKey(raw)] = raw
	}
	var rejected []distrib.ObjectError
	var skipped []distrib.ObjectRef
	if !up.Full && len(up.Objects) == 0 && len(up.Deleted) == 0 {
		// A confirmation: same content, maybe a new version name.
		a.mu.Lock()
		rejected = append([]distrib.ObjectError(nil), a.rejected...)
		skipped = append([]distrib.ObjectRef(nil), a.skipped...)
		a.mu.Unlock()
	} else {
		rejected, skipped = a.applyObjects(ctx, next)
	}
	lg := &lastGood{Version: up.Version}
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lg.Objects = append(lg.Objects, next[k])
	}
	// On disk before the console hears about it.
	if err := a.saveLastGood(lg); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.objects, a.version, a.rejected, a.skipped = next, up.Version, rejected, skipped
	a.consoleSkipped = up.Skipped
	a.mu.Unlock()
	a.kickRetry()
	select {
	case a.updates <- up.Version:
	default:
	}
	skipped = append(skipped, up.Skipped...)
	a.log.Info("configuration applied", "version", up.Version, "full", up.Full, "objects", len(next), "rejected", len(rejected))
	return &distrib.Ack{Version: up.Version, Rejected: rejected, Skipped: skipped}, nil
}

// applyObjects decodes and applies a full object set. Objects of kinds
// this node does not know are skipped; undecodable ones are rejected.
func (a *Agent) applyObjects(ctx context.Context, objs map[string]json.RawMessage) ([]distrib.ObjectError, []distrib.ObjectRef) {
	var rejected []distrib.ObjectError
	var skipped []distrib.ObjectRef
	var list []v1.Object
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := objs[k]
		ref := rawRef(raw)
		if _, ok := v1.LookupKind(ref.Kind); !ok {
			skipped = append(skipped, ref)
			continue
		}
		obj, err := v1.Decode(raw)
		if err != nil {
			rejected = append(rejected, distrib.ObjectError{ObjectRef: ref, Error: err.Error()})
			continue
		}
		list = append(list, obj)
	}
	rejected = append(rejected, a.opts.Applier.Apply(ctx, list)...)
	return rejected, skipped
}

type rawHead struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func rawRef(raw json.RawMessage) distrib.ObjectRef {
	var h rawHead
	_ = json.Unmarshal(raw, &h)
	return distrib.ObjectRef{Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name}
}

func refKeyOf(r distrib.ObjectRef) string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

func rawKey(raw json.RawMessage) string { return refKeyOf(rawRef(raw)) }

// ErrDecommissioned is returned by Run when the console says the node's
// site is decommissioned; the node has removed its configuration.
var ErrDecommissioned = errors.New("site decommissioned")

// decommissioned stops serving: the data plane gets an empty
// configuration and the last-known-good snapshot (and the key sealing it)
// is deleted, so that a restart does not bring the tenant's configuration
// back. The identity files stay (the console refuses them from now on, and
// a restart reports the same thing again).
func (a *Agent) decommissioned(ctx context.Context, id *identity, cause error) error {
	site := a.opts.Name
	if id != nil && id.rec.Site != "" {
		site = id.rec.Site
	}
	a.log.Error("the console decommissioned this site; removing its configuration and last-known-good copy",
		"site", site, "message", cause.Error())
	a.applyMu.Lock()
	rejected := a.opts.Applier.Apply(ctx, nil)
	a.mu.Lock()
	a.version, a.objects, a.rejected, a.skipped = "", map[string]json.RawMessage{}, nil, nil
	a.mu.Unlock()
	a.applyMu.Unlock()
	var errs []error
	for _, f := range []string{snapshotFile, stateKeyFile} {
		if err := os.Remove(a.path(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", f, err))
		}
	}
	if len(rejected) > 0 {
		errs = append(errs, fmt.Errorf("clearing the data plane: %s", rejected[0].Error))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: site %q: the node stopped serving but %v", ErrDecommissioned, site, err)
	}
	return fmt.Errorf("%w: site %q is decommissioned by the console; its configuration and last-known-good copy "+
		"were removed and the node no longer serves traffic", ErrDecommissioned, site)
}
