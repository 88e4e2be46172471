package distrib

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/meridian-platform/meridian/internal/pki"
	"github.com/meridian-platform/meridian/internal/sites"
)

// helloTimeout bounds the wait for a node's Hello.
const helloTimeout = 10 * time.Second

// stream is one node's sync stream. Updates follow "latest wins": only
// the newest snapshot offered is sent once the node is ready for more.
type stream struct {
	tenant, site string
	latest       atomic.Pointer[Snapshot]
	notify       chan struct{}
	resync       atomic.Bool
	// telAck is the Seq of the last telemetry report taken, to confirm.
	telAck    atomic.Uint64
	cancel    context.CancelCauseFunc
	closeOnce sync.Once
}

func (s *stream) offer(snap *Snapshot) {
	s.latest.Store(snap)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *stream) close(cause error) { s.closeOnce.Do(func() { s.cancel(cause) }) }

// ServerOptions are the gRPC server options the sync service needs (the
// JSON codec; small per-stream buffers so that thousands of streams fit).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(handshaken{}),
		grpc.ForceServerCodec(Codec{}),
		grpc.MaxRecvMsgSize(16 << 20),
		grpc.InitialWindowSize(64 << 10),
		grpc.InitialConnWindowSize(64 << 10),
		grpc.WriteBufferSize(4 << 10),
		grpc.ReadBufferSize(0), // the TLS connection buffers a record already
		grpc.SharedWriteBuffer(true),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// Register adds the sync service to a gRPC server built with
// ServerOptions.
func (d *Distributor) Register(s *grpc.Server) { s.RegisterService(serviceDesc(d.serve, d.renew), nil) }

// NewGRPCServer returns a gRPC server carrying the sync service: serve it
// on the site side of SplitListener (or mount it with ServeHTTP behind a
// TLS listener that requests client certificates).
func (d *Distributor) NewGRPCServer() *grpc.Server {
	s := grpc.NewServer(ServerOptions()...)
	d.Register(s)
	return s
}

// IsGRPC reports whether r is a gRPC call (to route it to the gRPC server
// on a shared listener).
func IsGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return r.ProtoMajor == 2 && len(ct) >= 16 && ct[:16] == "application/grpc"
}

func grpcError(err error) error {
	var se *sites.Error
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusUnauthorized:
			return status.Error(codes.Unauthenticated, se.Message)
		case http.StatusForbidden:
			return status.Error(codes.PermissionDenied, se.Message)
		}
	}
	return status.Error(codes.Internal, err.Error())
}

func (d *Distributor) serve(_ any, ss grpc.ServerStream) error {
	ctx := ss.Context()
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return status.Error(codes.Unauthenticated, "the sync stream needs the site's client certificate (mTLS)")
	}
	sp, err := d.opts.Sites.Authenticate(ctx, ti.State.PeerCertificates)
	if err != nil {
		return grpcError(err)
	}
	select {
	case <-d.loaded:
	case <-ctx.Done():
		return ctx.Err()
	}
	hello, err := recvHello(ctx, ss)
	if err != nil {
		return err
	}
	if hello.Site != "" && hello.Site != sp.Site {
		return status.Errorf(codes.PermissionDenied, "hello names site %q but the client certificate is for site %q", hello.Site, sp.Site)
	}
	if hello.CapabilityVersion <= 0 {
		return status.Error(codes.InvalidArgument, "hello: capabilityVersion must be positive")
	}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The certificate stops being good at NotAfter: end the stream then,
	// so that the node renews and reconnects.
	expiry := time.AfterFunc(time.Until(sp.NotAfter.Add(pki.ClockSkew)), func() { cancel(errors.New("client certificate expired")) })
	defer expiry.Stop()
	st := &stream{tenant: sp.Tenant, site: sp.Site, notify: make(chan struct{}, 1), cancel: cancel}
	base := d.attach(st, sp, hello)
	defer d.detach(st)

	errc := make(chan error, 1)
	go func() { errc <- d.receive(sctx, ss, st) }()
	if base != nil {
		// The node runs the current content already (a reconnect, a
		// console restart): confirm it under the current version instead
		// of sending it again.
		msg, err := base.encodeConfirm(hello.AppliedVersion)
		if err == nil {
			err = ss.SendMsg(msg)
		}
		if err != nil {
			return err
		}
	}
	err = d.send(sctx, ss, st, base)
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		if errors.Is(cause, errSiteGone) {
			return status.Error(codes.PermissionDenied, cause.Error())
		}
		return status.Error(codes.Unavailable, cause.Error())
	}
	if err != nil {
		return err
	}
	return <-errc
}

func recvHello(ctx context.Context, ss grpc.ServerStream) (*Hello, error) {
	got := make(chan error, 1)
	var m NodeMessage
	go func() { got <- ss.RecvMsg(&m) }()
	t := time.NewTimer(helloTimeout)
	defer t.Stop()
	select {
	case err := <-got:
		if err != nil {
			return nil, err
		}
	case <-t.C:
		return nil, status.Error(codes.DeadlineExceeded, "no hello from the node")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if m.Hello == nil {
		return nil, status.Error(codes.InvalidArgument, "the first message must be a hello")
	}
	return m.Hello, nil
}

// attach registers the stream (closing an older stream of the same site),
// places the site in its group and returns the snapshot the node already
// runs, if its content is current.
func (d *Distributor) attach(st *stream, sp *sites.Peer, h *Hello) *Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.liveOf(st.tenant, st.site)
	if l.stream != nil {
		l.stream.close(errors.New("replaced by a newer stream of the same site"))
	}
	l.stream = st
	l.online = true
	l.lastSeen = d.opts.Now()
	l.nodeVersion = h.NodeVersion
	l.cap = h.CapabilityVersion
	l.applied = h.AppliedVersion
	l.dirty = true
	l.siteRev, _ = strconv.ParseInt(sp.Object.Metadata.ResourceVersion, 10, 64)
	ts := d.tenants[st.tenant]
	if ts == nil {
		ts = newTenantState(st.tenant)
		d.tenants[st.tenant] = ts
	}
	se := ts.sites[st.site]
	if se == nil {
		// Registered a moment ago: the watch has not brought it yet.
		se = &siteEntry{tenant: st.tenant, name: st.site, labels: sp.Object.Metadata.Labels,
			state: sp.Object.Spec.StateOf(), statusState: sp.Object.Status.State, statusCap: sp.Object.Status.CapabilityVersion}
		ts.sites[st.site] = se
	}
	key, _, _ := d.groupKeyFor(ts, se)
	var base *Snapshot
	if g := d.groups[key]; g != nil && g.snap != nil && se.group == g {
		st.latest.Store(g.snap)
		if h.AppliedVersion != "" && HashOf(h.AppliedVersion) == g.snap.Hash {
			base = g.snap
			l.applied = g.snap.Version
		}
	} else {
		d.dirty[st.tenant] = true
		d.kickLocked()
	}
	st.notify <- struct{}{}
	return base
}

func (d *Distributor) detach(st *stream) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.live[st.tenant+"/"+st.site]
	if l == nil || l.stream != st {
		return
	}
	l.stream = nil
	l.online = false
	l.lastSeen = d.opts.Now()
	l.dirty = true
}

// send writes updates: the newest snapshot each time the stream is told,
// as a delta from what was last sent when there is one.
func (d *Distributor) send(ctx context.Context, ss grpc.ServerStream, st *stream, last *Snapshot) error {
	var lastAck uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-st.notify:
		}
		if ack := st.telAck.Load(); ack > lastAck {
			if err := ss.SendMsg(&Update{TelemetryAck: ack}); err != nil {
				return err
			}
			lastAck = ack
		}
		snap := st.latest.Load()
		if st.resync.Swap(false) {
			last = nil
		}
		if snap == nil || snap == last {
			continue
		}
		msg, err := snap.encodeFor(last)
		if err != nil {
			return status.Errorf(codes.Internal, "encoding update: %v", err)
		}
		if err := ss.SendMsg(msg); err != nil {
			return err
		}
		last = snap
	}
}

func (d *Distributor) receive(ctx context.Context, ss grpc.ServerStream, st *stream) error {
	for {
		var m NodeMessage
		if err := ss.RecvMsg(&m); err != nil {
			st.close(errors.New("node closed the stream"))
			return nil
		}
		if m.Telemetry != nil {
			d.takeTelemetry(st, m.Telemetry)
			// Taken (its events are stored): the send loop confirms it.
			if m.Telemetry.Seq > st.telAck.Load() {
				st.telAck.Store(m.Telemetry.Seq)
				select {
				case st.notify <- struct{}{}:
				default:
				}
			}
		}
		if m.Ack == nil {
			continue
		}
		if m.Ack.Resync {
			st.resync.Store(true)
			select {
			case st.notify <- struct{}{}:
			default:
			}
			continue
		}
		d.mu.Lock()
		l := d.liveOf(st.tenant, st.site)
		if l.stream == st {
			// Only what status shows marks the site for a status write.
			if l.applied != m.Ack.Version || !slices.Equal(l.rejected, m.Ack.Rejected) || !slices.Equal(l.skipped, m.Ack.Skipped) {
				l.dirty = true
			}
			l.applied = m.Ack.Version
			l.rejected = m.Ack.Rejected
			l.skipped = m.Ack.Skipped
			l.lastSeen = d.opts.Now()
		}
		d.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// SiteState is the in-memory view of one site's node.
type SiteState struct {
	Online         bool
	LastSeen       time.Time
	NodeVersion    string
	Capability     int
	AppliedVersion string
	// CurrentVersion is the version of the snapshot the site should run.
	CurrentVersion string
	Rejected       []ObjectError
	Skipped        []ObjectRef
}

// State returns what the console knows about a site right now.
func (d *Distributor) State(tenant, site string) (SiteState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out SiteState
	l := d.live[tenant+"/"+site]
	ts := d.tenants[tenant]
	if ts == nil || ts.sites[site] == nil {
		return out, false
	}
	if g := ts.sites[site].group; g != nil && g.snap != nil {
		out.CurrentVersion = g.snap.Version
	}
	if l != nil {
		out.Online, out.LastSeen, out.NodeVersion, out.Capability = l.online, l.lastSeen, l.nodeVersion, l.cap
		out.AppliedVersion = l.applied
		out.Rejected = append(out.Rejected, l.rejected...)
		out.Skipped = append(out.Skipped, l.skipped...)
	}
	return out, true
}

// Snapshot returns the current snapshot of a site (for tests and tools).
func (d *Distributor) Snapshot(tenant, site string) (*Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts := d.tenants[tenant]
	if ts == nil || ts.sites[site] == nil || ts.sites[site].group == nil || ts.sites[site].group.snap == nil {
		return nil, fmt.Errorf("no snapshot for site %q of tenant %q yet", site, tenant)
	}
	return ts.sites[site].group.snap, nil
}

func (d *Distributor) takeTelemetry(st *stream, t *Telemetry) {
	d.mu.Lock()
	l := d.liveOf(st.tenant, st.site)
	var own []ObjectCounters
	if l.stream == st {
		if t.Counters != nil {
			l.counters = t.Counters
		}
		if t.Objects != nil {
			l.objCounters = d.attributeLocked(st.tenant, st.site, t.Objects)
			for _, oc := range l.objCounters[st.tenant] {
				own = append(own, ObjectCounters{ObjectRef: oc.ref, Counters: oc.counters})
			}
		}
		l.events = append(l.events, t.Events...)
		if over := len(l.events) - d.opts.MaxEventsPerSite; over > 0 {
			l.dropped += over
			l.events = append([]Event(nil), l.events[over:]...)
		}
		l.dropped += t.Dropped
		l.lastSeen = d.opts.Now()
	}
	d.mu.Unlock()
	if d.opts.OnTelemetry != nil {
		// The owner's view: its own objects under their own names, never
		// a guest tenant's.
		view := *t
		view.Objects = own
		d.opts.OnTelemetry(st.tenant, st.site, &view)
	}
}

// attributeLocked maps per-object counters, named as the site's node sees
// the objects, to their tenants and names there, through the snapshot the
// site is assigned. Counters of objects the snapshot does not hold (a
// node reporting something it was not sent) are dropped: they are nobody's.
func (d *Distributor) attributeLocked(tenant, site string, objs []ObjectCounters) map[string]map[string]objCounters {
	out := map[string]map[string]objCounters{}
	ts := d.tenants[tenant]
	if ts == nil || ts.sites[site] == nil || ts.sites[site].group == nil || ts.sites[site].group.snap == nil {
		return out
	}
	snap := ts.sites[site].group.snap
	for _, oc := range objs {
		it := snap.byWire[refKey(oc.ObjectRef)]
		if it == nil {
			continue
		}
		m := out[it.tenant]
		if m == nil {
			m = map[string]objCounters{}
			out[it.tenant] = m
		}
		shared := snap.sharedListeners[refKey(oc.ObjectRef)]
		c := make(map[string]float64, len(oc.Counters))
		for k, v := range oc.Counters {
			if shared && strings.HasPrefix(k, listenerCounterPrefix) {
				// The listener also carries another tenant's traffic.
				continue
			}
			c[k] = v
		}
		m[refKey(it.orig)] = objCounters{ref: it.orig, counters: c}
	}
	return out
}

// ObjectTelemetry returns the latest counters of tenant's objects on the
// site owner/site (owner == tenant for its own sites; another tenant for a
// site leased to it), keyed by the objects as tenant names them. Other
// tenants' objects on the same site are never included.
func (d *Distributor) ObjectTelemetry(tenant, owner, site string) map[ObjectRef]map[string]float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.live[owner+"/"+site]
	if l == nil {
		return nil
	}
	out := map[ObjectRef]map[string]float64{}
	for _, oc := range l.objCounters[tenant] {
		c := make(map[string]float64, len(oc.counters))
		for k, v := range oc.counters {
			c[k] = v
		}
		out[oc.ref] = c
	}
	return out
}

// SiteTelemetry is the latest telemetry of a site, kept in memory.
type SiteTelemetry struct {
	Counters map[string]float64
	// Events are the most recent events (at most MaxEventsPerSite).
	Events []Event
	// Dropped counts events lost on the node or here.
	Dropped int
}

// Telemetry returns what a site's node last reported, for the site's
// owner: node-wide counters and events (per-object counters: see
// ObjectTelemetry).
func (d *Distributor) Telemetry(tenant, site string) SiteTelemetry {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.live[tenant+"/"+site]
	if l == nil {
		return SiteTelemetry{}
	}
	c := make(map[string]float64, len(l.counters))
	for k, v := range l.counters {
		c[k] = v
	}
	return SiteTelemetry{Counters: c, Events: append([]Event(nil), l.events...), Dropped: l.dropped}
}

// renew is the unary Renew method: a new certificate for the site named by
// the connection's client certificate (expired ones within the grace
// window too).
func (d *Distributor) renew(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var req sites.RenewRequest
	if err := dec(&req); err != nil {
		return nil, err
	}
	if d.opts.Renewer == nil {
		return nil, status.Error(codes.Unimplemented, "renewal is not served here")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, status.Error(codes.Unauthenticated, "renewal needs the site's client certificate (mTLS)")
	}
	id, err := d.opts.Renewer.Renew(ctx, ti.State.PeerCertificates, req, p.Addr.String())
	if err != nil {
		var se *sites.Error
		if errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
			return nil, status.Error(codes.InvalidArgument, se.Message)
		}
		return nil, grpcError(err)
	}
	return id, nil
}
