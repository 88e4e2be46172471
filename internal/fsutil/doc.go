// Package fsutil writes files so that a crash leaves either the old or the new content, never a mix.
package fsutil
