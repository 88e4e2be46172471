// Package testcert makes fresh self-signed certificates for tests (it imports nothing of Meridian, so api/v1's own tests use it too).
package testcert
