// Package h1 holds the strict RFC 9112 checks applied to every HTTP/1.1 request head before it is routed or forwarded.
package h1
