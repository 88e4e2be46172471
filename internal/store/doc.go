// Package store defines the small key-value interface the console keeps its intent in.
package store
