// Package secevents defines the structured security event (WAF, policy, rate-limit and authentication verdicts) and a bounded, non-blocking JSON-lines event writer with counters.
package secevents
