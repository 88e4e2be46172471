// Package evloop is an epoll event-loop HTTP/1.1 reverse-proxy engine (Linux), not yet selected by any node listener; bench/README.md has its figures.
package evloop
