package main

import "errors"

var errTrailing = errors.New("bytes after the response, none asked for")

// respReader keeps a connection's unconsumed input in a fixed buffer and
// runs the parser over it: read into space(), then report the bytes read
// with advance.
type respReader struct {
	buf  []byte
	r, w int // buf[r:w] is read and not yet consumed
	p    respParser
}

func newRespReader(size int) respReader { return respReader{buf: make([]byte, size)} }

// space is where the next read goes (never empty: the parser's limits
// are below the buffer's size).
func (rr *respReader) space() []byte {
	if rr.r > 0 {
		rr.w = copy(rr.buf, rr.buf[rr.r:rr.w])
		rr.r = 0
	}
	return rr.buf[rr.w:]
}

// advance takes n more bytes read into space() and parses. done reports
// the end of a final response (then rr.p holds its status and framing;
// reset it with next); a response followed by more bytes is an error,
// since one request at a time is in flight.
func (rr *respReader) advance(n int) (done bool, err error) {
	rr.w += n
	used, done, err := rr.p.feed(rr.buf[rr.r:rr.w])
	rr.r += used
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
	}
	if err == nil && done && rr.w > rr.r {
		err = errTrailing
	}
	return done, err
}

// next makes the reader ready for the next response.
func (rr *respReader) next() { rr.p.reset() }

// clear drops everything (a new connection).
func (rr *respReader) clear() {
	rr.r, rr.w = 0, 0
	rr.p.reset()
}
