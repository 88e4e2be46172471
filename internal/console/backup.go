package console

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// backupFormat names the backup file format (JSON lines: a header, one line
// per key, a trailer with the count and a SHA-256 over every key line).
const backupFormat = "meridian-backup/v1"

type backupHeader struct {
	Format   string    `json:"format"`
	Revision int64     `json:"revision"`
	Created  time.Time `json:"created"`
}

type backupEntry struct {
	Key   string `json:"k"`
	Value []byte `json:"v"`
}

type backupTrailer struct {
	End    bool   `json:"end"`
	Count  int    `json:"count"`
	SHA256 string `json:"sha256"`
}

// Backup writes every key of st, read at one revision, to w. Everything a
// console needs is in the store (objects, history, audit chain, the CA and
// the data keys, the latter wrapped by the master key): keep the master key
// itself separately.
func Backup(ctx context.Context, st store.Store, w io.Writer) (count int, rev int64, err error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	h := sha256.New()
	opts := store.ListOptions{Limit: 1000}
	first := true
	for {
		page, err := st.List(ctx, "", opts)
		if err != nil {
			return count, rev, fmt.Errorf("backup: listing keys: %w", err)
		}
		if first {
			rev = page.Revision
			if err := enc.Encode(backupHeader{Format: backupFormat, Revision: rev, Created: time.Now().UTC()}); err != nil {
				return 0, 0, fmt.Errorf("backup: writing header: %w", err)
			}
			first = false
		}
		for _, kv := range page.Items {
			line, err := json.Marshal(backupEntry{Key: kv.Key, Value: kv.Value})
			if err != nil {
				return count, rev, fmt.Errorf("backup: encoding %q: %w", kv.Key, err)
			}
			h.Write(line)
			h.Write([]byte{'\n'})
			if _, err := bw.Write(append(line, '\n')); err != nil {
				return count, rev, fmt.Errorf("backup: writing: %w", err)
			}
			count++
		}
		if !page.More || len(page.Items) == 0 {
			break
		}
		opts.Revision = page.Revision
		opts.After = page.Items[len(page.Items)-1].Key
	}
	if err := enc.Encode(backupTrailer{End: true, Count: count, SHA256: hex.EncodeToString(h.Sum(nil))}); err != nil {
		return count, rev, fmt.Errorf("backup: writing trailer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return count, rev, fmt.Errorf("backup: writing: %w", err)
	}
	return count, rev, nil
}

// Restore reads a backup from r, checks it completely (format, count and
// checksum), and only then writes it into st, which must be empty.
func Restore(ctx context.Context, st store.Store, r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return 0, fmt.Errorf("restore: reading header: %w", err)
		}
		return 0, errors.New("restore: empty backup file")
	}
	var hdr backupHeader
	if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil || hdr.Format != backupFormat {
		return 0, fmt.Errorf("restore: line 1: not a %s file", backupFormat)
	}
	h := sha256.New()
	var entries []backupEntry
	var trailer *backupTrailer
	line := 1
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if trailer != nil {
			return 0, fmt.Errorf("restore: line %d: data after the end marker", line)
		}
		var probe struct {
			End *bool `json:"end"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return 0, fmt.Errorf("restore: line %d: %w", line, err)
		}
		if probe.End != nil {
			trailer = &backupTrailer{}
			if err := json.Unmarshal(b, trailer); err != nil {
				return 0, fmt.Errorf("restore: line %d: %w", line, err)
			}
			continue
		}
		var e backupEntry
		if err := json.Unmarshal(b, &e); err != nil || e.Key == "" {
			return 0, fmt.Errorf("restore: line %d: not a key entry", line)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("restore: line %d: %w", line+1, err)
	}
	if trailer == nil {
		return 0, errors.New("restore: the backup has no end marker (truncated file?)")
	}
	if trailer.Count != len(entries) {
		return 0, fmt.Errorf("restore: the end marker counts %d keys, the file holds %d", trailer.Count, len(entries))
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != trailer.SHA256 {
		return 0, fmt.Errorf("restore: checksum mismatch (file %s, end marker %s): the backup is damaged", sum, trailer.SHA256)
	}
	existing, err := st.List(ctx, "", store.ListOptions{Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("restore: checking the target store: %w", err)
	}
	if len(existing.Items) > 0 {
		return 0, errors.New("restore: the target store is not empty; restore into a new data directory or etcd prefix")
	}
	// Transactions within what every backend takes: store.MaxTxnOps keys
	// and well under etcd's 1.5 MiB request limit (one bigger key alone).
	const maxTxnBytes = 1 << 20
	for i, end := 0, 0; i < len(entries); i = end {
		t, size := store.Txn{}, 0
		for end = i; end < len(entries) && end-i < store.MaxTxnOps; end++ {
			e := entries[end]
			if size += len(e.Key) + len(e.Value); end > i && size > maxTxnBytes {
				break
			}
			t.Compares = append(t.Compares, store.Compare{Key: e.Key, ModRevision: 0})
			t.Ops = append(t.Ops, store.Put(e.Key, e.Value))
		}
		if _, err := st.Txn(ctx, t); err != nil {
			return i, fmt.Errorf("restore: writing keys %d-%d: %w", i+1, end, err)
		}
	}
	return len(entries), nil
}
