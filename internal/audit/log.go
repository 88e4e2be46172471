package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// DefaultPrefix is where a Log keeps its records, heads and checkpoints.
const DefaultPrefix = "/sys/audit/"

// DefaultCheckpointEvery is how often (in records) a checkpoint is kept.
const DefaultCheckpointEvery = 64

// KeySource supplies named random secrets that are the same on every
// console sharing the store (pki.Keyring implements it).
type KeySource interface {
	Secret(ctx context.Context, name string, size int) ([]byte, error)
}

// Secret names used with the KeySource.
const (
	signingSecret    = "audit/signing"
	hmacSecretPrefix = "audit/hmac/"
)

// Options tune a Log. The zero value gives the defaults.
type Options struct {
	// Prefix replaces DefaultPrefix.
	Prefix string
	// CheckpointEvery replaces DefaultCheckpointEvery.
	CheckpointEvery uint64
	// Now replaces time.Now.
	Now func() time.Time
}

// Log is the audit log of every tenant, kept in a store. Records of a
// tenant form a hash chain; the chain's head is a signed checkpoint that is
// rewritten, in the same transaction, with every record. A Log is safe for
// concurrent use.
//
// Keys, with P the prefix and T the tenant:
//
//	P T /r/<seq, 20 digits>   records
//	P T /head                 the signed head checkpoint
//	P T /c/<seq, 20 digits>   kept checkpoints
type Log struct {
	st     store.Store
	keys   KeySource
	prefix string
	every  uint64
	now    func() time.Time

	mu     sync.Mutex
	signer ed25519.PrivateKey
	keyID  string
}

// New returns the audit log kept in st, with keys from keys.
func New(st store.Store, keys KeySource, opts Options) *Log {
	l := &Log{st: st, keys: keys, prefix: opts.Prefix, every: opts.CheckpointEvery, now: opts.Now}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if !strings.HasSuffix(l.prefix, "/") {
		l.prefix += "/"
	}
	if l.every == 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

func checkTenant(t string) error {
	if t == "" || strings.ContainsAny(t, "/\x00") {
		return fmt.Errorf("invalid tenant name %q", t)
	}
	return nil
}

func seqKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

func (l *Log) tenantPrefix(t string) string     { return l.prefix + t + "/" }
func (l *Log) recordPrefix(t string) string     { return l.tenantPrefix(t) + "r/" }
func (l *Log) checkpointPrefix(t string) string { return l.tenantPrefix(t) + "c/" }

// RecordKey returns the store key of a tenant's record seq.
func (l *Log) RecordKey(tenant string, seq uint64) string {
	return l.recordPrefix(tenant) + seqKey(seq)
}

// HeadKey returns the store key of a tenant's head checkpoint.
func (l *Log) HeadKey(tenant string) string { return l.tenantPrefix(tenant) + "head" }

// CheckpointKey returns the store key of a tenant's kept checkpoint at seq.
func (l *Log) CheckpointKey(tenant string, seq uint64) string {
	return l.checkpointPrefix(tenant) + seqKey(seq)
}

func parseSeqKey(key, prefix string) (uint64, bool) {
	s, ok := strings.CutPrefix(key, prefix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// IsHeadConflict reports whether err is a store conflict on tenant's audit
// head: another write of the same tenant won, and the caller should retry
// with a fresh Prepare (a conflict on its own keys is the caller's).
func (l *Log) IsHeadConflict(err error, tenant string) bool {
	var c *store.ConflictError
	return errors.As(err, &c) && c.Key == l.HeadKey(tenant)
}

// signingKey returns the console's Ed25519 checkpoint key and its id.
func (l *Log) signingKey(ctx context.Context) (ed25519.PrivateKey, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer != nil {
		return l.signer, l.keyID, nil
	}
	seed, err := l.keys.Secret(ctx, signingSecret, ed25519.SeedSize)
	if err != nil {
		return nil, "", fmt.Errorf("loading audit signing key: %w", err)
	}
	l.signer = ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(l.signer.Public().(ed25519.PublicKey))
	l.keyID = "ed25519:" + hex.EncodeToString(sum[:8])
	return l.signer, l.keyID, nil
}

// PublicKey returns the key that verifies checkpoints, and its id.
func (l *Log) PublicKey(ctx context.Context) (ed25519.PublicKey, string, error) {
	k, id, err := l.signingKey(ctx)
	if err != nil {
		return nil, "", err
	}
	return k.Public().(ed25519.PublicKey), id, nil
}

func (l *Log) sign(ctx context.Context, c *Checkpoint) error {
	k, id, err := l.signingKey(ctx)
	if err != nil {
		return err
	}
	c.KeyID = id
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k, c.signedBytes()))
	return nil
}

// checkSignature verifies a checkpoint's signature with the console's key.
func (l *Log) checkSignature(ctx context.Context, c *Checkpoint) error {
	k, id, err := l.signingKey(ctx)
	if err != nil {
		return err
	}
	if c.KeyID != id {
		return fmt.Errorf("signed by unknown key %q", c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(k.Public().(ed25519.PublicKey), c.signedBytes(), sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

// Digest returns the keyed digest ("hmac-sha256:<hex>") of data under the
// tenant's audit key, for Record.BeforeDigest and AfterDigest. The key is
// secret, so a digest of a weak secret cannot be brute-forced, and
// different per tenant, so digests do not link tenants. nil data gives "".
func (l *Log) Digest(ctx context.Context, tenant string, data []byte) (string, error) {
	if data == nil {
		return "", nil
	}
	if err := checkTenant(tenant); err != nil {
		return "", err
	}
	key, err := l.keys.Secret(ctx, hmacSecretPrefix+tenant, 32)
	if err != nil {
		return "", fmt.Errorf("loading audit key of tenant %q: %w", tenant, err)
	}
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)), nil
}

// readHead returns the tenant's head and its ModRevision (0 when absent).
func (l *Log) readHead(ctx context.Context, tenant string) (Checkpoint, int64, error) {
	kv, err := l.st.Get(ctx, l.HeadKey(tenant))
	if errors.Is(err, store.ErrNotFound) {
		return Checkpoint{Tenant: tenant}, 0, nil
	}
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("reading audit head of tenant %q: %w", tenant, err)
	}
	var h Checkpoint
	if err := json.Unmarshal(kv.Value, &h); err != nil {
		return Checkpoint{}, 0, fmt.Errorf("reading audit head of tenant %q: %w", tenant, err)
	}
	return h, kv.ModRevision, nil
}

// Prepare builds the tenant's next record from rec and returns the writes
// (the record, the new signed head and, every CheckpointEvery records, a
// kept checkpoint) and the compare on the head that the caller must put in
// the SAME store.Txn as the change the record describes. When that Txn
// fails with a conflict on the head (IsHeadConflict), call Prepare again.
func (l *Log) Prepare(ctx context.Context, tenant string, rec Record) ([]store.Op, []store.Compare, error) {
	ops, cmps, _, err := l.PrepareRecord(ctx, tenant, rec)
	return ops, cmps, err
}

// PrepareRecord is Prepare also returning the record as it will be stored.
func (l *Log) PrepareRecord(ctx context.Context, tenant string, rec Record) ([]store.Op, []store.Compare, Record, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, nil, Record{}, fmt.Errorf("preparing audit record: %w", err)
	}
	head, headRev, err := l.readHead(ctx, tenant)
	if err != nil {
		return nil, nil, Record{}, err
	}
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Time = rec.Time.UTC().Round(0)
	if rec.Outcome == "" {
		rec.Outcome = OutcomeAllowed
	}
	rec.Seq = head.Seq + 1
	rec.Tenant = tenant
	rec.PrevHash = head.Hash
	rec.Hash = rec.ComputeHash()
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, nil, Record{}, fmt.Errorf("encoding audit record: %w", err)
	}
	next := Checkpoint{Tenant: tenant, Seq: rec.Seq, Hash: rec.Hash, Time: rec.Time}
	if err := l.sign(ctx, &next); err != nil {
		return nil, nil, Record{}, err
	}
	headJSON, _ := json.Marshal(next)
	ops := []store.Op{store.Put(l.RecordKey(tenant, rec.Seq), recJSON), store.Put(l.HeadKey(tenant), headJSON)}
	if rec.Seq%l.every == 0 {
		ops = append(ops, store.Put(l.CheckpointKey(tenant, rec.Seq), headJSON))
	}
	return ops, []store.Compare{{Key: l.HeadKey(tenant), ModRevision: headRev}}, rec, nil
}

// PrepareBatch is PrepareRecord for several records at once: they get
// consecutive seqs in the order given, each chained to the one before, and
// the writes hold every record, a kept checkpoint for each seq that is a
// multiple of CheckpointEvery, and ONE new signed head, with ONE compare on
// the head. The caller puts them in a single store.Txn with the changes the
// records describe; on a head conflict (IsHeadConflict) it calls
// PrepareBatch again. The records are returned as they will be stored.
func (l *Log) PrepareBatch(ctx context.Context, tenant string, recs []Record) ([]store.Op, []store.Compare, []Record, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, nil, nil, fmt.Errorf("preparing audit records: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil, nil, errors.New("preparing audit records: no records")
	}
	head, headRev, err := l.readHead(ctx, tenant)
	if err != nil {
		return nil, nil, nil, err
	}
	now := l.now()
	out := make([]Record, len(recs))
	ops := make([]store.Op, 0, len(recs)+2)
	prev := head.Hash
	seq := head.Seq
	var last Checkpoint
	for i, rec := range recs {
		if rec.Time.IsZero() {
			rec.Time = now
		}
		rec.Time = rec.Time.UTC().Round(0)
		if rec.Outcome == "" {
			rec.Outcome = OutcomeAllowed
		}
		seq++
		rec.Seq = seq
		rec.Tenant = tenant
		rec.PrevHash = prev
		rec.Hash = rec.ComputeHash()
		prev = rec.Hash
		recJSON, err := json.Marshal(rec)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("encoding audit record: %w", err)
		}
		ops = append(ops, store.Put(l.RecordKey(tenant, rec.Seq), recJSON))
		last = Checkpoint{Tenant: tenant, Seq: rec.Seq, Hash: rec.Hash, Time: rec.Time}
		if rec.Seq%l.every == 0 && i < len(recs)-1 {
			cp := last
			if err := l.sign(ctx, &cp); err != nil {
				return nil, nil, nil, err
			}
			b, _ := json.Marshal(cp)
			ops = append(ops, store.Put(l.CheckpointKey(tenant, cp.Seq), b))
		}
		out[i] = rec
	}
	if err := l.sign(ctx, &last); err != nil {
		return nil, nil, nil, err
	}
	headJSON, _ := json.Marshal(last)
	ops = append(ops, store.Put(l.HeadKey(tenant), headJSON))
	if last.Seq%l.every == 0 {
		ops = append(ops, store.Put(l.CheckpointKey(tenant, last.Seq), headJSON))
	}
	return ops, []store.Compare{{Key: l.HeadKey(tenant), ModRevision: headRev}}, out, nil
}

// maxAppendAttempts bounds the retries of Append under contention.
const maxAppendAttempts = 100

// Append writes a standalone record (a login, an aggregate of denials),
// retrying when another write of the tenant wins the head.
func (l *Log) Append(ctx context.Context, tenant string, rec Record) (Record, error) {
	for attempt := 0; ; attempt++ {
		ops, cmps, out, err := l.PrepareRecord(ctx, tenant, rec)
		if err != nil {
			return Record{}, err
		}
		_, err = l.st.Txn(ctx, store.Txn{Compares: cmps, Ops: ops})
		if err == nil {
			return out, nil
		}
		if !l.IsHeadConflict(err, tenant) || attempt+1 >= maxAppendAttempts {
			return Record{}, fmt.Errorf("appending audit record of tenant %q: %w", tenant, err)
		}
		// Back off a little, with jitter, so contending writers spread out.
		d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(1+attempt/10)))
		select {
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-time.After(d):
		}
	}
}

// Checkpoint keeps a copy of the tenant's current head as a checkpoint and
// returns it (a verifier may also keep it as an anchor).
func (l *Log) Checkpoint(ctx context.Context, tenant string) (Checkpoint, error) {
	if err := checkTenant(tenant); err != nil {
		return Checkpoint{}, err
	}
	head, rev, err := l.readHead(ctx, tenant)
	if err != nil {
		return Checkpoint{}, err
	}
	if rev == 0 {
		return Checkpoint{}, fmt.Errorf("checkpointing audit log of tenant %q: no records yet", tenant)
	}
	if err := l.checkSignature(ctx, &head); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpointing audit log of tenant %q: head %w", tenant, err)
	}
	b, _ := json.Marshal(head)
	key := l.CheckpointKey(tenant, head.Seq)
	_, err = l.st.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: key, ModRevision: 0}},
		Ops:      []store.Op{store.Put(key, b)},
	})
	if err != nil && !store.IsConflict(err) { // a conflict: already kept
		return Checkpoint{}, fmt.Errorf("checkpointing audit log of tenant %q: %w", tenant, err)
	}
	return head, nil
}
