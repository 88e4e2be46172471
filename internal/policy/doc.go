// Package policy compiles ServicePolicies into allocation-free matchers and evaluates ordered lists of them (first-match, allow-overrides, deny-overrides; enforce or dry-run) with per-rule hit counters.
package policy
