package agent

import (
	"context"
	"crypto/x509"
	"time"
)

// Test hooks for the external tests (agent_test), which may import the
// console without an import cycle.

type Identity = identity

func (id *identity) Leaf() *x509.Certificate { return id.leaf }

func (a *Agent) RegisterForTest(ctx context.Context) (*identity, error) { return a.register(ctx) }

func (a *Agent) RenewForTest(ctx context.Context, id *identity) (*identity, error) {
	return a.renew(ctx, id)
}

func (a *Agent) LoadIdentityForTest() (*identity, error) { return a.loadIdentity() }

func RenewDue(leaf *x509.Certificate, now time.Time) bool { return renewDue(leaf, now) }

func NewKeyAndCSRForTest(site string) (keyPEM, csrPEM []byte, err error) { return newKeyAndCSR(site) }

func MustRegisterAgainForTest(err error) bool { return mustRegisterAgain(err) }

func RefusedAsExpiredForTest(err error) bool { return refusedAsExpired(err) }

// TelemetryConfirmedForTest says the console has confirmed a telemetry
// report of this agent.
func (a *Agent) TelemetryConfirmedForTest() bool { return a.telAcks.Load() }
