// Package docsgen keeps the generated reference pages under docs/ in step with the code (go test ./internal/docsgen -update rewrites them).
package docsgen
