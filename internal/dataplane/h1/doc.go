// Package h1 holds the strict RFC 9112 checks applied to every HTTP/1.1 request head before it is routed or forwarded, and the bounds of a lingering close.
package h1
