// Package client is the Go client of Meridian's REST API, used by the CLI and the tests.
package client
