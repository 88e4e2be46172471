package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// On-disk layout (all integers big-endian unless varint):
//
//	meta/rev      uint64  current store revision
//	meta/compact  uint64  history before this revision is gone
//	kv/<key>      createRev uint64 | modRev uint64 | value
//	log/<rev>     unixNano uint64 | uvarint n | n events
//
// An event is: type byte | uvarint len key | varint createRev | uvarint len
// value | prev flag byte | (prev flag 1: varint prevCreate | varint prevMod |
// uvarint len prevValue). The event's ModRevision is the log key.

var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	bucketLog  = []byte("log")

	metaRev     = []byte("rev")
	metaCompact = []byte("compact")
)

const (
	evPut byte = 1
	evDel byte = 2
)

var errCorrupt = errors.New("corrupt record")

func u64(v int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(v))
	return b
}

func readU64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer", errCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// kvRec is a stored key's current state.
type kvRec struct {
	create, mod int64
	value       []byte
}

func encodeKV(create, mod int64, value []byte) []byte {
	b := make([]byte, 16+len(value))
	binary.BigEndian.PutUint64(b, uint64(create))
	binary.BigEndian.PutUint64(b[8:], uint64(mod))
	copy(b[16:], value)
	return b
}

// decodeKV returns a record whose value aliases b.
func decodeKV(b []byte) (kvRec, error) {
	if len(b) < 16 {
		return kvRec{}, fmt.Errorf("%w: %d-byte key record", errCorrupt, len(b))
	}
	return kvRec{
		create: int64(binary.BigEndian.Uint64(b)),
		mod:    int64(binary.BigEndian.Uint64(b[8:])),
		value:  b[16:],
	}, nil
}

// logEvent is one change in a revision's log record.
type logEvent struct {
	typ     byte
	key     []byte
	create  int64
	value   []byte // new value for puts, nil for deletes
	hasPrev bool
	prev    kvRec
}

func encodeLog(unixNano int64, evs []logEvent) []byte {
	n := 8 + binary.MaxVarintLen64
	for _, e := range evs {
		n += 1 + 4*binary.MaxVarintLen64 + len(e.key) + len(e.value) + 1 + 3*binary.MaxVarintLen64 + len(e.prev.value)
	}
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint64(b, uint64(unixNano))
	b = binary.AppendUvarint(b, uint64(len(evs)))
	for _, e := range evs {
		b = append(b, e.typ)
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
		b = binary.AppendVarint(b, e.create)
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = append(b, e.value...)
		if !e.hasPrev {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendVarint(b, e.prev.create)
		b = binary.AppendVarint(b, e.prev.mod)
		b = binary.AppendUvarint(b, uint64(len(e.prev.value)))
		b = append(b, e.prev.value...)
	}
	return b
}

func logTime(b []byte) (int64, error) {
	if len(b) < 8 {
		return 0, fmt.Errorf("%w: short log record", errCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeLog calls fn for each event of a log record; slices alias b.
func decodeLog(b []byte, fn func(e *logEvent) error) error {
	if len(b) < 8 {
		return fmt.Errorf("%w: short log record", errCorrupt)
	}
	r := reader{b: b[8:]}
	n := r.uvarint()
	var e logEvent
	for i := uint64(0); i < n && r.err == nil; i++ {
		e = logEvent{typ: r.byte()}
		e.key = r.bytes()
		e.create = r.varint()
		e.value = r.bytes()
		if r.byte() == 1 {
			e.hasPrev = true
			e.prev.create = r.varint()
			e.prev.mod = r.varint()
			e.prev.value = r.bytes()
		}
		if r.err != nil {
			break
		}
		if e.typ != evPut && e.typ != evDel {
			return fmt.Errorf("%w: event type %d", errCorrupt, e.typ)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if r.err != nil {
		return fmt.Errorf("decoding log record: %w", r.err)
	}
	return nil
}
