package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/auth"
	"github.com/meridian-platform/meridian/internal/store"
)

// ObjectPrefix is the store prefix of every object; objects of a tenant
// are under ObjectPrefix + tenant + "/".
const ObjectPrefix = prefixObject

// ObjectKey is the store key of an object (ns "" for tenant-scoped and
// system kinds; system kinds live in the system tenant). Other console
// parts (configuration distribution, site registration) read and watch
// objects with it; they write through the Server.
func ObjectKey(tenant, plural, ns, name string) string {
	return objKey(tenant, objRef{Plural: plural, Namespace: ns, Name: name})
}

// ParseObjectKey splits an object key into tenant, plural, namespace and
// name.
func ParseObjectKey(key string) (tenant, plural, ns, name string, ok bool) {
	t, r, ok := parseObjKey(key)
	return t, r.Plural, r.Namespace, r.Name, ok
}

// ErrNotFound is returned by UpdateStatus for a missing object.
var ErrNotFound = errors.New("apiserver: object not found")

// UpdateStatus lets the console (never a client) change the status of an
// object: update is called on the stored object (secrets sealed) and may
// change only its Status; the write compares the object's revision and
// retries on a concurrent change. It bumps neither generation nor history.
func (s *Server) UpdateStatus(ctx context.Context, tenant, kind, ns, name string, update func(obj v1.Object) error) error {
	info, ok := s.byKind[kind]
	if !ok {
		return fmt.Errorf("updating status: unknown kind %q", kind)
	}
	if info.Scope == v1.ScopeSystem {
		tenant = SystemTenant
	}
	if info.Scope != v1.ScopeNamespaced {
		ns = ""
	}
	key := objKey(tenant, objRef{Plural: info.Plural, Namespace: ns, Name: name})
	for attempt := 0; ; attempt++ {
		kv, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("updating status of %s %q: %w", kind, name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("updating status of %s %q: %w", kind, name, err)
		}
		obj := info.New()
		if err := json.Unmarshal(kv.Value, obj); err != nil {
			return fmt.Errorf("updating status of %s %q: %w", kind, name, err)
		}
		before := specJSON(obj)
		if err := update(obj); err != nil {
			return err
		}
		if string(specJSON(obj)) != string(before) {
			return fmt.Errorf("updating status of %s %q: the update changed the spec", kind, name)
		}
		obj.GetMetadata().ResourceVersion = ""
		val, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("updating status of %s %q: %w", kind, name, err)
		}
		_, err = s.st.Txn(ctx, store.Txn{Compares: []store.Compare{{Key: key, ModRevision: kv.ModRevision}}, Ops: []store.Op{store.Put(key, val)}})
		if store.IsConflict(err) && attempt < maxTxnRetries {
			continue
		}
		if err != nil {
			return fmt.Errorf("updating status of %s %q: %w", kind, name, err)
		}
		return nil
	}
}

// ErrInvalidSiteToken is returned by SiteTokenFor for an unknown, altered
// or expired registration token.
var ErrInvalidSiteToken = errors.New("apiserver: invalid or expired site token")

// SiteTokenFor finds the SiteToken a registration token was minted for
// (site registration). It checks the token's hash and expiry; counting
// uses and creating the Site are the caller's, in one transaction that
// compares kv.ModRevision.
func (s *Server) SiteTokenFor(ctx context.Context, token string) (tenant string, st *v1.SiteToken, kv store.KV, err error) {
	if _, _, err := auth.ParseToken(token); err != nil {
		return "", nil, store.KV{}, ErrInvalidSiteToken
	}
	ikv, err := s.st.Get(ctx, prefixSiteToken+auth.HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, store.KV{}, ErrInvalidSiteToken
	}
	if err != nil {
		return "", nil, store.KV{}, fmt.Errorf("looking up site token: %w", err)
	}
	var ti tokenIndex
	if err := json.Unmarshal(ikv.Value, &ti); err != nil {
		return "", nil, store.KV{}, fmt.Errorf("looking up site token: %w", err)
	}
	obj, kv, err := s.loadObject(ctx, ti.Tenant, s.byKind["SiteToken"], objRef{Plural: s.pluralOf("SiteToken"), Name: ti.Name})
	if err != nil {
		return "", nil, store.KV{}, ErrInvalidSiteToken
	}
	st, ok := obj.(*v1.SiteToken)
	if !ok || !auth.VerifyToken(token, string(st.Status.TokenHash)) {
		return "", nil, store.KV{}, ErrInvalidSiteToken
	}
	if st.Status.ExpiresAt != nil && !s.now().Before(*st.Status.ExpiresAt) {
		return "", nil, store.KV{}, ErrInvalidSiteToken
	}
	return ti.Tenant, st, kv, nil
}
