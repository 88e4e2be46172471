// Package watchq is the bounded per-watcher queue both store backends use to keep slow watchers from blocking writers.
package watchq
