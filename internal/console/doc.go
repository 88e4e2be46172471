// Package console assembles the control plane (store, keys, CA, REST API, audit) from Options and serves it over TLS.
package console
