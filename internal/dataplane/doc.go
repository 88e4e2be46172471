// Package dataplane runs a node's traffic: Meridian's own accept loop, the HTTP/1.1 fast path, HTTP/2, TCP proxying and the ordered stage pipeline, all driven by an atomically swapped compiled table.
package dataplane
