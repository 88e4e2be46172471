// Package e2e holds end-to-end tests that start real meridian processes on loopback and drive them through the CLI.
package e2e
