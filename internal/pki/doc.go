// Package pki holds the console's keys: envelope encryption of secrets under a master key, and the console CA.
package pki
