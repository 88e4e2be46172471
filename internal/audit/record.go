package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// Outcome says how a request ended.
type Outcome string

const (
	OutcomeAllowed Outcome = "allowed"
	OutcomeDenied  Outcome = "denied"
	OutcomeError   Outcome = "error"
)

// Record is one audit record. Seq, Tenant, PrevHash and Hash are set by the
// Log; the caller fills in the rest.
type Record struct {
	Seq       uint64    `json:"seq"`
	Tenant    string    `json:"tenant"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	Verb      string    `json:"verb"`
	Kind      string    `json:"kind,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Name      string    `json:"name,omitempty"`
	// ClientAddr is the caller's address (IP or IP:port).
	ClientAddr string  `json:"clientAddr,omitempty"`
	Outcome    Outcome `json:"outcome"`
	// Code is the HTTP status answered.
	Code int `json:"code,omitempty"`
	// Reason says why, for denials and errors.
	Reason string `json:"reason,omitempty"`
	// Count is the number of requests an aggregated record stands for
	// (denials per principal and minute); 0 means one.
	Count int `json:"count,omitempty"`
	// BeforeDigest and AfterDigest are keyed digests (Log.Digest) of the
	// object before and after the change.
	BeforeDigest string `json:"beforeDigest,omitempty"`
	AfterDigest  string `json:"afterDigest,omitempty"`
	// PrevHash is the Hash of the tenant's previous record ("" for the first).
	PrevHash string `json:"prevHash"`
	// Hash is SHA-256 over the canonical encoding of every other field.
	Hash string `json:"hash"`
}

// encoder builds a canonical, unambiguous byte string: every field is
// length-prefixed, so no two different records encode the same.
type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) num(n int64) { e.str(strconv.FormatInt(n, 10)) }

func canonicalTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ComputeHash returns the hash a record must carry: SHA-256 (hex) of the
// canonical encoding of all its fields but Hash, PrevHash included.
func (r *Record) ComputeHash() string {
	e := encoder{b: make([]byte, 0, 256)}
	e.str("meridian-audit-record-v1")
	e.str(strconv.FormatUint(r.Seq, 10))
	e.str(r.Tenant)
	e.str(canonicalTime(r.Time))
	e.str(r.Principal)
	e.str(r.Verb)
	e.str(r.Kind)
	e.str(r.Namespace)
	e.str(r.Name)
	e.str(r.ClientAddr)
	e.str(string(r.Outcome))
	e.num(int64(r.Code))
	e.str(r.Reason)
	e.num(int64(r.Count))
	e.str(r.BeforeDigest)
	e.str(r.AfterDigest)
	e.str(r.PrevHash)
	sum := sha256.Sum256(e.b)
	return hex.EncodeToString(sum[:])
}

// Checkpoint is a signed statement that a tenant's chain had record Seq
// with hash Hash at Time. The head of every chain is a checkpoint, rewritten
// with each record; copies are kept every Options.CheckpointEvery records
// and on demand. A verifier may keep the last checkpoint it saw and pass it
// to a later Verify as an anchor.
type Checkpoint struct {
	Tenant string    `json:"tenant"`
	Seq    uint64    `json:"seq"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time"`
	// KeyID names the Ed25519 key that signed it.
	KeyID string `json:"keyId"`
	// Signature is the base64 Ed25519 signature of the canonical encoding.
	Signature string `json:"signature"`
}

func (c *Checkpoint) signedBytes() []byte {
	e := encoder{}
	e.str("meridian-audit-checkpoint-v1")
	e.str(c.Tenant)
	e.str(strconv.FormatUint(c.Seq, 10))
	e.str(c.Hash)
	e.str(canonicalTime(c.Time))
	e.str(c.KeyID)
	return e.b
}
