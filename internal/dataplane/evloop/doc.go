// Package evloop is an epoll event-loop HTTP/1.1 reverse-proxy engine (Linux), selected for plain HTTP listeners by dataplane.Options.HTTP1Engine "evloop"; bench/README.md has its figures.
package evloop
