package agent

import (
	"context"
	"slices"
	"time"

	"github.com/meridian-platform/meridian/internal/distrib"
)

// Retrier is implemented by appliers part of whose configuration may start
// later without any change to it: a listener that could not bind because
// its port was taken. While Pending reports true after an apply, the agent
// applies the running configuration again, RetryMin after the failure and
// then at doubling delays up to RetryMax, and sends the console a new ack
// whenever the outcome changes (so the rollout line clears once the port
// is free).
type Retrier interface {
	Pending() bool
}

func (a *Agent) kickRetry() {
	if r, ok := a.opts.Applier.(Retrier); !ok || !r.Pending() {
		return
	}
	select {
	case a.retryKick <- struct{}{}:
	default:
	}
}

// retryLoop applies the running configuration again while the Applier has
// something pending, with backoff, until ctx ends.
func (a *Agent) retryLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.retryKick:
		}
		delay := a.opts.RetryMin
		for {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if !a.retryOnce(ctx) {
				break
			}
			delay = min(2*delay, a.opts.RetryMax)
		}
	}
}

// retryOnce applies the running configuration again and, when what the
// node rejects changed, sends the console a new ack for the same version.
// It reports whether something is still pending.
func (a *Agent) retryOnce(ctx context.Context) bool {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	a.mu.Lock()
	objs, version, before := a.objects, a.version, a.rejected
	a.mu.Unlock()
	if version == "" {
		return false
	}
	rejected, skipped := a.applyObjects(ctx, objs)
	pending := a.opts.Applier.(Retrier).Pending()
	a.mu.Lock()
	a.rejected, a.skipped = rejected, skipped
	send := a.streamSend
	ack := &distrib.Ack{Version: version, Rejected: rejected, Skipped: append(append([]distrib.ObjectRef(nil), skipped...), a.consoleSkipped...)}
	a.mu.Unlock()
	if !slices.Equal(before, rejected) {
		a.log.Info("configuration applied again", "version", version, "rejected", len(rejected), "pending", pending)
		if send != nil {
			if err := send(&distrib.NodeMessage{Ack: ack}); err != nil {
				// The stream is ending; the next one's hello and the
				// console's confirmation carry the new outcome.
				a.log.Warn("sending the ack of a retried apply", "err", err)
			}
		}
	}
	return pending
}
