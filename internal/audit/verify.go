package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/meridian-platform/meridian/internal/store"
)

// Bad names the first record found wrong by Verify.
type Bad struct {
	Seq    uint64 `json:"seq"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Report is the outcome of Verify.
type Report struct {
	OK          bool `json:"ok"`
	Records     int  `json:"records"`
	Checkpoints int  `json:"checkpoints"`
	// FirstBad is the lowest sequence number found wrong (nil when OK).
	FirstBad *Bad `json:"firstBad,omitempty"`
	// Head is the chain's signed head; a verifier may keep it and pass it
	// to a later Verify as an anchor.
	Head *Checkpoint `json:"head,omitempty"`
}

type verifier struct {
	l      *Log
	ctx    context.Context
	tenant string
	rev    int64
	bad    *Bad
}

func (v *verifier) fail(seq uint64, key, reason string) {
	if v.bad == nil || seq < v.bad.Seq {
		v.bad = &Bad{Seq: seq, Key: key, Reason: reason}
	}
}

// list pages through prefix at the verifier's revision.
func (v *verifier) list(prefix string, fn func(store.KV)) error {
	opts := store.ListOptions{Revision: v.rev, Limit: 500}
	for {
		res, err := v.l.st.List(v.ctx, prefix, opts)
		if err != nil {
			return err
		}
		if v.rev == 0 {
			v.rev = res.Revision
		}
		for _, kv := range res.Items {
			fn(kv)
		}
		if !res.More || len(res.Items) == 0 {
			return nil
		}
		opts.After, opts.Revision = res.Items[len(res.Items)-1].Key, v.rev
	}
}

// Verify checks a tenant's chain: every record's hash and link to the one
// before, sequence continuity from 1 (a removed or reordered record shows),
// every kept checkpoint's signature and that the chain passes through it,
// and the tail: the signed head and the latest checkpoint must end where
// the records end (a cut-off tail shows). anchors are checkpoints a
// verifier kept from earlier runs; they are checked like kept ones. The
// whole chain is read at one store revision. The error is for failures to
// read; a broken chain is reported in Report.FirstBad.
func (l *Log) Verify(ctx context.Context, tenant string, anchors ...Checkpoint) (Report, error) {
	if err := checkTenant(tenant); err != nil {
		return Report{}, err
	}
	v := &verifier{l: l, ctx: ctx, tenant: tenant}
	if _, _, err := l.signingKey(ctx); err != nil {
		return Report{}, err
	}
	var rep Report

	// Checkpoints first (they also fix the revision the rest is read at).
	type cpAt struct {
		cp  Checkpoint
		key string
	}
	var cps []cpAt
	cpPrefix := l.checkpointPrefix(tenant)
	err := v.list(cpPrefix, func(kv store.KV) {
		rep.Checkpoints++
		seq, ok := parseSeqKey(kv.Key, cpPrefix)
		var cp Checkpoint
		if err := json.Unmarshal(kv.Value, &cp); err != nil {
			v.fail(seq, kv.Key, "checkpoint cannot be decoded: "+err.Error())
			return
		}
		if !ok || cp.Seq != seq {
			v.fail(min(seq, cp.Seq), kv.Key, fmt.Sprintf("checkpoint stored under the key of seq %d names seq %d", seq, cp.Seq))
			return
		}
		cps = append(cps, cpAt{cp, kv.Key})
	})
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log of tenant %q: listing checkpoints: %w", tenant, err)
	}
	if v.rev == 0 {
		if v.rev, err = l.st.Revision(ctx); err != nil {
			return Report{}, fmt.Errorf("verifying audit log of tenant %q: %w", tenant, err)
		}
	}
	for _, a := range anchors {
		cps = append(cps, cpAt{a, "anchor"})
	}

	// The head.
	var head *Checkpoint
	headKey := l.HeadKey(tenant)
	err = v.list(headKey, func(kv store.KV) {
		if kv.Key != headKey {
			return
		}
		var h Checkpoint
		if err := json.Unmarshal(kv.Value, &h); err != nil {
			v.fail(0, kv.Key, "head cannot be decoded: "+err.Error())
			return
		}
		head = &h
	})
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log of tenant %q: reading head: %w", tenant, err)
	}

	// Seqs whose record hash a checkpoint or the head vouches for.
	want := map[uint64]string{}
	for _, c := range cps {
		want[c.cp.Seq] = ""
	}
	if head != nil {
		want[head.Seq] = ""
	}
	seen := map[uint64]string{}

	// The records, in order.
	recPrefix := l.recordPrefix(tenant)
	var (
		expect  uint64 = 1
		prev    *Record
		lastSeq uint64
	)
	err = v.list(recPrefix, func(kv store.KV) {
		rep.Records++
		seq, ok := parseSeqKey(kv.Key, recPrefix)
		if !ok {
			v.fail(expect, kv.Key, "unexpected key among the records")
			return
		}
		if seq > expect {
			v.fail(expect, l.RecordKey(tenant, expect), fmt.Sprintf("record %d is missing (next present record is %d)", expect, seq))
			prev = nil
		}
		expect = seq + 1
		lastSeq = seq
		var r Record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			v.fail(seq, kv.Key, "record cannot be decoded: "+err.Error())
			prev = nil
			return
		}
		switch {
		case r.Seq != seq:
			v.fail(seq, kv.Key, fmt.Sprintf("the key of record %d holds record %d (moved or reordered)", seq, r.Seq))
		case r.Tenant != tenant:
			v.fail(seq, kv.Key, fmt.Sprintf("record %d belongs to tenant %q", seq, r.Tenant))
		case r.ComputeHash() != r.Hash:
			v.fail(seq, kv.Key, fmt.Sprintf("record %d does not match its hash (altered)", seq))
		case seq == 1 && r.PrevHash != "":
			v.fail(seq, kv.Key, "record 1 links to a previous record")
		case prev != nil && r.PrevHash != prev.Hash:
			// r is self-consistent, and the chain after it is vouched for
			// by the next checkpoint: the record before it was changed.
			v.fail(prev.Seq, l.RecordKey(tenant, prev.Seq), fmt.Sprintf("record %d is not the record that record %d links to (altered and rehashed)", prev.Seq, seq))
		}
		if _, ok := want[seq]; ok {
			seen[seq] = r.Hash
		}
		prev = &r
	})
	if err != nil {
		if errors.Is(err, store.ErrCompacted) {
			return Report{}, fmt.Errorf("verifying audit log of tenant %q: history moved on while reading, retry: %w", tenant, err)
		}
		return Report{}, fmt.Errorf("verifying audit log of tenant %q: listing records: %w", tenant, err)
	}

	// Checkpoints (and anchors): signed, and on the chain.
	checkCP := func(c Checkpoint, key, what string) {
		if c.Tenant != tenant {
			v.fail(c.Seq, key, fmt.Sprintf("%s at seq %d names tenant %q", what, c.Seq, c.Tenant))
			return
		}
		if err := l.checkSignature(ctx, &c); err != nil {
			v.fail(c.Seq, key, fmt.Sprintf("%s at seq %d: %v (forged or altered)", what, c.Seq, err))
			return
		}
		if c.Seq > lastSeq {
			v.fail(lastSeq+1, l.RecordKey(tenant, lastSeq+1), fmt.Sprintf("records after %d are missing: a signed %s is at seq %d (tail cut off)", lastSeq, what, c.Seq))
			return
		}
		h, ok := seen[c.Seq]
		if !ok {
			v.fail(c.Seq, l.RecordKey(tenant, c.Seq), fmt.Sprintf("record %d, vouched for by a signed %s, is missing", c.Seq, what))
			return
		}
		if h != c.Hash {
			v.fail(c.Seq, l.RecordKey(tenant, c.Seq), fmt.Sprintf("record %d differs from the one a signed %s vouches for", c.Seq, what))
		}
	}
	for _, c := range cps {
		checkCP(c.cp, c.key, "checkpoint")
	}

	// The tail: the head must be the last record.
	switch {
	case head == nil && rep.Records > 0:
		v.fail(lastSeq, headKey, "the head is missing")
	case head != nil && head.Tenant == tenant && l.checkSignature(ctx, head) != nil:
		err := l.checkSignature(ctx, head)
		v.fail(lastSeq+1, headKey, fmt.Sprintf("the head (seq %d) %v (forged or altered): records after %d may have been cut off", head.Seq, err, lastSeq))
		rep.Head = head
	case head != nil:
		checkCP(*head, headKey, "head")
		if head.Seq < lastSeq {
			v.fail(head.Seq+1, l.RecordKey(tenant, head.Seq+1), fmt.Sprintf("records after the head (seq %d) up to %d were not written through the log", head.Seq, lastSeq))
		}
		rep.Head = head
	}
	rep.FirstBad = v.bad
	rep.OK = v.bad == nil
	return rep, nil
}
