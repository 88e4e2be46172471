//go:build race

package waf

func init() { raceEnabled = true }
