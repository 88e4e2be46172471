// Package noderun holds what the standalone and the console-managed node both run: metrics registry, data plane, admin listener, drain.
package noderun
