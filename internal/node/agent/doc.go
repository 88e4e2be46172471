// Package agent runs a node under a console: registration, certificate renewal, the sync stream and the encrypted last-known-good copy.
package agent
