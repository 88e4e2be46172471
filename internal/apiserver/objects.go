package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/store"
	"sigs.k8s.io/yaml"
)

// maxTxnRetries bounds internal retries of a write whose transaction failed
// on a key the client did not pin (a referenced object, the namespace, the
// audit chain head).
const maxTxnRetries = 16

// serveObjects handles every object URL.
func (s *Server) serveObjects(w http.ResponseWriter, r *http.Request, rc *reqCtx, t target) error {
	q := r.URL.Query()
	verb := ""
	switch r.Method {
	case http.MethodGet:
		switch {
		case t.name == "" && isTrue(q.Get("watch")):
			verb = "watch"
		case t.name == "":
			verb = "list"
		default:
			verb = "get"
		}
	case http.MethodPost:
		switch {
		case t.name == "" && !t.allNamespaces:
			verb = "create"
		case t.sub == "rollback":
			verb = "update"
		}
	case http.MethodPut:
		if t.name != "" && t.sub == "" {
			verb = "update"
		}
	case http.MethodPatch:
		if t.name != "" && t.sub == "" {
			verb = "patch"
		}
	case http.MethodDelete:
		if t.name != "" && t.sub == "" {
			verb = "delete"
		}
	}
	if verb == "" || (t.sub == "history" && r.Method != http.MethodGet) || (t.sub == "rollback" && r.Method != http.MethodPost) {
		return errMethod(r.Method, r.URL.Path)
	}
	tenant := rc.Tenant
	if t.info.Scope == v1.ScopeSystem {
		if rc.Tenant != SystemTenant {
			err := errForbidden("%s objects are managed by the system tenant only", t.info.Kind)
			s.noteDenial(r.Context(), r, rc, verb, t.info.Kind, t.namespace, err)
			return err
		}
	}
	authzNS := t.namespace
	if t.info.Kind == "Namespace" {
		// Bindings limited to a namespace may read that namespace.
		authzNS = t.name
	}
	if t.allNamespaces {
		f, err := s.authorizeAcross(r.Context(), r, rc, verb, t.info.Kind)
		if err != nil {
			return err
		}
		t.nsFilter = f
	} else if err := s.authorize(r.Context(), r, rc, verb, t.info.Kind, authzNS); err != nil {
		return err
	}
	dryRun, err := parseDryRun(q)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ref := objRef{Plural: t.info.Plural, Namespace: t.namespace, Name: t.name}
	switch verb {
	case "get":
		if t.sub == "history" {
			return s.handleHistory(ctx, w, tenant, t.info, ref)
		}
		if t.sub != "" {
			return s.serveSubresource(ctx, w, r, tenant, t, ref)
		}
		obj, _, err := s.getObject(ctx, tenant, t.info, ref)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, obj)
		return nil
	case "list":
		return s.handleList(ctx, w, r, tenant, t)
	case "watch":
		return s.handleWatch(ctx, w, r, tenant, t)
	case "create":
		body, err := s.readObjectBody(r)
		if err != nil {
			return err
		}
		obj, err := s.decodeBody(body, t.info)
		if err != nil {
			return err
		}
		out, err := s.create(ctx, rc, t, obj, dryRun)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, out)
		return nil
	case "update":
		if t.sub == "rollback" {
			return s.handleRollback(ctx, w, r, rc, t, ref, dryRun)
		}
		body, err := s.readObjectBody(r)
		if err != nil {
			return err
		}
		obj, err := s.decodeBody(body, t.info)
		if err != nil {
			return err
		}
		out, err := s.update(ctx, rc, t, ref, "update", func(_ v1.Object) (v1.Object, error) { return obj, nil }, nil, dryRun)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	case "patch":
		body, err := s.readBody(r, true)
		if err != nil {
			return err
		}
		var patch any
		if err := json.Unmarshal(body, &patch); err != nil {
			return errBadRequest("decoding merge patch: %v", err)
		}
		if _, ok := patch.(map[string]any); !ok {
			return errBadRequest("a merge patch must be a JSON object")
		}
		out, err := s.update(ctx, rc, t, ref, "patch", func(cur v1.Object) (v1.Object, error) {
			s.redact(t.info, cur)
			curJSON, err := json.Marshal(cur)
			if err != nil {
				return nil, err
			}
			var doc any
			if err := json.Unmarshal(curJSON, &doc); err != nil {
				return nil, err
			}
			merged := mergePatch(doc, patch)
			b, err := json.Marshal(merged)
			if err != nil {
				return nil, err
			}
			return s.decodeBody(b, t.info)
		}, nil, dryRun)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	case "delete":
		out, err := s.delete(ctx, rc, t, ref, isTrue(q.Get("cascade")), dryRun)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	return errMethod(r.Method, r.URL.Path)
}

func isTrue(v string) bool { return v == "true" || v == "1" }

func parseDryRun(q map[string][]string) (bool, error) {
	vals := q["dryRun"]
	if len(vals) == 0 {
		return false, nil
	}
	for _, v := range vals {
		switch v {
		case "All", "all", "true":
		case "false", "":
			return false, nil
		default:
			return false, errBadRequest("unsupported dryRun value %q: use All or true", v)
		}
	}
	return true, nil
}

// readObjectBody reads an object (JSON or YAML, which the strict decoder
// reads with line numbers).
func (s *Server) readObjectBody(r *http.Request) ([]byte, error) {
	return s.readBodyAs(r, false, false)
}

// readBody reads a request body within the size limit after checking its
// Content-Type. YAML bodies are converted to JSON.
func (s *Server) readBody(r *http.Request, patch bool) ([]byte, error) {
	return s.readBodyAs(r, patch, true)
}

func (s *Server) readBodyAs(r *http.Request, patch, convertYAML bool) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt := "application/json"
	if ct != "" {
		var err error
		mt, _, err = mime.ParseMediaType(ct)
		if err != nil {
			return nil, newErr(http.StatusUnsupportedMediaType, v1.StatusReasonUnsupportedMediaType, "invalid Content-Type %q: %v", ct, err)
		}
	}
	isYAML := false
	switch {
	case patch && (mt == "application/merge-patch+json" || mt == "application/json"):
	case !patch && mt == "application/json":
	case !patch && (mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml"):
		isYAML = true
	default:
		want := "application/json or application/yaml"
		if patch {
			want = "application/merge-patch+json"
		}
		return nil, newErr(http.StatusUnsupportedMediaType, v1.StatusReasonUnsupportedMediaType, "unsupported Content-Type %q: use %s", mt, want)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxBodyBytes+1))
	if err != nil {
		return nil, errBadRequest("reading request body: %v", err)
	}
	if int64(len(body)) > s.opts.MaxBodyBytes {
		return nil, newErr(http.StatusRequestEntityTooLarge, v1.StatusReasonRequestEntityTooLarge, "request body is larger than %d bytes", s.opts.MaxBodyBytes)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, errBadRequest("request body is empty")
	}
	if isYAML && convertYAML {
		j, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, errBadRequest("decoding YAML body: %v", err)
		}
		body = j
	}
	return body, nil
}

// decodeBody decodes a client object strictly and checks its kind.
func (s *Server) decodeBody(body []byte, info v1.KindInfo) (v1.Object, error) {
	obj, err := v1.Decode(body)
	if err != nil {
		var fe v1.FieldErrors
		if errors.As(err, &fe) && len(fe) > 0 {
			return nil, errInvalid(info.Kind, "", fe)
		}
		var one v1.FieldError
		if errors.As(err, &one) {
			return nil, errInvalid(info.Kind, "", v1.FieldErrors{one})
		}
		return nil, errBadRequest("decoding %s: %v", info.Kind, err)
	}
	tm := obj.GetTypeMeta()
	if tm.Kind != info.Kind {
		return nil, errBadRequest("body has kind %q but the URL is for %s", tm.Kind, info.Kind)
	}
	return obj, nil
}

// getObject reads and presents one object.
func (s *Server) getObject(ctx context.Context, tenant string, info v1.KindInfo, ref objRef) (v1.Object, store.KV, error) {
	obj, kv, err := s.loadObject(ctx, tenant, info, ref)
	if err != nil {
		return nil, kv, err
	}
	s.redact(info, obj)
	return obj, kv, nil
}

// loadObject reads one object as stored (secrets sealed).
func (s *Server) loadObject(ctx context.Context, tenant string, info v1.KindInfo, ref objRef) (v1.Object, store.KV, error) {
	kv, err := s.st.Get(ctx, objKey(tenant, ref))
	if errors.Is(err, store.ErrNotFound) {
		return nil, kv, errNotFound(info.Kind, ref.Name)
	}
	if err != nil {
		return nil, kv, errInternal(fmt.Errorf("reading %s %q: %w", info.Kind, ref.Name, err))
	}
	obj, err := s.decodeStored(info, kv)
	return obj, kv, err
}

// decodeStored decodes a stored object and sets its resourceVersion.
func (s *Server) decodeStored(info v1.KindInfo, kv store.KV) (v1.Object, error) {
	obj := info.New()
	if err := json.Unmarshal(kv.Value, obj); err != nil {
		return nil, errInternal(fmt.Errorf("decoding stored %s at %q: %w", info.Kind, kv.Key, err))
	}
	obj.GetMetadata().ResourceVersion = strconv.FormatInt(kv.ModRevision, 10)
	return obj, nil
}

// normalize applies the URL's namespace and name to a client object and
// drops every field a client may not set.
func normalize(info v1.KindInfo, t target, obj v1.Object) error {
	md := obj.GetMetadata()
	tm := obj.GetTypeMeta()
	if tm.APIVersion != v1.APIVersion {
		return errBadRequest("unsupported apiVersion %q: use %q", tm.APIVersion, v1.APIVersion)
	}
	if info.Scope == v1.ScopeNamespaced {
		if md.Namespace == "" {
			md.Namespace = t.namespace
		} else if md.Namespace != t.namespace {
			return errBadRequest("the namespace of the object (%q) does not match the namespace of the URL (%q)", md.Namespace, t.namespace)
		}
	} else if md.Namespace != "" {
		return errBadRequest("%s is not namespaced: metadata.namespace must be empty", info.Kind)
	}
	if t.name != "" {
		if md.Name == "" {
			md.Name = t.name
		} else if md.Name != t.name {
			return errBadRequest("the name of the object (%q) does not match the name in the URL (%q)", md.Name, t.name)
		}
	}
	md.UID = ""
	md.Generation = 0
	md.CreationTimestamp = nil
	md.Tenant = ""
	resetStatus(obj)
	return nil
}

// resetStatus zeroes the Status field of a kind, if it has one.
func resetStatus(obj v1.Object) {
	if f := statusField(obj); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

func statusField(obj v1.Object) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName("Status")
}

func copyStatus(dst, src v1.Object) {
	d, sv := statusField(dst), statusField(src)
	if d.IsValid() && sv.IsValid() && d.CanSet() && d.Type() == sv.Type() {
		d.Set(sv)
	}
}

// specJSON is the JSON of an object's spec, to tell spec changes from
// metadata-only ones.
func specJSON(obj v1.Object) []byte {
	v := reflect.ValueOf(obj)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	f := v.FieldByName("Spec")
	if !f.IsValid() {
		return nil
	}
	b, _ := json.Marshal(f.Interface())
	return b
}

func setSpec(dst, src v1.Object) {
	d := reflect.ValueOf(dst).Elem().FieldByName("Spec")
	sv := reflect.ValueOf(src).Elem().FieldByName("Spec")
	if d.IsValid() && sv.IsValid() && d.CanSet() && d.Type() == sv.Type() {
		d.Set(sv)
	}
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// admit defaults and validates obj (with plaintext or redacted secrets).
func (s *Server) admit(info v1.KindInfo, obj v1.Object) error {
	v1.DefaultObject(obj)
	if errs := v1.ValidateObject(obj); len(errs) > 0 {
		return errInvalid(info.Kind, obj.GetMetadata().Name, errs)
	}
	return nil
}

// writePlan is one write being assembled into a transaction.
type writePlan struct {
	rc        *reqCtx
	verb      string
	info      v1.KindInfo
	tenant    string
	ref       objRef
	obj       v1.Object // new object (sealed), nil for delete
	stored    []byte    // obj as stored (for the audit digest)
	old       v1.Object // stored object (sealed), nil for create
	oldKV     store.KV
	objCmp    int64 // compare on the object key
	pinned    bool  // objCmp came from the client (conflict goes back to it)
	txn       store.Txn
	respond   func() any // extra response decoration (APIToken token)
	note      string     // added to the audit record
	auditOnly bool       // the audit record names no object state (login)
}

func (p *writePlan) put(key string, v []byte) { p.txn.Ops = append(p.txn.Ops, store.Put(key, v)) }
func (p *writePlan) del(key string)           { p.txn.Ops = append(p.txn.Ops, store.Delete(key)) }
func (p *writePlan) cmp(key string, rev int64) {
	for _, c := range p.txn.Compares {
		if c.Key == key {
			return
		}
	}
	p.txn.Compares = append(p.txn.Compares, store.Compare{Key: key, ModRevision: rev})
}

// create stores a new object.
func (s *Server) create(ctx context.Context, rc *reqCtx, t target, obj v1.Object, dryRun bool) (any, error) {
	info := t.info
	if err := normalize(info, t, obj); err != nil {
		return nil, err
	}
	if err := s.admit(info, obj); err != nil {
		return nil, err
	}
	md := obj.GetMetadata()
	ref := objRef{Plural: info.Plural, Namespace: md.Namespace, Name: md.Name}
	tenant := s.storageTenant(rc, info)
	client, err := json.Marshal(obj)
	if err != nil {
		return nil, errInternal(err)
	}
	return s.retryWrite(ctx, tenant, info.Kind, ref, func() (any, error) {
		fresh := info.New()
		if err := json.Unmarshal(client, fresh); err != nil {
			return nil, errInternal(err)
		}
		p := &writePlan{rc: rc, verb: "create", info: info, tenant: tenant, ref: ref, obj: fresh}
		if _, err := s.st.Get(ctx, objKey(tenant, ref)); err == nil {
			return nil, errAlreadyExists(info.Kind, ref.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, errInternal(err)
		}
		fm := fresh.GetMetadata()
		fm.UID = newUID()
		now := s.now().UTC().Truncate(time.Second)
		fm.CreationTimestamp = &now
		fm.Tenant = tenant
		fm.Generation = 1
		fm.ResourceVersion = ""
		if err := s.planWrite(ctx, p, dryRun); err != nil {
			return nil, err
		}
		return s.commit(ctx, p, dryRun)
	})
}

var errRetry = errors.New("apiserver: retry transaction")

// writeLocks serialises the writes of one object inside this process, so
// that concurrent writes of an object (a patch without resourceVersion, a
// login) wait for each other instead of conflicting and retrying. Writes of
// different objects of a tenant run concurrently and meet in the tenant's
// group commit. Other consoles sharing the store still conflict now and
// then; retryWrite handles that.
type writeLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int // holders and waiters; the entry goes when it drops to 0
}

func (l *writeLocks) lock(key string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}

// retryWrite runs attempt under the object's write lock, again while it
// asks for a retry (a compare failed on a key the client did not pin).
func (s *Server) retryWrite(ctx context.Context, tenant, kind string, ref objRef, attempt func() (any, error)) (any, error) {
	for i := 0; ; i++ {
		unlock := s.locks.lock(objKey(tenant, ref))
		out, err := attempt()
		unlock()
		if err != errRetry {
			return out, err
		}
		if i >= maxTxnRetries {
			return nil, errConflict(kind, ref.Name, "could not write %s %q: concurrent changes kept conflicting; try again", kind, ref.Name)
		}
		select {
		case <-ctx.Done():
			return nil, errInternal(fmt.Errorf("writing %s %q: %w", kind, ref.Name, ctx.Err()))
		case <-time.After(time.Duration(1+mathrand.IntN(1<<min(i, 6))) * time.Millisecond):
		}
	}
}

// update replaces an object with the result of build(current). keepFrom,
// when set, supplies sealed secrets for redacted values instead of the
// current object (rollback).
func (s *Server) update(ctx context.Context, rc *reqCtx, t target, ref objRef, verb string,
	build func(cur v1.Object) (v1.Object, error), keepFrom v1.Object, dryRun bool) (any, error) {
	info := t.info
	tenant := s.storageTenant(rc, info)
	return s.retryWrite(ctx, tenant, info.Kind, ref, func() (any, error) {
		cur, kv, err := s.loadObject(ctx, tenant, info, ref)
		if err != nil {
			return nil, err
		}
		curCopy := info.New()
		if err := json.Unmarshal(kv.Value, curCopy); err != nil {
			return nil, errInternal(err)
		}
		curCopy.GetMetadata().ResourceVersion = cur.GetMetadata().ResourceVersion
		obj, err := build(curCopy)
		if err != nil {
			return nil, err
		}
		clientRV := obj.GetMetadata().ResourceVersion
		if verb == "patch" {
			// A patch that does not name a resourceVersion applies to
			// what was read; one that does pins it.
			clientRV = ""
			if rv := obj.GetMetadata().ResourceVersion; rv != cur.GetMetadata().ResourceVersion {
				clientRV = rv
			}
		}
		if err := normalize(info, t, obj); err != nil {
			return nil, err
		}
		if err := s.admit(info, obj); err != nil {
			return nil, err
		}
		p := &writePlan{rc: rc, verb: verb, info: info, tenant: tenant, ref: ref, obj: obj, old: cur, oldKV: kv, objCmp: kv.ModRevision}
		if clientRV != "" {
			want, err := strconv.ParseInt(clientRV, 10, 64)
			if err != nil || want <= 0 {
				return nil, errBadRequest("invalid metadata.resourceVersion %q", clientRV)
			}
			p.objCmp, p.pinned = want, true
			if want != kv.ModRevision {
				return nil, conflictOn(info, ref)
			}
		}
		md := obj.GetMetadata()
		om := cur.GetMetadata()
		md.UID, md.CreationTimestamp, md.Tenant = om.UID, om.CreationTimestamp, om.Tenant
		copyStatus(obj, cur)
		if keepFrom == nil {
			keepFrom = cur
		}
		p.old = cur
		if err := s.sealSecrets(ctx, p, keepFrom); err != nil {
			return nil, err
		}
		md.Generation = om.Generation
		if string(specJSON(obj)) != string(specJSON(cur)) {
			md.Generation++
		}
		md.ResourceVersion = ""
		if err := s.planWrite(ctx, p, dryRun); err != nil {
			return nil, err
		}
		return s.commit(ctx, p, dryRun)
	})
}

func conflictOn(info v1.KindInfo, ref objRef) error {
	return errConflict(info.Kind, ref.Name, "Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", info.Plural, ref.Name)
}

// storageTenant is where objects of a kind live for this request.
func (s *Server) storageTenant(rc *reqCtx, info v1.KindInfo) string {
	if info.Scope == v1.ScopeSystem {
		return SystemTenant
	}
	return rc.Tenant
}

// planWrite adds everything a put of p.obj needs to the transaction:
// secrets (create), kind admission, namespace and reference checks,
// reverse-reference index, history and the object itself.
func (s *Server) planWrite(ctx context.Context, p *writePlan, dryRun bool) error {
	if p.old == nil {
		if err := s.sealSecrets(ctx, p, nil); err != nil {
			return err
		}
	}
	if err := s.admitKind(ctx, p, dryRun); err != nil {
		return err
	}
	md := p.obj.GetMetadata()
	if p.info.Scope == v1.ScopeNamespaced {
		nsRef := objRef{Plural: s.byKind["Namespace"].Plural, Name: md.Namespace}
		kv, err := s.st.Get(ctx, objKey(p.tenant, nsRef))
		if errors.Is(err, store.ErrNotFound) {
			return errNamespaceNotFound(md.Namespace)
		}
		if err != nil {
			return errInternal(err)
		}
		p.cmp(kv.Key, kv.ModRevision)
		if p.old == nil {
			// A new object in the namespace: a concurrent namespace
			// delete that compared the guard will retry and see it.
			p.put(guardKey(p.tenant, nsRef), []byte(p.ref.suffix()))
		}
	}
	if err := s.planRefs(ctx, p); err != nil {
		return err
	}
	val, err := json.Marshal(p.obj)
	if err != nil {
		return errInternal(fmt.Errorf("encoding %s %q: %w", p.info.Kind, md.Name, err))
	}
	p.stored = val
	key := objKey(p.tenant, p.ref)
	p.cmp(key, p.objCmp)
	p.put(key, val)
	// History: the entry of the current generation always holds its latest
	// state; generations older than the limit are dropped.
	p.put(historyKey(p.tenant, p.ref, md.Generation), val)
	if old := md.Generation - int64(s.opts.HistoryLimit); old > 0 {
		p.del(historyKey(p.tenant, p.ref, old))
	}
	return nil
}

// refValue is stored in the reverse-reference index.
type refValue struct {
	Kind  string `json:"kind"`
	Field string `json:"field"`
}

// planRefs checks that every reference of p.obj resolves, pins the targets
// in the transaction and maintains the reverse index.
func (s *Server) planRefs(ctx context.Context, p *writePlan) error {
	newRefs, err := s.refsOf(p.obj)
	if err != nil {
		return err
	}
	oldRefs := map[objRef]string{} // target -> field of the first reference
	if p.old != nil {
		olds, err := s.refsOf(p.old)
		if err != nil {
			return err
		}
		for _, r := range olds {
			if _, ok := oldRefs[r.target]; !ok {
				oldRefs[r.target] = r.field
			}
		}
	}
	var causes v1.FieldErrors
	seen := map[objRef]bool{}
	for _, r := range newRefs {
		if r.target == p.ref {
			continue
		}
		if seen[r.target] {
			continue
		}
		kv, err := s.st.Get(ctx, objKey(p.tenant, r.target))
		if errors.Is(err, store.ErrNotFound) {
			msg := fmt.Sprintf("%s %q not found", r.kind, r.target.Name)
			if r.target.Namespace != "" {
				msg += fmt.Sprintf(" in namespace %q", r.target.Namespace)
			}
			causes = append(causes, v1.FieldError{Field: r.field, Reason: v1.ReasonNotFound, Message: msg})
			continue
		}
		if err != nil {
			return errInternal(err)
		}
		seen[r.target] = true
		p.cmp(kv.Key, kv.ModRevision)
		// Index entries are written only when they change, so that an
		// update stays a small transaction.
		oldField, had := oldRefs[r.target]
		if !had || oldField != r.field {
			rv, _ := json.Marshal(refValue{Kind: p.info.Kind, Field: r.field})
			p.put(refKey(p.tenant, r.target, p.ref), rv)
		}
		if !had {
			p.put(guardKey(p.tenant, r.target), []byte(p.ref.suffix()))
		}
	}
	if len(causes) > 0 {
		return errInvalid(p.info.Kind, p.ref.Name, causes)
	}
	for t := range oldRefs {
		if !seen[t] && t != p.ref {
			p.del(refKey(p.tenant, t, p.ref))
		}
	}
	return nil
}

type resolvedRef struct {
	field  string
	kind   string
	target objRef
}

// refsOf resolves an object's references to store refs.
func (s *Server) refsOf(obj v1.Object) ([]resolvedRef, error) {
	rr, ok := obj.(v1.Referrer)
	if !ok {
		return nil, nil
	}
	var out []resolvedRef
	for _, r := range rr.References() {
		if r.Name == "" {
			continue
		}
		info, ok := s.byKind[r.Kind]
		if !ok {
			return nil, errInternal(fmt.Errorf("%s refers to unknown kind %q at %s", obj.GetTypeMeta().Kind, r.Kind, r.Field))
		}
		ns := ""
		if info.Scope == v1.ScopeNamespaced {
			ns = r.Namespace
			if ns == "" {
				ns = obj.GetMetadata().Namespace
			}
		}
		out = append(out, resolvedRef{field: r.Field, kind: r.Kind, target: objRef{Plural: info.Plural, Namespace: ns, Name: r.Name}})
	}
	return out, nil
}

// commit runs the planned transaction (with its audit record) in the
// tenant's group commit unless dryRun, and returns the presented object.
func (s *Server) commit(ctx context.Context, p *writePlan, dryRun bool) (any, error) {
	rev := int64(0)
	if !dryRun {
		var err error
		if rev, err = s.submit(ctx, p); err != nil {
			return nil, err
		}
	}
	if p.obj == nil {
		out := p.old
		s.redact(p.info, out)
		return out, nil
	}
	switch {
	case rev > 0:
		p.obj.GetMetadata().ResourceVersion = strconv.FormatInt(rev, 10)
	case p.old != nil:
		// A dry-run update answers with the version it was checked against.
		p.obj.GetMetadata().ResourceVersion = strconv.FormatInt(p.oldKV.ModRevision, 10)
	}
	s.redact(p.info, p.obj)
	if p.respond != nil {
		return p.respond(), nil
	}
	return p.obj, nil
}
