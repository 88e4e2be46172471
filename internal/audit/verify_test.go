package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/store"
	"github.com/meridian-platform/meridian/internal/store/backendtest"
)

func appendN(t *testing.T, l *Log, tenant string, from, to int, onHead func(seq int, head []byte)) {
	t.Helper()
	ctx := context.Background()
	for i := from; i <= to; i++ {
		_, err := l.Append(ctx, tenant, Record{
			Principal: "User/alice", Verb: "update", Kind: "OriginPool", Namespace: "retail",
			Name: fmt.Sprintf("pool-%d", i), ClientAddr: "192.0.2.7:5555", Code: 200,
		})
		if err != nil {
			t.Fatal(err)
		}
		if onHead != nil {
			kv, err := l.st.Get(ctx, l.HeadKey(tenant))
			if err != nil {
				t.Fatal(err)
			}
			onHead(i, kv.Value)
		}
	}
}

func mustGet(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	kv, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return kv.Value
}

func raw(t *testing.T, st store.Store, ops ...store.Op) {
	t.Helper()
	if _, err := st.Txn(context.Background(), store.Txn{Ops: ops}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendAndVerify(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		l := newLog(t, st, Options{})
		appendN(t, l, "acme", 1, 150, nil)
		appendN(t, l, "globex", 1, 10, nil)
		rep, err := l.Verify(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Records != 150 || rep.Checkpoints != 2 || rep.Head == nil || rep.Head.Seq != 150 {
			t.Fatalf("acme report %+v", rep)
		}
		rep, err = l.Verify(ctx, "globex")
		if err != nil || !rep.OK || rep.Records != 10 || rep.Checkpoints != 0 {
			t.Fatalf("globex report %+v %v", rep, err)
		}
		rep, err = l.Verify(ctx, "empty")
		if err != nil || !rep.OK || rep.Records != 0 {
			t.Fatalf("empty tenant report %+v %v", rep, err)
		}
		if _, err := l.Verify(ctx, "a/b"); err == nil {
			t.Fatal("bad tenant name accepted")
		}
	})
}

// TestTamper alters the stored bytes in every way a store-level attacker
// without the master key could, and checks that Verify names the first bad
// record each time, on both backends.
func TestTamper(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		l := newLog(t, st, Options{CheckpointEvery: 16})
		const n = 40 // checkpoints kept at 16 and 32
		type tamper struct {
			name    string
			do      func(t *testing.T, tenant string, heads map[int][]byte) []Checkpoint // returns anchors
			wantSeq uint64
			reason  string
		}
		rec := func(t *testing.T, tenant string, seq uint64) Record {
			var r Record
			if err := json.Unmarshal(mustGet(t, st, l.RecordKey(tenant, seq)), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		putRec := func(t *testing.T, tenant string, key uint64, r Record) {
			b, _ := json.Marshal(r)
			raw(t, st, store.Put(l.RecordKey(tenant, key), b))
		}
		cases := []tamper{
			{"alter a record", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				r := rec(t, tn, 20)
				r.Name = "something-else"
				putRec(t, tn, 20, r)
				return nil
			}, 20, "altered"},
			{"alter raw bytes", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				b := mustGet(t, st, l.RecordKey(tn, 13))
				raw(t, st, store.Put(l.RecordKey(tn, 13), []byte(strings.Replace(string(b), "192.0.2.7", "192.0.2.8", 1))))
				return nil
			}, 13, "altered"},
			{"alter and rehash a record", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				r := rec(t, tn, 20)
				r.Verb = "get"
				r.Hash = r.ComputeHash()
				putRec(t, tn, 20, r)
				return nil
			}, 20, "rehashed"},
			{"corrupt a record", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				raw(t, st, store.Put(l.RecordKey(tn, 30), []byte("{not json")))
				return nil
			}, 30, "decoded"},
			{"delete a record", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				raw(t, st, store.Delete(l.RecordKey(tn, 20)))
				return nil
			}, 20, "missing"},
			{"delete the first record", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				raw(t, st, store.Delete(l.RecordKey(tn, 1)))
				return nil
			}, 1, "missing"},
			{"delete a checkpointed record", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				raw(t, st, store.Delete(l.RecordKey(tn, 16)))
				return nil
			}, 16, "missing"},
			{"swap two records", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				a, b := mustGet(t, st, l.RecordKey(tn, 20)), mustGet(t, st, l.RecordKey(tn, 21))
				raw(t, st, store.Put(l.RecordKey(tn, 20), b), store.Put(l.RecordKey(tn, 21), a))
				return nil
			}, 20, "reordered"},
			{"swap two records and renumber them", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				a, b := rec(t, tn, 20), rec(t, tn, 21)
				a.Seq, b.Seq = 21, 20
				a.Hash, b.Hash = a.ComputeHash(), b.ComputeHash()
				putRec(t, tn, 20, b)
				putRec(t, tn, 21, a)
				return nil
			}, 19, "links to"},
			{"cut off the tail and roll back the head", func(t *testing.T, tn string, heads map[int][]byte) []Checkpoint {
				for s := 25; s <= n; s++ {
					raw(t, st, store.Delete(l.RecordKey(tn, uint64(s))))
				}
				raw(t, st, store.Put(l.HeadKey(tn), heads[24])) // a genuine old head, replayed
				return nil
			}, 25, "tail cut off"},
			{"cut off the tail and forge the head", func(t *testing.T, tn string, heads map[int][]byte) []Checkpoint {
				for s := 35; s <= n; s++ {
					raw(t, st, store.Delete(l.RecordKey(tn, uint64(s))))
				}
				r := rec(t, tn, 34)
				var h Checkpoint
				json.Unmarshal(heads[34], &h)
				h.Seq, h.Hash = 34, r.Hash
				h.Time = h.Time.Add(1)
				b, _ := json.Marshal(h)
				raw(t, st, store.Put(l.HeadKey(tn), b))
				return nil
			}, 35, "signature"},
			{"cut off the tail past the last checkpoint, checked against an anchor", func(t *testing.T, tn string, heads map[int][]byte) []Checkpoint {
				var anchor Checkpoint
				json.Unmarshal(heads[n], &anchor) // what a verifier kept last time
				for s := 35; s <= n; s++ {
					raw(t, st, store.Delete(l.RecordKey(tn, uint64(s))))
				}
				raw(t, st, store.Put(l.HeadKey(tn), heads[34]))
				return []Checkpoint{anchor}
			}, 35, "tail cut off"},
			{"delete the head", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				raw(t, st, store.Delete(l.HeadKey(tn)))
				return nil
			}, n, "head is missing"},
			{"append a record behind the log's back", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				last := rec(t, tn, n)
				r := last
				r.Seq, r.PrevHash, r.Name = n+1, last.Hash, "injected"
				r.Hash = r.ComputeHash()
				putRec(t, tn, n+1, r)
				return nil
			}, n + 1, "not written through the log"},
			{"forge a checkpoint", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				var c Checkpoint
				json.Unmarshal(mustGet(t, st, l.CheckpointKey(tn, 16)), &c)
				c.Hash = strings.Repeat("0", 64)
				b, _ := json.Marshal(c)
				raw(t, st, store.Put(l.CheckpointKey(tn, 16), b))
				return nil
			}, 16, "forged"},
			{"forge a checkpoint with a fresh key", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				other := newLog(t, backendtest.Bolt(t), Options{})
				r := rec(t, tn, 20)
				c := Checkpoint{Tenant: tn, Seq: 20, Hash: r.Hash, Time: r.Time}
				if err := other.sign(context.Background(), &c); err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(c)
				raw(t, st, store.Put(l.CheckpointKey(tn, 20), b))
				return nil
			}, 20, "unknown key"},
			{"move a checkpoint", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				raw(t, st, store.Put(l.CheckpointKey(tn, 17), mustGet(t, st, l.CheckpointKey(tn, 16))))
				return nil
			}, 16, "names seq"},
			{"move a record to another tenant", func(t *testing.T, tn string, _ map[int][]byte) []Checkpoint {
				r := rec(t, tn, 10)
				r.Tenant = "globex"
				r.Hash = r.ComputeHash()
				putRec(t, tn, 10, r)
				return nil
			}, 10, "belongs to tenant"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tenant := fmt.Sprintf("t%d", i)
				heads := map[int][]byte{}
				appendN(t, l, tenant, 1, n, func(seq int, head []byte) { heads[seq] = head })
				if rep, err := l.Verify(ctx, tenant); err != nil || !rep.OK {
					t.Fatalf("before tampering: %+v %v", rep, err)
				}
				anchors := tc.do(t, tenant, heads)
				rep, err := l.Verify(ctx, tenant, anchors...)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK || rep.FirstBad == nil {
					t.Fatalf("tampering not detected: %+v", rep)
				}
				if rep.FirstBad.Seq != tc.wantSeq || !strings.Contains(rep.FirstBad.Reason, tc.reason) {
					t.Fatalf("FirstBad = %+v, want seq %d and a reason with %q", *rep.FirstBad, tc.wantSeq, tc.reason)
				}
			})
		}
	})
}
