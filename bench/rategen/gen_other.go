//go:build !linux

package main

import (
	"context"
	"errors"
)

// run needs epoll_pwait2: the generator runs on Linux only.
func run(ctx context.Context, cfg config, tgt target) (*result, error) {
	return nil, errors.New("rategen runs on Linux only (it uses epoll)")
}
