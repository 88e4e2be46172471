package main

import (
	"errors"
	"strings"
	"testing"
)

// parsed is what a stream of bytes gave the reader, as the generator's
// loop sees it.
type parsed struct {
	status  int
	bodyLen int64
	close   bool
	chunked bool
	done    bool
	err     error
}

// parseStream feeds data to a respReader chunk bytes at a time, as reads
// would, and ends with the connection's end when no response ended
// before.
func parseStream(data []byte, chunk int) parsed {
	rr := newRespReader(readBuf)
	for len(data) > 0 {
		space := rr.space()
		n := copy(space, data[:min(chunk, len(data))])
		data = data[n:]
		done, err := rr.advance(n)
		if err != nil {
			return parsed{err: err}
		}
		if done {
			if len(data) > 0 {
				return parsed{err: errTrailing}
			}
			p := rr.p
			return parsed{status: p.status, bodyLen: p.bodyLen, close: p.close, chunked: p.chunked, done: true}
		}
	}
	p := rr.p
	if !rr.p.ended() {
		return parsed{err: errTruncated}
	}
	return parsed{status: p.status, bodyLen: p.bodyLen, close: p.close, chunked: p.chunked, done: true}
}

var errTruncated = errors.New("truncated")

func TestParser(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxHead) + "\r\nContent-Length: 0\r\n\r\n"
	tests := []struct {
		name, in string
		want     parsed
		wantErr  error
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
			want: parsed{status: 200, bodyLen: 5}},
		{name: "length zero", in: "HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n", want: parsed{status: 200}},
		{name: "same length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", want: parsed{status: 200, bodyLen: 2}},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", want: parsed{status: 204}},
		{name: "404", in: "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnot", want: parsed{status: 404, bodyLen: 3}},
		{name: "chunked with extension and trailer",
			in:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
			want: parsed{status: 200, bodyLen: 15, chunked: true}},
		{name: "chunked after gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n1\r\nz\r\n0\r\n\r\n",
			want: parsed{status: 200, bodyLen: 1, chunked: true}},
		{name: "chunked beats a length and closes", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
			want: parsed{status: 200, bodyLen: 2, chunked: true, close: true}},
		{name: "204 and 304 have no body", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", want: parsed{status: 304}},
		{name: "interim responses skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
			want: parsed{status: 200, bodyLen: 1}},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nx", want: parsed{status: 200, bodyLen: 1, close: true}},
		{name: "HTTP/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", want: parsed{status: 200, bodyLen: 1, close: true}},
		{name: "HTTP/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", want: parsed{status: 200, bodyLen: 1}},
		{name: "read until close", in: "HTTP/1.1 200 OK\r\n\r\nall of it", want: parsed{status: 200, bodyLen: 9, close: true}},
		{name: "unknown coding: until close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", want: parsed{status: 200, bodyLen: 3, close: true}},
		{name: "OWS around values", in: "HTTP/1.1 200 OK\r\nContent-Length: \t 3 \t\r\n\r\nabc", want: parsed{status: 200, bodyLen: 3}},

		{name: "HTTP/2 status line", in: "HTTP/2 200 OK\r\n\r\n", wantErr: errStatusLine},
		{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", wantErr: errStatusLine},
		{name: "status glued to reason", in: "HTTP/1.1 200OK\r\n\r\n", wantErr: errStatusLine},
		{name: "status not digits", in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: errStatusLine},
		{name: "status below 100", in: "HTTP/1.1 099 OK\r\n\r\n", wantErr: errStatusLine},
		{name: "101", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", wantErr: errSwitch},
		{name: "bare LF in the head", in: "HTTP/1.1 200 OK\r\nA: b\nContent-Length: 0\r\n\r\n", wantErr: errBareLF},
		{name: "bare LF head never ends", in: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", wantErr: errTruncated},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", wantErr: errFold},
		{name: "no colon", in: "HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n", wantErr: errField},
		{name: "space in a name", in: "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", wantErr: errField},
		{name: "length not a number", in: "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", wantErr: errLength},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: errLength},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", wantErr: errTwoLengths},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: errChunkSize},
		{name: "empty chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", wantErr: errChunkSize},
		{name: "huge chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", wantErr: errChunkSize},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n", wantErr: errChunkEnd},
		{name: "chunk line too long", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("e", maxLine) + "\r\n", wantErr: errLineTooLong},
		{name: "head too large", in: big, wantErr: errHeadTooLarge},
		{name: "body cut short", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", wantErr: errTruncated},
		{name: "chunked cut short", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", wantErr: errTruncated},
		{name: "bytes after the response", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n", wantErr: errTrailing},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 7, 64, 1 << 20} {
			got := parseStream([]byte(tt.in), chunk)
			if tt.wantErr != nil {
				if got.err == nil || got.err.Error() != tt.wantErr.Error() {
					t.Errorf("%s (reads of %d bytes): error %v, want %v", tt.name, chunk, got.err, tt.wantErr)
				}
				continue
			}
			tt.want.done = true
			if got != tt.want {
				t.Errorf("%s (reads of %d bytes): got %+v, want %+v", tt.name, chunk, got, tt.want)
			}
		}
	}
}

// TestReaderKeepAlive runs several responses through one reader, as on a
// keep-alive connection, with the next one's bytes arriving separately.
func TestReaderKeepAlive(t *testing.T) {
	rr := newRespReader(readBuf)
	resps := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
	}
	for i, resp := range resps {
		half := len(resp) / 2
		for j, part := range []string{resp[:half], resp[half:]} {
			n := copy(rr.space(), part)
			done, err := rr.advance(n)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if done != (j == 1) {
				t.Fatalf("response %d, part %d: done %v", i, j, done)
			}
		}
		if want := []int{200, 200, 503}[i]; rr.p.status != want {
			t.Fatalf("response %d: status %d, want %d", i, rr.p.status, want)
		}
		rr.next()
	}
}

func TestParserAllocatesNothing(t *testing.T) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	rr := newRespReader(readBuf)
	allocs := testing.AllocsPerRun(100, func() {
		n := copy(rr.space(), resp)
		if done, err := rr.advance(n); !done || err != nil {
			t.Fatalf("done %v, error %v", done, err)
		}
		rr.next()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per response, want 0", allocs)
	}
}

// FuzzRespParser: any bytes, read in pieces of any size, give the same
// outcome as read at once, and nothing panics or reads past the input.
func FuzzRespParser(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		whole := parseStream(data, len(data)+1)
		split := parseStream(data, int(chunk)%32+1)
		if (whole.err == nil) != (split.err == nil) || whole.status != split.status || whole.bodyLen != split.bodyLen ||
			whole.close != split.close || whole.done != split.done {
			t.Fatalf("at once: %+v; in pieces of %d: %+v", whole, int(chunk)%32+1, split)
		}
		if whole.done && (whole.bodyLen > int64(len(data)) || whole.status < 200 || whole.status > 999) {
			t.Fatalf("accepted %+v from %d bytes", whole, len(data))
		}
	})
}
