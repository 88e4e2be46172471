// Package dptest makes real test fixtures for the data plane: a CA and certificates signed by it, PEM encoded, and a canned loopback origin.
package dptest
