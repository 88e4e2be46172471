package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// readPassword reads a password: the first line of in with fromStdin, or
// from the terminal without echo after a prompt on errOut.
func readPassword(in io.Reader, errOut io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		if in == nil {
			return "", errors.New("--password-stdin: no standard input")
		}
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: standard input held no password")
		}
		return pw, nil
	}
	f, ok := in.(*os.File)
	if !ok || !isTerminal(f) {
		return "", errors.New("standard input is not a terminal: pipe the password with --password-stdin")
	}
	fmt.Fprint(errOut, "Password: ")
	pw, err := readNoEcho(f)
	fmt.Fprintln(errOut)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

// readLine reads bytes up to a newline, one at a time so that nothing
// after the line is consumed.
func readLine(r io.Reader) (string, error) {
	var b []byte
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimRight(string(b), "\r"), nil
			}
			b = append(b, buf[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				return string(b), nil
			}
			return "", err
		}
	}
}
