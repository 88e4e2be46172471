package pki

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meridian-platform/meridian/internal/store"
)

// DefaultKeyPrefix is where a Keyring keeps its data keys, its primary
// pointer and its named secrets.
const DefaultKeyPrefix = "/sys/keys/"

// CiphertextVersion is the first field of every ciphertext.
const CiphertextVersion = "v1"

// ErrUnknownKey is returned (wrapped) by Decrypt when a ciphertext names a
// data key the store does not hold.
var ErrUnknownKey = errors.New("pki: unknown data key")

// ErrDecrypt is returned (wrapped) when a ciphertext fails authentication:
// it was altered, or decrypted with the wrong associated data.
var ErrDecrypt = errors.New("pki: message authentication failed")

// Keyring does envelope encryption. Secrets are sealed with AES-256-GCM under
// a data key; every data key has an id, is wrapped by the master key and is
// kept in the store, and every ciphertext names the data key that sealed it:
//
//	v1:<data key id>:<base64url(nonce || sealed)>
//
// Rotate makes a new primary data key (older keys keep decrypting), and
// RewrapMaster re-wraps every data key under a new master key, so keys rotate
// without downtime. Several console processes may share one store: a
// ciphertext naming a data key this process has not seen yet makes it load
// that key from the store. A Keyring is safe for concurrent use.
type Keyring struct {
	st     store.Store
	prefix string

	mu       sync.RWMutex
	masterID string
	masters  map[string][]byte // by id: the current master and any previous ones
	keys     map[string]cipher.AEAD
	primary  string
	// primaryRev is the ModRevision of the pointer primary was read from
	// (or written at): the primary only moves to a newer pointer.
	primaryRev int64
	secrets    map[string][]byte

	// rotateMu serialises Rotate and RewrapMaster in this process, so a
	// key made during a rewrap is not left wrapped by the old master.
	rotateMu sync.Mutex

	loadMu sync.Mutex // serialises loads from the store
}

// KeyringOption changes how NewKeyring builds a Keyring.
type KeyringOption func(*Keyring)

// WithPreviousMasterKey lets the Keyring unwrap data keys still wrapped by
// an earlier master key, e.g. while another console finishes RewrapMaster.
func WithPreviousMasterKey(key []byte) KeyringOption {
	return func(k *Keyring) {
		if len(key) == MasterKeySize {
			k.masters[MasterKeyID(key)] = append([]byte(nil), key...)
		}
	}
}

// WithKeyPrefix stores the keys under prefix instead of DefaultKeyPrefix.
func WithKeyPrefix(prefix string) KeyringOption {
	return func(k *Keyring) {
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		k.prefix = prefix
	}
}

type dataKeyRecord struct {
	ID          string    `json:"id"`
	Created     time.Time `json:"created"`
	MasterKeyID string    `json:"masterKeyId"`
	// Wrapped is base64(nonce || AES-256-GCM(master, key)).
	Wrapped string `json:"wrapped"`
}

type primaryRecord struct {
	ID string `json:"id"`
}

// NewKeyring loads the data keys from st and unwraps them with master (whose
// id is masterID; pass "" to compute it with MasterKeyID). On an empty store
// it creates the first data key; when two consoles do that at once, one wins
// and the other loads the winner's key.
func NewKeyring(ctx context.Context, st store.Store, master []byte, masterID string, opts ...KeyringOption) (*Keyring, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("creating keyring: master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	if masterID == "" {
		masterID = MasterKeyID(master)
	}
	k := &Keyring{
		st:       st,
		prefix:   DefaultKeyPrefix,
		masterID: masterID,
		masters:  map[string][]byte{masterID: append([]byte(nil), master...)},
		keys:     map[string]cipher.AEAD{},
		secrets:  map[string][]byte{},
	}
	for _, o := range opts {
		o(k)
	}
	if err := k.Reload(ctx); err != nil {
		return nil, fmt.Errorf("creating keyring: %w", err)
	}
	if k.Primary() != "" {
		return k, nil
	}
	rec, aead, err := k.newDataKey()
	if err != nil {
		return nil, fmt.Errorf("creating keyring: %w", err)
	}
	recJSON, _ := json.Marshal(rec)
	primJSON, _ := json.Marshal(primaryRecord{ID: rec.ID})
	rev, err := st.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: k.primaryKey(), ModRevision: 0}, {Key: k.dataKey(rec.ID), ModRevision: 0}},
		Ops:      []store.Op{store.Put(k.dataKey(rec.ID), recJSON), store.Put(k.primaryKey(), primJSON)},
	})
	switch {
	case err == nil:
		k.mu.Lock()
		k.keys[rec.ID] = aead
		k.setPrimaryLocked(rec.ID, rev)
		k.mu.Unlock()
	case store.IsConflict(err):
		// Another console created the first key at the same time: use its.
		if err := k.Reload(ctx); err != nil {
			return nil, fmt.Errorf("creating keyring: %w", err)
		}
		if k.Primary() == "" {
			return nil, errors.New("creating keyring: lost the race to create the first data key but found none")
		}
	default:
		return nil, fmt.Errorf("creating keyring: storing first data key: %w", err)
	}
	return k, nil
}

func (k *Keyring) dataKey(id string) string { return k.prefix + "data/" + id }
func (k *Keyring) primaryKey() string       { return k.prefix + "primary" }
func (k *Keyring) secretKey(name string) string {
	return k.prefix + "secrets/" + name
}

// MasterKeyID returns the id of the master key the Keyring wraps with.
func (k *Keyring) MasterKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.masterID
}

// Primary returns the id of the data key new ciphertexts are sealed with.
func (k *Keyring) Primary() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.primary
}

// KeyIDs returns the ids of the data keys loaded so far, in no order.
func (k *Keyring) KeyIDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	return ids
}

// newDataKey makes a random data key wrapped by the current master key.
func (k *Keyring) newDataKey() (dataKeyRecord, cipher.AEAD, error) {
	var idb [8]byte
	rand.Read(idb[:])
	id := "dk-" + hex.EncodeToString(idb[:])
	raw := make([]byte, 32)
	rand.Read(raw)
	k.mu.RLock()
	master, masterID := k.masters[k.masterID], k.masterID
	k.mu.RUnlock()
	rec, err := wrapDataKey(id, raw, master, masterID)
	if err != nil {
		return dataKeyRecord{}, nil, err
	}
	aead, err := newGCM(raw)
	return rec, aead, err
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func wrapAAD(id string) []byte { return []byte("meridian/datakey/v1/" + id) }

func wrapDataKey(id string, raw, master []byte, masterID string) (dataKeyRecord, error) {
	g, err := newGCM(master)
	if err != nil {
		return dataKeyRecord{}, fmt.Errorf("wrapping data key %s: %w", id, err)
	}
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	sealed := g.Seal(nonce, nonce, raw, wrapAAD(id))
	return dataKeyRecord{ID: id, Created: time.Now().UTC(), MasterKeyID: masterID, Wrapped: base64.StdEncoding.EncodeToString(sealed)}, nil
}

// unwrap returns the raw data key of rec.
func (k *Keyring) unwrap(rec dataKeyRecord) ([]byte, error) {
	k.mu.RLock()
	master, ok := k.masters[rec.MasterKeyID]
	current := k.masterID
	k.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("data key %s is wrapped by master key %s, but this console has master key %s (consoles sharing a store need the same master key)", rec.ID, rec.MasterKeyID, current)
	}
	sealed, err := base64.StdEncoding.DecodeString(rec.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key %s: %w", rec.ID, err)
	}
	g, err := newGCM(master)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, fmt.Errorf("unwrapping data key %s: too short", rec.ID)
	}
	raw, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], wrapAAD(rec.ID))
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key %s with master key %s: %w", rec.ID, rec.MasterKeyID, ErrDecrypt)
	}
	return raw, nil
}

// Reload reads the primary pointer and every data key from the store. The
// Keyring calls it by itself when it meets an unknown key id; a console that
// shares its store with others may also call it when it sees a change under
// the key prefix, so that it encrypts with the latest primary key.
func (k *Keyring) Reload(ctx context.Context) error {
	k.loadMu.Lock()
	defer k.loadMu.Unlock()
	return k.reload(ctx)
}

// errPrimaryMissing marks a read where the primary pointer names a data key
// the same read did not find (the store holds a pointer without its key).
var errPrimaryMissing = errors.New("primary data key is missing from the store")

// reload reads the data keys and the primary pointer at ONE revision: the
// revision the first page of data keys was read at, as the store reports it.
// (A revision taken beforehand with Store.Revision is no pin: on an empty
// store it is 0, which ListOptions reads as "current", so a key and pointer
// written between the two reads showed the pointer without its key.)
func (k *Keyring) reload(ctx context.Context) error {
	keys := map[string]cipher.AEAD{}
	opts := store.ListOptions{Limit: 500}
	var rev int64
	for {
		res, err := k.st.List(ctx, k.prefix+"data/", opts)
		if err != nil {
			return fmt.Errorf("loading data keys: %w", err)
		}
		rev = res.Revision
		for _, kv := range res.Items {
			aead, id, err := k.parseDataKey(kv.Value)
			if err != nil {
				return fmt.Errorf("loading data key %s: %w", kv.Key, err)
			}
			keys[id] = aead
		}
		if !res.More || len(res.Items) == 0 {
			break
		}
		opts.After, opts.Revision = res.Items[len(res.Items)-1].Key, res.Revision
	}
	// At revision 0 the store was empty: no pointer either (and 0 cannot
	// be passed on, it would read the current revision).
	var primary string
	var primaryRev int64
	if rev > 0 {
		var err error
		if primary, primaryRev, err = k.readPrimaryAt(ctx, rev); err != nil {
			return err
		}
	}
	if primary != "" {
		if _, ok := keys[primary]; !ok {
			return fmt.Errorf("loading data keys at revision %d: %s: %w", rev, primary, errPrimaryMissing)
		}
	}
	k.mu.Lock()
	for id, a := range keys {
		k.keys[id] = a
	}
	k.setPrimaryLocked(primary, primaryRev)
	k.mu.Unlock()
	return nil
}

// setPrimaryLocked makes id the primary if the pointer it was read from
// (at ModRevision rev) is not older than the one the current primary came
// from: a reload that read an older revision while Rotate (or another
// reload) moved the pointer on must not move it back. k.mu is held.
func (k *Keyring) setPrimaryLocked(id string, rev int64) {
	if id == "" || rev < k.primaryRev {
		return
	}
	k.primary, k.primaryRev = id, rev
}

// readPrimary reads the primary pointer and its ModRevision.
func (k *Keyring) readPrimary(ctx context.Context) (string, int64, error) {
	kv, err := k.st.Get(ctx, k.primaryKey())
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("loading primary data key: %w", err)
	}
	id, err := parsePrimary(kv.Value)
	return id, kv.ModRevision, err
}

// readPrimaryAt reads the primary pointer (and its ModRevision) at store
// revision rev (> 0).
func (k *Keyring) readPrimaryAt(ctx context.Context, rev int64) (string, int64, error) {
	res, err := k.st.List(ctx, k.primaryKey(), store.ListOptions{Revision: rev, Limit: 1})
	if err != nil {
		return "", 0, fmt.Errorf("loading primary data key: %w", err)
	}
	if len(res.Items) == 0 || res.Items[0].Key != k.primaryKey() {
		return "", 0, nil
	}
	id, err := parsePrimary(res.Items[0].Value)
	return id, res.Items[0].ModRevision, err
}

func parsePrimary(value []byte) (string, error) {
	var p primaryRecord
	if err := json.Unmarshal(value, &p); err != nil || p.ID == "" {
		return "", fmt.Errorf("loading primary data key: malformed record %q", value)
	}
	return p.ID, nil
}

func (k *Keyring) parseDataKey(b []byte) (cipher.AEAD, string, error) {
	var rec dataKeyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, "", err
	}
	raw, err := k.unwrap(rec)
	if err != nil {
		return nil, "", err
	}
	aead, err := newGCM(raw)
	return aead, rec.ID, err
}

// loadKey fetches one data key by id from the store (used when a ciphertext
// names a key another console created).
func (k *Keyring) loadKey(ctx context.Context, id string) (cipher.AEAD, error) {
	k.loadMu.Lock()
	defer k.loadMu.Unlock()
	k.mu.RLock()
	aead, ok := k.keys[id]
	k.mu.RUnlock()
	if ok {
		return aead, nil
	}
	kv, err := k.st.Get(ctx, k.dataKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("data key %s: %w", id, ErrUnknownKey)
	}
	if err != nil {
		return nil, fmt.Errorf("loading data key %s: %w", id, err)
	}
	aead, gotID, err := k.parseDataKey(kv.Value)
	if err != nil {
		return nil, fmt.Errorf("loading data key %s: %w", id, err)
	}
	if gotID != id {
		return nil, fmt.Errorf("loading data key %s: record names key %s", id, gotID)
	}
	primary, primaryRev, err := k.readPrimary(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.keys[id] = aead
	if _, ok := k.keys[primary]; ok {
		k.setPrimaryLocked(primary, primaryRev)
	}
	k.mu.Unlock()
	return aead, nil
}

func sealAAD(id string, aad []byte) []byte {
	b := make([]byte, 0, len(CiphertextVersion)+len(id)+2+len(aad))
	b = append(b, CiphertextVersion...)
	b = append(b, ':')
	b = append(b, id...)
	b = append(b, ':')
	return append(b, aad...)
}

// Encrypt seals plaintext under the primary data key. aad (associated data,
// e.g. the object's tenant, kind, namespace, name and field path) is
// authenticated but not stored: Decrypt must be given the same aad, so a
// ciphertext cannot be moved to another object.
func (k *Keyring) Encrypt(plaintext, aad []byte) (string, error) {
	k.mu.RLock()
	id := k.primary
	aead := k.keys[id]
	k.mu.RUnlock()
	if aead == nil {
		return "", errors.New("encrypting: keyring has no primary data key")
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plaintext, sealAAD(id, aad))
	return CiphertextVersion + ":" + id + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// ParseCiphertext splits a ciphertext into its data key id and sealed bytes.
func ParseCiphertext(ct string) (keyID string, sealed []byte, err error) {
	ver, rest, ok := strings.Cut(ct, ":")
	if !ok || ver != CiphertextVersion {
		return "", nil, fmt.Errorf("pki: ciphertext is not in %s format", CiphertextVersion)
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return "", nil, errors.New("pki: ciphertext has no data key id")
	}
	sealed, err = base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return "", nil, fmt.Errorf("pki: ciphertext body: %w", err)
	}
	return id, sealed, nil
}

// IsCiphertext reports whether s looks like a ciphertext made by Encrypt.
func IsCiphertext(s string) bool {
	_, _, err := ParseCiphertext(s)
	return err == nil
}

// Decrypt opens a ciphertext made by Encrypt (by this or another console
// sharing the store) with the same aad.
func (k *Keyring) Decrypt(ct string, aad []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return k.DecryptContext(ctx, ct, aad)
}

// DecryptContext is Decrypt with a context for the store read it may need.
func (k *Keyring) DecryptContext(ctx context.Context, ct string, aad []byte) ([]byte, error) {
	id, sealed, err := ParseCiphertext(ct)
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	k.mu.RLock()
	aead := k.keys[id]
	k.mu.RUnlock()
	if aead == nil {
		if aead, err = k.loadKey(ctx, id); err != nil {
			return nil, fmt.Errorf("decrypting: %w", err)
		}
	}
	if len(sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("decrypting with data key %s: ciphertext too short", id)
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], sealAAD(id, aad))
	if err != nil {
		return nil, fmt.Errorf("decrypting with data key %s: %w", id, ErrDecrypt)
	}
	return pt, nil
}

// Reencrypt rewrites ct under the current primary data key. It returns ct
// unchanged (and changed=false) when ct is already sealed with the primary.
func (k *Keyring) Reencrypt(ct string, aad []byte) (out string, changed bool, err error) {
	id, _, err := ParseCiphertext(ct)
	if err != nil {
		return "", false, fmt.Errorf("re-encrypting: %w", err)
	}
	if id == k.Primary() {
		return ct, false, nil
	}
	pt, err := k.Decrypt(ct, aad)
	if err != nil {
		return "", false, fmt.Errorf("re-encrypting: %w", err)
	}
	out, err = k.Encrypt(pt, aad)
	if err != nil {
		return "", false, fmt.Errorf("re-encrypting: %w", err)
	}
	return out, true, nil
}

// Rotate creates a new data key and makes it the primary; the older keys
// stay in the store and keep decrypting. It returns the new primary's id.
// When another console rotates at the same moment, Rotate adopts its key.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	k.rotateMu.Lock()
	defer k.rotateMu.Unlock()
	kv, err := k.st.Get(ctx, k.primaryKey())
	if err != nil {
		return "", fmt.Errorf("rotating data key: reading primary: %w", err)
	}
	rec, aead, err := k.newDataKey()
	if err != nil {
		return "", fmt.Errorf("rotating data key: %w", err)
	}
	recJSON, _ := json.Marshal(rec)
	primJSON, _ := json.Marshal(primaryRecord{ID: rec.ID})
	rev, err := k.st.Txn(ctx, store.Txn{
		Compares: []store.Compare{{Key: k.primaryKey(), ModRevision: kv.ModRevision}, {Key: k.dataKey(rec.ID), ModRevision: 0}},
		Ops:      []store.Op{store.Put(k.dataKey(rec.ID), recJSON), store.Put(k.primaryKey(), primJSON)},
	})
	if store.IsConflict(err) {
		if err := k.Reload(ctx); err != nil {
			return "", fmt.Errorf("rotating data key: %w", err)
		}
		return k.Primary(), nil
	}
	if err != nil {
		return "", fmt.Errorf("rotating data key: %w", err)
	}
	k.mu.Lock()
	k.keys[rec.ID] = aead
	k.setPrimaryLocked(rec.ID, rev)
	k.mu.Unlock()
	return rec.ID, nil
}

// rewrapBatch bounds the writes of one transaction (etcd allows 128 ops).
const rewrapBatch = 64

// RewrapMaster re-wraps every data key in the store under newMaster and then
// uses newMaster from here on; the previous master stays known to this
// Keyring so that keys another console wraps in the meantime still open.
// Ciphertexts do not change. Other consoles sharing the store must be
// restarted with the new master key (or given it with
// WithPreviousMasterKey during the switch). It returns the new master's id.
func (k *Keyring) RewrapMaster(ctx context.Context, newMaster []byte) (string, error) {
	if len(newMaster) != MasterKeySize {
		return "", fmt.Errorf("rewrapping data keys: master key must be %d bytes", MasterKeySize)
	}
	newID := MasterKeyID(newMaster)
	k.rotateMu.Lock()
	defer k.rotateMu.Unlock()
	k.mu.Lock()
	k.masters[newID] = append([]byte(nil), newMaster...)
	k.mu.Unlock()
	// Passes go on until one finds nothing left to rewrap: a key another
	// console made (under the old master) while a pass ran is caught by
	// the next one.
	for attempt, quiet := 0, false; !quiet; attempt++ {
		n, err := k.rewrapAll(ctx, newMaster, newID)
		switch {
		case err == nil:
			quiet = n == 0
		case !store.IsConflict(err):
			return "", fmt.Errorf("rewrapping data keys under master key %s: %w", newID, err)
		}
		if !quiet && attempt >= 8 {
			return "", fmt.Errorf("rewrapping data keys under master key %s: keys kept changing (last pass: %d rewrapped, %v)", newID, n, err)
		}
	}
	k.mu.Lock()
	k.masterID = newID
	k.mu.Unlock()
	return newID, nil
}

// rewrapAll rewraps every data key not yet under newID and returns how many
// it rewrapped.
func (k *Keyring) rewrapAll(ctx context.Context, newMaster []byte, newID string) (int, error) {
	n := 0
	var cmps []store.Compare
	var ops []store.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := k.st.Txn(ctx, store.Txn{Compares: cmps, Ops: ops})
		if err == nil {
			n += len(ops)
		}
		cmps, ops = nil, nil
		return err
	}
	opts := store.ListOptions{Limit: rewrapBatch}
	for {
		res, err := k.st.List(ctx, k.prefix+"data/", opts)
		if err != nil {
			return n, err
		}
		for _, kv := range res.Items {
			var rec dataKeyRecord
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				return n, fmt.Errorf("data key %s: %w", kv.Key, err)
			}
			if rec.MasterKeyID == newID {
				continue
			}
			raw, err := k.unwrap(rec)
			if err != nil {
				return n, err
			}
			nrec, err := wrapDataKey(rec.ID, raw, newMaster, newID)
			if err != nil {
				return n, err
			}
			nrec.Created = rec.Created
			b, _ := json.Marshal(nrec)
			cmps = append(cmps, store.Compare{Key: kv.Key, ModRevision: kv.ModRevision})
			ops = append(ops, store.Put(kv.Key, b))
		}
		if err := flush(); err != nil {
			return n, err
		}
		if !res.More || len(res.Items) == 0 {
			return n, nil
		}
		// Later pages are read at the current revision: the batches just
		// written are past them and are skipped as already rewrapped.
		opts = store.ListOptions{Limit: rewrapBatch, After: res.Items[len(res.Items)-1].Key}
	}
}

// Secret returns the named random secret of size bytes, creating it on first
// use. Secrets (e.g. HMAC and signing keys of the audit log) are kept in the
// store encrypted by the Keyring and cached in memory; when two consoles
// create the same secret at once, both end up with the winner's.
func (k *Keyring) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, "\x00") || size <= 0 || size > 1024 {
		return nil, fmt.Errorf("secret %q: invalid name or size %d", name, size)
	}
	k.mu.RLock()
	s, ok := k.secrets[name]
	k.mu.RUnlock()
	if ok {
		if len(s) != size {
			return nil, fmt.Errorf("secret %q has %d bytes, %d requested", name, len(s), size)
		}
		return s, nil
	}
	aad := []byte("meridian/secret/" + name)
	for attempt := 0; attempt < 3; attempt++ {
		kv, err := k.st.Get(ctx, k.secretKey(name))
		if err == nil {
			s, err = k.DecryptContext(ctx, string(kv.Value), aad)
			if err != nil {
				return nil, fmt.Errorf("secret %q: %w", name, err)
			}
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("secret %q: %w", name, err)
		}
		fresh := make([]byte, size)
		rand.Read(fresh)
		ct, err := k.Encrypt(fresh, aad)
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", name, err)
		}
		_, err = k.st.Txn(ctx, store.Txn{
			Compares: []store.Compare{{Key: k.secretKey(name), ModRevision: 0}},
			Ops:      []store.Op{store.Put(k.secretKey(name), []byte(ct))},
		})
		if err == nil {
			s = fresh
			break
		}
		if !store.IsConflict(err) {
			return nil, fmt.Errorf("secret %q: storing: %w", name, err)
		}
	}
	if s == nil {
		return nil, fmt.Errorf("secret %q: could not create or load", name)
	}
	if len(s) != size {
		return nil, fmt.Errorf("secret %q has %d bytes, %d requested", name, len(s), size)
	}
	k.mu.Lock()
	k.secrets[name] = s
	k.mu.Unlock()
	return s, nil
}
