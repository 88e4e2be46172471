// Package netpolicy compiles NetworkPolicy objects into allocation-free matchers that a listener consults for every accepted connection, with their counters and security events.
package netpolicy
