// Package audit keeps per-tenant hash-chained audit records with signed checkpoints, and verifies them.
package audit
