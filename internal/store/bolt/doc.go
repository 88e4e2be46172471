// Package bolt is the embedded store backend: one bbolt file, fsync'd group commits, a revision log for watches and old reads.
package bolt
