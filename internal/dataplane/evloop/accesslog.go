//go:build linux

package evloop

import "time"

// ExchangeLog records the exchanges a loop forwards, for an access log.
// Config.AccessLog makes one per loop; its methods run on that loop only
// and must not block.
type ExchangeLog interface {
	// Begin is called when a request has been routed, before anything is
	// sent to the origin, with the Router's Target, the request (its
	// slices are valid only during the call) and the request id sent to
	// the origin (nil without Config.RequestID); tls says the client
	// connection is TLS. It appends to rec what the record needs of the
	// request and returns it; an empty rec means the exchange is not
	// logged.
	Begin(rec []byte, t Target, r *Request, requestID []byte, tls bool) []byte
	// End is called when a logged exchange ends, with its record and
	// what Observe is told of it.
	End(rec []byte, tag any, e Ended)
}

// Ended is what the loop knows of an exchange when it ends (see
// Config.Observe).
type Ended struct {
	// Status is the status sent (499 when the client went away before an
	// answer).
	Status int
	// Elapsed is the time since the request head was read, to the loop's
	// clock.
	Elapsed time.Duration
	// BytesIn is the request's size (its header block and its
	// Content-Length), BytesOut the response body bytes sent.
	BytesIn, BytesOut int64
}

// logState is a loop's access-log state.
type logState struct {
	log ExchangeLog
	// newID makes request ids (Config.RequestID); the loop's requestID
	// then sends id, the one made for the log.
	newID func([]byte) []byte
	id    []byte
}

// initLog sets up the loop's access log from cfg (before the loop runs).
func (l *loop) initLog(cfg *Config) {
	if cfg.Router == nil {
		return
	}
	if cfg.RequestID != nil {
		// The id is made when an exchange begins (or given by the
		// Router: Target.RequestID), for the origin and the log alike.
		l.xl.newID = cfg.RequestID
		l.xl.id = make([]byte, 0, 64)
		l.requestID = l.xl.appendID
	}
	if cfg.AccessLog != nil {
		l.xl.log = cfg.AccessLog()
	}
}

// beginID sets the id of the exchange that begins: the Router's, or a
// new one.
func (l *loop) beginID(t *Target) {
	if l.xl.newID == nil {
		return
	}
	if t.RequestID != nil {
		l.xl.id = append(l.xl.id[:0], t.RequestID...)
		return
	}
	l.xl.id = l.xl.newID(l.xl.id[:0])
}

// appendID appends the request id made for the exchange being sent.
func (x *logState) appendID(b []byte) []byte { return append(b, x.id...) }

// logBegin starts the record of the client's exchange, just routed (its
// request is l.req).
func (l *loop) logBegin(c *client, t Target) {
	var id []byte
	if l.xl.newID != nil {
		id = l.xl.id
	}
	c.rec = l.xl.log.Begin(c.rec[:0], t, &l.req, id, c.ts != nil)
}

// logEnd ends the record of the client's exchange, if it has one.
func (l *loop) logEnd(c *client, e Ended) {
	if len(c.rec) == 0 {
		return
	}
	l.xl.log.End(c.rec, c.tag, e)
	c.rec = c.rec[:0]
}
