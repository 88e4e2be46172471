// Package evloop is an experimental epoll event-loop HTTP/1.1 keep-alive reverse proxy (Linux), measured by bench/run.sh.
package evloop
