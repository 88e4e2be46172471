// Package lb keeps origin pools: endpoint selection algorithms, active health checks, passive outlier detection and circuit breakers, with runtime state that survives configuration updates.
package lb
