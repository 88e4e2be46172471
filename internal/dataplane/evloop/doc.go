// Package evloop is an epoll event-loop HTTP/1.1 reverse-proxy engine (Linux), selected for HTTP and HTTPS listeners (tls.go: handshakes on a goroutine, then the loop drives the tls.Conn) by dataplane.Options.HTTP1Engine "evloop"; bench/README.md has its figures.
package evloop
