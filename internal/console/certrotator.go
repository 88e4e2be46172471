package console

import (
	"crypto/tls"
	"sync"
	"time"
)

// certRotator hands out a serving certificate and issues a new one when
// two thirds of the current one's lifetime have passed.
type certRotator struct {
	issue func() (*tls.Certificate, time.Time, error)

	mu      sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time
}

func (r *certRotator) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.cert != nil && now.Before(r.renewAt) {
		return r.cert, nil
	}
	cert, notAfter, err := r.issue()
	if err != nil {
		if r.cert != nil { // keep serving the old one until it works again
			return r.cert, nil
		}
		return nil, err
	}
	r.cert = cert
	r.renewAt = now.Add(notAfter.Sub(now) * 2 / 3)
	return cert, nil
}
