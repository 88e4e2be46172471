package secevents

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store bounds and defaults.
const (
	defaultStoreFileBytes = 8 << 20 // per file
	defaultStoreFiles     = 4       // per tenant: the current file and 3 rotated ones
	maxStoreLine          = 1 << 20
	// MaxListLimit bounds the records one List returns.
	MaxListLimit     = 5000
	defaultListLimit = 100
)

// Store keeps records per tenant in append-only JSON-lines files under one
// directory (DIR/<tenant>/events.jsonl, rotated to events.1.jsonl ...):
// disk is bounded by FileBytes × Files per tenant, and a List holds only
// its Limit records in memory while it scans a tenant's files.
type Store struct {
	dir       string
	fileBytes int64
	files     int

	mu      sync.Mutex
	tenants map[string]*tenantFiles
}

// tenantFiles guards one tenant's files: appends and rotation take the
// write lock, lists the read lock.
type tenantFiles struct {
	mu   sync.RWMutex
	size int64 // of the current file; -1 until known
}

// StoreOptions bound a Store.
type StoreOptions struct {
	// FileBytes is the size at which a tenant's current file is rotated
	// (default 8 MiB); Files is how many files a tenant keeps, the
	// current one included (default 4, at least 2).
	FileBytes int64
	Files     int
}

// NewStore returns a store under dir (created on the first Append).
func NewStore(dir string, opts StoreOptions) *Store {
	if opts.FileBytes <= 0 {
		opts.FileBytes = defaultStoreFileBytes
	}
	if opts.Files < 2 {
		opts.Files = defaultStoreFiles
	}
	return &Store{dir: dir, fileBytes: opts.FileBytes, files: opts.Files, tenants: map[string]*tenantFiles{}}
}

func (s *Store) tenant(name string) *tenantFiles {
	s.mu.Lock()
	defer s.mu.Unlock()
	te := s.tenants[name]
	if te == nil {
		te = &tenantFiles{size: -1}
		s.tenants[name] = te
	}
	return te
}

// validTenant keeps tenant names usable as one path element (DNS labels).
func validTenant(t string) bool {
	if t == "" || len(t) > 63 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Store) fileName(tenant string, i int) string {
	if i == 0 {
		return filepath.Join(s.dir, tenant, "events.jsonl")
	}
	return filepath.Join(s.dir, tenant, "events."+strconv.Itoa(i)+".jsonl")
}

// Append writes records of tenant, rotating its files when the current one
// would grow past FileBytes.
func (s *Store) Append(tenant string, recs []Record) error {
	if !validTenant(tenant) {
		return fmt.Errorf("storing security events: invalid tenant name %q", tenant)
	}
	var buf []byte
	for i := range recs {
		line, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("storing security events: encoding: %w", err)
		}
		if len(line) >= maxStoreLine {
			continue
		}
		buf = append(append(buf, line...), '\n')
	}
	if len(buf) == 0 {
		return nil
	}
	te := s.tenant(tenant)
	te.mu.Lock()
	defer te.mu.Unlock()
	cur := s.fileName(tenant, 0)
	if te.size < 0 {
		if err := os.MkdirAll(filepath.Dir(cur), 0o700); err != nil {
			return fmt.Errorf("storing security events: %w", err)
		}
		fi, err := os.Stat(cur)
		switch {
		case err == nil:
			te.size = fi.Size()
			if te.size > 0 && !endsWithNewline(cur, te.size) {
				// A line cut short by a crash: end it so that the next
				// record starts on a line of its own.
				buf = append([]byte{'\n'}, buf...)
			}
		case errors.Is(err, fs.ErrNotExist):
			te.size = 0
		default:
			return fmt.Errorf("storing security events: %w", err)
		}
	}
	if te.size > 0 && te.size+int64(len(buf)) > s.fileBytes {
		if err := s.rotate(tenant); err != nil {
			return err
		}
		te.size = 0
	}
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("storing security events: %w", err)
	}
	n, err := f.Write(buf)
	te.size += int64(n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storing security events: %w", err)
	}
	return nil
}

func endsWithNewline(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// rotate shifts events.jsonl to events.1.jsonl and so on, dropping the
// oldest file.
func (s *Store) rotate(tenant string) error {
	if err := os.Remove(s.fileName(tenant, s.files-1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotating security events: %w", err)
	}
	for i := s.files - 2; i >= 0; i-- {
		if err := os.Rename(s.fileName(tenant, i), s.fileName(tenant, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating security events: %w", err)
		}
	}
	return nil
}

// List returns tenant's records matching f, newest first: at most f.Limit
// (default 100, capped at MaxListLimit).
func (s *Store) List(ctx context.Context, tenant string, f Filter) ([]Record, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, MaxListLimit)
	if !validTenant(tenant) {
		return nil, nil
	}
	te := s.tenant(tenant)
	te.mu.RLock()
	defer te.mu.RUnlock()
	h := &recordHeap{}
	pf := newPrefilter(&f)
	// Newest file first: once the heap holds limit records, older lines
	// are skipped on their time alone.
	for i := 0; i < s.files; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := scanFile(s.fileName(tenant, i), &f, pf, h, limit); err != nil {
			return nil, err
		}
	}
	out := []Record(*h)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

func scanFile(path string, f *Filter, pf *prefilter, h *recordHeap, limit int) error {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading security events: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), maxStoreLine)
	for sc.Scan() {
		line := sc.Bytes()
		if !pf.pass(line, h, limit) {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			continue // a line cut short by a crash: skip it
		}
		if !f.Match(&r) {
			continue
		}
		if h.Len() < limit {
			heap.Push(h, r)
		} else if r.Time.After((*h)[0].Time) {
			(*h)[0] = r
			heap.Fix(h, 0)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading security events: %w", err)
	}
	return nil
}

// prefilter rejects most lines that cannot be listed without decoding
// them: the fields a filter names must appear verbatim (as json.Marshal
// wrote them), and the time (the first field) must fall in the window and,
// once the heap is full, be newer than its oldest record. It may let
// through lines that do not match (Filter.Match decides), never the
// reverse.
type prefilter struct {
	needles      [][]byte
	since, until time.Time
}

func jsonField(name, v string) []byte {
	b, _ := json.Marshal(v)
	return append([]byte(`"`+name+`":`), b...)
}

func newPrefilter(f *Filter) *prefilter {
	pf := &prefilter{since: f.Since, until: f.Until}
	if f.LoadBalancer != "" {
		ns, n, ok := strings.Cut(f.LoadBalancer, "/")
		if ok {
			pf.needles = append(pf.needles, jsonField("namespace", ns))
		} else {
			n = ns
		}
		pf.needles = append(pf.needles, jsonField("loadBalancer", n))
	}
	if len(f.Namespaces) == 1 {
		for ns := range f.Namespaces {
			pf.needles = append(pf.needles, jsonField("namespace", ns))
		}
	}
	if f.Site != "" {
		pf.needles = append(pf.needles, jsonField("site", f.Site))
	}
	if f.Type != "" {
		pf.needles = append(pf.needles, jsonField("type", f.Type))
	}
	if f.Rule != "" {
		q, _ := json.Marshal(f.Rule)
		pf.needles = append(pf.needles, q[1:len(q)-1])
	}
	return pf
}

var timePrefix = []byte(`{"time":"`)

func (pf *prefilter) pass(line []byte, h *recordHeap, limit int) bool {
	for _, n := range pf.needles {
		if !bytes.Contains(line, n) {
			return false
		}
	}
	if !bytes.HasPrefix(line, timePrefix) {
		return true
	}
	rest := line[len(timePrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	if err != nil {
		return true
	}
	switch {
	case !pf.since.IsZero() && t.Before(pf.since):
		return false
	case !pf.until.IsZero() && !t.Before(pf.until):
		return false
	case h.Len() >= limit && !t.After((*h)[0].Time):
		return false
	}
	return true
}

// recordHeap is a min-heap on time: the oldest kept record on top.
type recordHeap []Record

func (h recordHeap) Len() int           { return len(h) }
func (h recordHeap) Less(i, j int) bool { return h[i].Time.Before(h[j].Time) }
func (h recordHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)        { *h = append(*h, x.(Record)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
