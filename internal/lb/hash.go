package lb

// The hash below must never change: ringHash and maglev place keys by it, and
// every node of a deployment has to place the same key on the same endpoint.
// It is 64-bit FNV-1a followed by the MurmurHash3 fmix64 finalizer, which
// spreads FNV's weak low bits over the whole word.

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// HashString returns a deterministic 64-bit hash of s, identical in every
// process and on every platform. It does not allocate.
func HashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return fmix64(h)
}

// HashBytes is HashString for a byte slice; HashBytes(b) == HashString(string(b)).
func HashBytes(b []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return fmix64(h)
}

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
