package dataplane

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/evloop"
)

// Answer implements evloop.Answerer for a redirect or direct-response
// route: the answer handleH1 gives (same status, fields and body), written
// without allocating (the scheme, when a redirect keeps it, is the
// client's: "https" on a TLS connection).
func (er *evRoute) Answer(b []byte, r *evloop.Request, closing bool) ([]byte, int, int) {
	if d := er.rt.Direct; d != nil && er.rt.Redirect == nil {
		// The body counts also for HEAD, as in the goroutine engine.
		return appendDirect(b, d, r, closing), d.Status, len(d.Body)
	}
	rd := er.rt.Redirect
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(rd.Code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(rd.Code)...)
	b = append(b, "\r\nLocation: "...)
	if rd.Scheme != "" {
		b = append(b, rd.Scheme...)
	} else if r.TLS != nil {
		b = append(b, "https"...)
	} else {
		b = append(b, "http"...)
	}
	b = append(b, "://"...)
	switch {
	case rd.Port != 0:
		// As net.JoinHostPort.
		h := r.Host
		if rd.Host == "" {
			if p := portOf(r.Host); p != "" {
				h = h[:len(h)-len(p)-1]
			}
		}
		if rd.Host != "" && strings.IndexByte(rd.Host, ':') >= 0 || rd.Host == "" && bytes.IndexByte(h, ':') >= 0 {
			b = append(b, '[')
			b = appendHostOr(b, rd.Host, h)
			b = append(b, ']')
		} else {
			b = appendHostOr(b, rd.Host, h)
		}
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(rd.Port), 10)
	case rd.Host != "":
		b = append(b, rd.Host...)
	default:
		b = append(b, r.Host...)
	}
	path, query := r.Target, []byte(nil)
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if rd.Path != "" {
		b = append(b, rd.Path...)
	} else {
		b = append(b, path...)
	}
	if len(query) > 0 && !rd.StripQuery {
		b = append(b, '?')
		b = append(b, query...)
	}
	if string(r.Method) != "HEAD" {
		b = append(b, "\r\nContent-Length: 0"...)
	}
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return b, rd.Code, 0
}

// appendHostOr appends host, or h when host is empty.
func appendHostOr(b []byte, host string, h []byte) []byte {
	if host != "" {
		return append(b, host...)
	}
	return append(b, h...)
}

// appendDirect appends a direct response: the status, the content type
// when set, the body (not for HEAD, whose Content-Length still says its
// size).
func appendDirect(b []byte, d *v1.HTTPDirectResponse, r *evloop.Request, closing bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(d.Status)...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(d.Body)), 10)
	if d.ContentType != "" {
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, d.ContentType...)
	}
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	if string(r.Method) != "HEAD" {
		b = append(b, d.Body...)
	}
	return b
}
