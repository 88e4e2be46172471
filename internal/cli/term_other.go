//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package cli

import (
	"errors"
	"os"
)

func isTerminal(*os.File) bool { return false }

func readNoEcho(*os.File) (string, error) {
	return "", errors.New("reading a password without echo is not supported here: use --password-stdin")
}
