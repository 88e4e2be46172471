package main

import "math/bits"

// The histogram's buckets are log-linear over nanoseconds: every value
// below 2*subBuckets has a bucket of its own, and every power of two above
// that is cut into subBuckets equal buckets, so that a bucket is at most
// 1/subBuckets (0.8%) of the values in it wide: 1 ns up to 256 ns, 1 µs
// wide around 200 µs, 8 ms wide around 1 s. Values above maxValue (about
// 137 s) count in the last bucket.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	maxValue   = 1<<37 - 1
	nBuckets   = (37-subBits)*subBuckets + subBuckets
)

// histogram counts latencies in nanoseconds; its size is fixed and
// recording allocates nothing.
type histogram struct {
	counts   [nBuckets]uint64
	n        uint64
	min, max int64
	sum      float64
}

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return shift*subBuckets + int(v>>shift)
}

// bucketRange is the first value of bucket i and its width.
func bucketRange(i int) (low, width int64) {
	if i < 2*subBuckets {
		return int64(i), 1
	}
	shift := i/subBuckets - 1
	return int64(i-shift*subBuckets) << shift, 1 << shift
}

func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile is the value of rank ceil(q*n) (1-based) of the values
// recorded, to the bucket: the middle of its bucket, kept within the
// smallest and largest values seen. q >= 1 gives the largest exactly.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketRange(i)
			v := low + (width-1)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}
