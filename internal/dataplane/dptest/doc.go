// Package dptest makes real test fixtures for the data plane: a CA and certificates signed by it, PEM encoded, a canned loopback origin, and a collector of access-log lines.
package dptest
