package pki

import (
	"context"
	"fmt"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// WatchAndReload keeps the Keyring in step with other consoles sharing its
// store: it watches the key prefix and reloads when a data key or the
// primary pointer changes, so that a key rotated elsewhere becomes this
// console's primary within moments (decryption never needs it: an unknown
// key id is loaded on demand). It returns when ctx ends; errors (e.g. a data
// key wrapped by a master key this console lacks, after RewrapMaster
// elsewhere) go to onErr when not nil, and the watch is re-established with
// backoff. Cached keys keep working meanwhile.
func (k *Keyring) WatchAndReload(ctx context.Context, onErr func(error)) {
	report := func(err error) {
		if err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := k.st.Revision(ctx)
		if err == nil {
			// Reload after taking the revision, so no change is missed.
			err = k.Reload(ctx)
			report(err)
			var ch <-chan store.WatchResponse
			ch, err = k.st.Watch(ctx, k.prefix, rev)
			if err == nil {
				backoff = 100 * time.Millisecond
				for resp := range ch {
					if resp.Err != nil {
						err = resp.Err
						break
					}
					if len(resp.Events) > 0 {
						report(k.Reload(ctx))
					}
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		report(fmt.Errorf("watching data keys: %w", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
