// Package labels parses and matches Kubernetes-style label selectors and validates label keys and values.
package labels
