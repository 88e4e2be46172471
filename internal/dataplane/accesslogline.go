package dataplane

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// logValues are the values of one access-log line, from either engine
// (the goroutine engine's Exchange, the event loop's record), so that
// both write the same line for the same exchange.
type logValues struct {
	start    time.Time
	route    *config.Route
	endpoint []byte
	client   netip.Addr
	// method, host, path (normalized), query, requestID, userAgent and
	// referer are the request's, lent for the call.
	method, host, path, query []byte
	requestID                 []byte
	userAgent, referer        []byte
	proto                     string
	status                    int
	bytesIn, bytesOut         int64
	duration, upstream        time.Duration
	tls                       bool
	retries                   int
	// grpcStatus is the gRPC status plus one (0: not a gRPC call, the
	// field is null).
	grpcStatus int32
}

// appendLine appends the JSON line of the stage's fields (in their order)
// with the values v.
func (s *accessLogStage) appendLine(b []byte, v *logValues) []byte {
	b = append(b, '{')
	for i, f := range s.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f...)
		b = append(b, '"', ':')
		switch f {
		case "time":
			b = append(b, '"')
			b = v.start.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		case "loadBalancer":
			b = appendJSONString(b, s.lb)
		case "namespace":
			b = appendJSONString(b, s.ns)
		case "route":
			if v.route != nil {
				b = appendJSONString(b, v.route.Name)
			} else {
				b = append(b, "null"...)
			}
		case "pool":
			if v.route != nil && v.route.Pool != nil {
				b = appendJSONString(b, v.route.Pool.Name)
			} else {
				b = append(b, "null"...)
			}
		case "endpoint":
			b = appendJSONBytes(b, v.endpoint)
		case "client":
			b = append(b, '"')
			b = v.client.AppendTo(b)
			b = append(b, '"')
		case "method":
			b = appendJSONBytes(b, v.method)
		case "host":
			b = appendJSONBytes(b, v.host)
		case "path":
			b = appendJSONBytes(b, v.path)
		case "query":
			b = appendJSONBytes(b, v.query)
		case "protocol":
			b = appendJSONString(b, v.proto)
		case "status":
			b = strconv.AppendInt(b, int64(v.status), 10)
		case "bytesIn":
			b = strconv.AppendInt(b, v.bytesIn, 10)
		case "bytesOut":
			b = strconv.AppendInt(b, v.bytesOut, 10)
		case "duration":
			b = strconv.AppendFloat(b, v.duration.Seconds(), 'f', 6, 64)
		case "upstreamDuration":
			b = strconv.AppendFloat(b, v.upstream.Seconds(), 'f', 6, 64)
		case "requestId":
			b = appendJSONBytes(b, v.requestID)
		case "userAgent":
			b = appendJSONBytes(b, v.userAgent)
		case "referer":
			b = appendJSONBytes(b, v.referer)
		case "tls":
			b = strconv.AppendBool(b, v.tls)
		case "retries":
			b = strconv.AppendInt(b, int64(v.retries), 10)
		case "grpcStatus":
			if v.grpcStatus != 0 {
				b = strconv.AppendInt(b, int64(v.grpcStatus)-1, 10)
			} else {
				b = append(b, "null"...)
			}
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}', '\n')
}

// sentGRPCStatus is the gRPC status (plus one; 0: none) a gRPC call's
// answer written to h carries: the grpc-status trailer, else the head's
// (a Trailers-Only answer, the proxy's own status). A value that is not a
// decimal number is none.
func sentGRPCStatus(h http.Header) int32 {
	v := h[http.TrailerPrefix+"Grpc-Status"]
	if len(v) == 0 {
		v = h["Grpc-Status"]
	}
	if len(v) == 0 || len(v[0]) == 0 || len(v[0]) > 9 {
		return 0
	}
	var n int32
	for i := 0; i < len(v[0]); i++ {
		c := v[0][i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int32(c-'0')
	}
	return n + 1
}
