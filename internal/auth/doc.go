// Package auth holds principals, API and session tokens, password hashing and RBAC evaluation.
package auth
