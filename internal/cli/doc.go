// Package cli implements meridian's kubectl-like verbs (apply, get, describe, ...) and their printers.
package cli
