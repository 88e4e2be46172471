package waf

import (
	"math/rand/v2"
	"testing"
)

// TestTfTriggers holds every transformation's trigger bytes to the
// function: a value holding none of them comes back unchanged and known
// (random values over all other bytes, and the CRS payloads with the
// trigger bytes dropped).
func TestTfTriggers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	payloads := crsPayloads(t, 2)
	for name, f := range tfNames {
		trig := &tfTrigger[tfID[name]]
		var alpha []byte
		for c := 0; c < 256; c++ {
			if !trig.has(byte(c)) {
				alpha = append(alpha, byte(c))
			}
		}
		if _, listed := tfTriggers[name]; !listed {
			if len(alpha) != 0 {
				t.Fatalf("%s: not listed, yet some bytes skip it", name)
			}
			continue
		}
		check := func(v string) {
			if got, ok := f(v); !ok || got != v {
				t.Fatalf("%s(%q) = %q, %v: the value holds none of its trigger bytes", name, v, got, ok)
			}
		}
		for i := 0; i < 5000; i++ {
			b := make([]byte, r.IntN(32))
			for j := range b {
				b[j] = alpha[r.IntN(len(alpha))]
			}
			check(string(b))
		}
		for _, p := range payloads {
			b := make([]byte, 0, len(p))
			for i := 0; i < len(p); i++ {
				if !trig.has(p[i]) {
					b = append(b, p[i])
				}
			}
			check(string(b))
		}
	}
}

func FuzzTfTriggers(f *testing.F) {
	f.Add("Mozilla/5.0 (X11)", uint8(0))
	f.Add("a\\x41", uint8(3))
	f.Add("..//a", uint8(9))
	f.Fuzz(func(t *testing.T, v string, which uint8) {
		for name, fn := range tfNames {
			if _, listed := tfTriggers[name]; !listed || uint8(tfID[name]) != which%uint8(len(tfID)) {
				continue
			}
			trig := &tfTrigger[tfID[name]]
			if b := setOf(v); b.meets(trig) {
				return
			}
			if got, ok := fn(v); !ok || got != v {
				t.Fatalf("%s(%q) = %q, %v: the value holds none of its trigger bytes", name, v, got, ok)
			}
		}
	})
}
