//go:build linux

package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// evLog writes the access-log lines of the exchanges one event loop
// forwards (evloop.ExchangeLog): the same lines, field for field, as the
// goroutine engine's access-log stage. Begin keeps what the line needs of
// the request in the exchange's record; End formats the line and writes
// it to the server's access-log writer. Neither allocates.
//
// The lines of a loop go to the shared writer in chunks (evLogChunk), and
// at least every 100 ms (the writer's flush, see AccessLogWriter.attach):
// a loop takes the writer's lock once per chunk, not once per line.
//
// Where the engines differ: an exchange the client left before its
// answer is logged with status 499 (the goroutine engine logs the answer
// it got, which the client never read), and upstreamDuration is the whole
// exchange's duration (the loop writes the answer to the client as it
// reads it from the origin). grpcStatus is null on the loops: a gRPC
// call goes to an HTTP/2 pool, which the loops hand to the goroutine
// engine (h1toh2.go logs its status), so the field costs them nothing.
type evLog struct {
	w *AccessLogWriter
	// mu guards buf, the lines not yet written to w, against the
	// writer's periodic flush.
	mu  sync.Mutex
	buf []byte
}

// evLogChunk is the size of the chunks a loop writes its lines in.
const evLogChunk = 16 << 10

func (e *evLog) flushLines() {
	e.mu.Lock()
	if len(e.buf) > 0 {
		_, _ = e.w.Write(e.buf)
		e.buf = e.buf[:0]
	}
	e.mu.Unlock()
}

// evLogSet is the access logs of one proxy's loops, detached from the
// writer when the proxy has stopped.
type evLogSet struct {
	mu   sync.Mutex
	logs []*evLog
}

// newLog makes a loop's access log (evloop.Config.AccessLog).
func (ls *evLogSet) newLog(w *AccessLogWriter) evloop.ExchangeLog {
	e := &evLog{w: w, buf: make([]byte, 0, evLogChunk+2048)}
	w.attach(e)
	ls.mu.Lock()
	ls.logs = append(ls.logs, e)
	ls.mu.Unlock()
	return e
}

// detach writes out what the loops left and detaches their logs.
func (ls *evLogSet) detach() {
	ls.mu.Lock()
	logs := ls.logs
	ls.logs = nil
	ls.mu.Unlock()
	for _, e := range logs {
		e.w.detach(e)
	}
}

// The record: the wall-clock start (8 bytes), the client address (16
// bytes), flags (recIPv4, recTLS), then length-prefixed (2 bytes) values
// in the order of recFields.
const (
	recEndpoint = iota
	recMethod
	recHost
	recPath
	recQuery
	recRequestID
	recUserAgent
	recReferer
	recFields
)

const (
	recFixed = 8 + 16 + 1
	recIPv4  = 1
	recTLS   = 2
)

// Begin implements evloop.ExchangeLog.
func (e *evLog) Begin(rec []byte, t evloop.Target, r *evloop.Request, requestID []byte, tls bool) []byte {
	er, _ := t.Tag.(*evRoute)
	if er == nil || er.log == nil {
		return rec
	}
	rec = binary.LittleEndian.AppendUint64(rec, uint64(time.Now().UnixNano()))
	a := r.Peer.Addr()
	a16 := a.As16()
	rec = append(rec, a16[:]...)
	var flags byte
	if a.Is4() {
		flags |= recIPv4
	}
	if tls {
		flags |= recTLS
	}
	rec = append(rec, flags)
	// The endpoint, as the goroutine engine names it (lb.Endpoint.Addr:
	// the address the loop connects to).
	at := len(rec)
	rec = append(rec, 0, 0)
	rec = t.Origin.AppendTo(rec)
	binary.LittleEndian.PutUint16(rec[at:], uint16(len(rec)-at-2))
	rec = appendRecValue(rec, r.Method)
	rec = appendRecValue(rec, r.Host)
	rec = appendRecValue(rec, r.Path)
	rec = appendRecValue(rec, r.Query)
	rec = appendRecValue(rec, requestID)
	var ua, ref []byte
	if er.log.userAgent {
		ua, _ = r.Header("User-Agent")
	}
	if er.log.referer {
		ref, _ = r.Header("Referer")
	}
	rec = appendRecValue(rec, ua)
	return appendRecValue(rec, ref)
}

// appendRecValue appends v with its length (cut at 64 KiB - 1: longer
// than any request head the loop takes).
func appendRecValue(rec, v []byte) []byte {
	v = v[:min(len(v), 0xffff)]
	rec = binary.LittleEndian.AppendUint16(rec, uint16(len(v)))
	return append(rec, v...)
}

// End implements evloop.ExchangeLog.
func (e *evLog) End(rec []byte, tag any, x evloop.Ended) {
	er, _ := tag.(*evRoute)
	if er == nil || er.log == nil || len(rec) < recFixed {
		return
	}
	v := logValues{start: time.Unix(0, int64(binary.LittleEndian.Uint64(rec))), route: er.rt, proto: "HTTP/1.1",
		status: x.Status, bytesIn: x.BytesIn, bytesOut: x.BytesOut, duration: x.Elapsed, upstream: x.Elapsed}
	v.client = netip.AddrFrom16([16]byte(rec[8:24]))
	if rec[24]&recIPv4 != 0 {
		v.client = v.client.Unmap()
	}
	v.tls = rec[24]&recTLS != 0
	var vals [recFields][]byte
	rest := rec[recFixed:]
	for i := range vals {
		if len(rest) < 2 {
			return
		}
		n := int(binary.LittleEndian.Uint16(rest))
		if len(rest) < 2+n {
			return
		}
		vals[i], rest = rest[2:2+n], rest[2+n:]
	}
	v.endpoint, v.method, v.host, v.path, v.query = vals[recEndpoint], vals[recMethod], vals[recHost], vals[recPath], vals[recQuery]
	v.requestID, v.userAgent, v.referer = vals[recRequestID], vals[recUserAgent], vals[recReferer]
	e.mu.Lock()
	e.buf = er.log.appendLine(e.buf, &v)
	if len(e.buf) >= evLogChunk {
		_, _ = e.w.Write(e.buf)
		e.buf = e.buf[:0]
	}
	e.mu.Unlock()
}
