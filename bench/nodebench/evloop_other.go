//go:build !linux

package main

import "errors"

// runEvloop fails: the event-loop proxy uses epoll.
func runEvloop(listen, origin string, loops int, rawBlock, perLoop bool, profile string) error {
	return errors.New("the event-loop proxy needs Linux (epoll)")
}
