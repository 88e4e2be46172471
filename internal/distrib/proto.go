package distrib

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CapabilityVersion is the protocol version this console speaks. A node
// says which version it understands; kinds newer than that are not sent
// (and are listed as skipped).
//
//	1: load balancers, pools, health checks, certificates, AppFirewall,
//	   ServicePolicy, RateLimiter.
//	2: NetworkPolicy and SecurityBinding.
const CapabilityVersion = 2

// DefaultKindCapabilities is the capability version each kind newer than
// version 1 needs (Options.KindCapabilities when that is nil). A load
// balancer whose namespace has a SecurityBinding is held back from a
// node too old for the binding, since it would run unprotected there.
func DefaultKindCapabilities() map[string]int {
	return map[string]int{"NetworkPolicy": 2, "SecurityBinding": 2}
}

// Service and method names of the sync stream.
const (
	ServiceName  = "meridian.sync.v1.Sync"
	StreamMethod = "/" + ServiceName + "/Stream"
	// RenewMethod exchanges the connection's (possibly expired) client
	// certificate for a new one: sites.RenewRequest -> sites.Identity.
	RenewMethod = "/" + ServiceName + "/Renew"
)

// IsDecommissioned reports whether err is the console saying that the
// node's site is decommissioned: the sync stream closed because of it, or
// a stream or renewal refused for it (PermissionDenied, `site "NAME" is
// decommissioned`). A node told so stops serving its configuration.
func IsDecommissioned(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.PermissionDenied && strings.Contains(s.Message(), " is decommissioned")
}

// NodeMessage is what a node sends on the stream: a Hello first, then
// Acks.
type NodeMessage struct {
	Hello     *Hello     `json:"hello,omitempty"`
	Ack       *Ack       `json:"ack,omitempty"`
	Telemetry *Telemetry `json:"telemetry,omitempty"`
}

// Telemetry carries a node's counters (latest values) and the events it
// buffered (while the console was away, within a bounded size).
type Telemetry struct {
	// Counters are node-wide (process, connections refused before any
	// load balancer is known); only the site's owner sees them.
	Counters map[string]float64 `json:"counters,omitempty"`
	// Objects are per-object counters (latest values), each object named
	// as the node sees it. On a shared site the console attributes each to
	// its tenant: a tenant sees only its own objects' counters.
	Objects []ObjectCounters `json:"objects,omitempty"`
	Events  []Event          `json:"events,omitempty"`
	// Dropped counts events the node had to drop since the last report
	// because its buffer was full.
	Dropped int `json:"dropped,omitempty"`
	// Seq numbers the reports of one stream from 1 (0: the node wants no
	// confirmation). The console confirms the reports it took with
	// Update.TelemetryAck; a node sends the events of reports left
	// unconfirmed when the stream ends again on its next stream (a report
	// written just before the console went away is otherwise lost).
	Seq uint64 `json:"seq,omitempty"`
}

// ObjectCounters are the counters of one object on a node.
type ObjectCounters struct {
	ObjectRef
	Counters map[string]float64 `json:"counters"`
}

// Event is one thing that happened on a node (a security event, a
// configuration problem, ...).
type Event struct {
	Time    time.Time         `json:"time"`
	Type    string            `json:"type"`
	Message string            `json:"message,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// Hello opens the stream.
type Hello struct {
	// Site must be the site named by the client certificate (or empty).
	Site              string `json:"site,omitempty"`
	NodeVersion       string `json:"nodeVersion,omitempty"`
	CapabilityVersion int    `json:"capabilityVersion"`
	// AppliedVersion is the snapshot version the node runs (from its
	// last-known-good copy), "" when it has none.
	AppliedVersion string `json:"appliedVersion,omitempty"`
}

// Ack answers an update.
type Ack struct {
	// Version is the snapshot version now applied.
	Version string `json:"version"`
	// Rejected lists objects the node could not apply (skipped with
	// everything that depends on them; the rest applied).
	Rejected []ObjectError `json:"rejected,omitempty"`
	// Skipped lists objects of kinds the node does not understand.
	Skipped []ObjectRef `json:"skipped,omitempty"`
	// Resync asks for a full snapshot (the node could not apply a delta
	// on top of what it runs).
	Resync bool `json:"resync,omitempty"`
}

// ObjectRef names an object of the site's tenant.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// ObjectError is one rejected object.
type ObjectError struct {
	ObjectRef
	Error string `json:"error"`
}

// Update is what the console sends: a full snapshot or a delta on top of
// Base; or, with TelemetryAck set, only the confirmation of telemetry
// reports (no configuration: Version is empty).
type Update struct {
	// TelemetryAck confirms the node's telemetry reports of this stream
	// up to this Seq: their events are the console's.
	TelemetryAck uint64 `json:"telemetryAck,omitempty"`
	// TelemetryAcks says, on every configuration update, that this
	// console confirms telemetry reports: from the first update of its
	// first stream, a node knows that the events of reports left
	// unconfirmed when a stream ends must be sent again (a console that
	// went away before its first confirmation would otherwise lose them).
	TelemetryAcks bool   `json:"telemetryAcks,omitempty"`
	Tenant        string `json:"tenant"`
	// Version is "<store revision>-<content hash>".
	Version string `json:"version"`
	// Full replaces everything the node holds; otherwise the update
	// applies on top of Base.
	Full bool   `json:"full,omitempty"`
	Base string `json:"base,omitempty"`
	// Objects are the objects added or changed (all of them when Full),
	// as api/v1 JSON with secrets in clear.
	Objects []json.RawMessage `json:"objects,omitempty"`
	// Deleted are objects removed since Base.
	Deleted []ObjectRef `json:"deleted,omitempty"`
	// Skipped are objects left out because the node's capability
	// version is too old for their kind.
	Skipped []ObjectRef `json:"skipped,omitempty"`
}

// encoded is a message serialised once and sent to many streams.
type encoded struct{ b []byte }

// Codec marshals messages as JSON; pre-encoded updates pass through as
// they are. It is passed explicitly (grpc.ForceServerCodec,
// grpc.ForceCodec), never registered globally.
type Codec struct{}

// Name is the content subtype.
func (Codec) Name() string { return "json" }

// Marshal encodes v.
func (Codec) Marshal(v any) ([]byte, error) {
	if e, ok := v.(*encoded); ok {
		return e.b, nil
	}
	return json.Marshal(v)
}

// Unmarshal decodes data into v.
func (Codec) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding sync message: %w", err)
	}
	return nil
}

// StreamDesc describes the bidirectional sync stream for clients.
var StreamDesc = grpc.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true}

// syncServer is the (empty) service implementation type.
type syncServer interface{}

func serviceDesc(h grpc.StreamHandler, renew grpc.MethodHandler) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*syncServer)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Renew", Handler: renew}},
		Streams:     []grpc.StreamDesc{{StreamName: "Stream", Handler: h, ServerStreams: true, ClientStreams: true}},
	}
}
