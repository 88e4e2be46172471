package dptest

import (
	"io"
	"strings"
	"time"
)

// KeepSending writes first to w and then, every millisecond, chunk bytes
// more, as a client that goes on sending after the server has answered.
// stop ends the writes and returns the first write's error that ended
// them early (nil when each went through).
func KeepSending(w io.Writer, first string, chunk int) (stop func() error) {
	done := make(chan struct{})
	sent := make(chan error, 1)
	block := strings.Repeat("b", chunk)
	go func() {
		_, err := io.WriteString(w, first)
		for err == nil {
			select {
			case <-done:
				sent <- nil
				return
			default:
			}
			_, err = io.WriteString(w, block)
			time.Sleep(time.Millisecond)
		}
		sent <- err
	}()
	return func() error {
		close(done)
		return <-sent
	}
}
