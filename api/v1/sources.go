package v1

import (
	"embed"
	"io/fs"
)

// sources holds this package's Go files, so that the OpenAPI generator can
// describe fields with their doc comments.
//
//go:embed *.go
var sources embed.FS

// Sources returns the Go source files of this package (read-only).
func Sources() fs.FS { return sources }
