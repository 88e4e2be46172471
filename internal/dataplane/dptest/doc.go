// Package dptest makes real test fixtures for the data plane: a CA and certificates signed by it, PEM encoded, a canned loopback origin, a collector of access-log lines, and a client that goes on sending.
package dptest
