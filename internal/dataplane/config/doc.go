// Package config compiles api/v1 data-plane objects into an immutable routing table (listeners → domains → routes → pools) with per-object errors.
package config
