package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Option changes one write or delete request.
type Option func(*options)

type options struct {
	dryRun  bool
	cascade bool
}

// DryRun asks the console to validate and answer without storing (dryRun=All).
func DryRun() Option { return func(o *options) { o.dryRun = true } }

// DryRunIf is DryRun when on is true, a no-op otherwise.
func DryRunIf(on bool) Option { return func(o *options) { o.dryRun = o.dryRun || on } }

// Cascade lets a namespace delete remove everything inside it.
func Cascade() Option { return func(o *options) { o.cascade = true } }

func (o options) query() url.Values {
	q := url.Values{}
	if o.dryRun {
		q.Set("dryRun", "All")
	}
	if o.cascade {
		q.Set("cascade", "true")
	}
	return q
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

func objectKey(obj v1.Object) (Resource, string, string, error) {
	if obj == nil {
		return Resource{}, "", "", errors.New("client: nil object")
	}
	tm, md := obj.GetTypeMeta(), obj.GetMetadata()
	if tm.Kind == "" {
		return Resource{}, "", "", errors.New("client: object has no kind")
	}
	if tm.APIVersion == "" {
		tm.APIVersion = v1.APIVersion
	}
	res := ResourceFor(tm.Kind, md.Namespace)
	if res.Namespaced && md.Namespace == "" {
		return Resource{}, "", "", fmt.Errorf("client: %s %q has no namespace", tm.Kind, md.Name)
	}
	ns := md.Namespace
	if !res.Namespaced {
		ns = ""
	}
	return res, ns, md.Name, nil
}

// Create stores a new object; obj is updated in place from the console's
// answer (uid, resourceVersion, defaults, ...). obj may be a typed object
// or a *Raw.
func (c *Client) Create(ctx context.Context, obj v1.Object, opts ...Option) error {
	res, ns, name, err := objectKey(obj)
	if err != nil {
		return err
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("creating %s %q: encoding: %w", res.Kind, name, err)
	}
	req := request{method: http.MethodPost, path: res.Path(ns, "", ""), query: collect(opts).query(), body: body}
	if err := c.call(ctx, req, obj); err != nil {
		return err
	}
	return nil
}

// Update replaces an object. metadata.resourceVersion, when set, must match
// the stored one (409 Conflict otherwise). obj is updated in place.
func (c *Client) Update(ctx context.Context, obj v1.Object, opts ...Option) error {
	res, ns, name, err := objectKey(obj)
	if err != nil {
		return err
	}
	if !validName(name) {
		return fmt.Errorf("client: updating %s: invalid name %q", res.Kind, name)
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("updating %s %q: encoding: %w", res.Kind, name, err)
	}
	req := request{method: http.MethodPut, path: res.Path(ns, name, ""), query: collect(opts).query(), body: body}
	return c.call(ctx, req, obj)
}

// Get reads one object into into (a typed object or a *Raw). kind may be a
// Kind, plural, singular or short name.
func (c *Client) Get(ctx context.Context, kind, namespace, name string, into v1.Object) error {
	res := ResourceFor(kind, namespace)
	if !validName(name) {
		return fmt.Errorf("client: getting %s: invalid name %q", res.Kind, name)
	}
	return c.call(ctx, request{method: http.MethodGet, path: res.Path(nsFor(res, namespace), name, "")}, into)
}

// GetRaw reads one object of any kind.
func (c *Client) GetRaw(ctx context.Context, kind, namespace, name string) (*Raw, error) {
	r := &Raw{}
	if err := c.Get(ctx, kind, namespace, name, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Patch applies a JSON merge patch (RFC 7386) to an object and decodes the
// result into into (nil: discard).
func (c *Client) Patch(ctx context.Context, kind, namespace, name string, patch []byte, into v1.Object, opts ...Option) error {
	res := ResourceFor(kind, namespace)
	if !validName(name) {
		return fmt.Errorf("client: patching %s: invalid name %q", res.Kind, name)
	}
	if !json.Valid(patch) {
		return fmt.Errorf("client: patching %s %q: the patch is not valid JSON", res.Kind, name)
	}
	req := request{method: http.MethodPatch, path: res.Path(nsFor(res, namespace), name, ""), query: collect(opts).query(),
		body: patch, contentType: "application/merge-patch+json"}
	var out any
	if into != nil {
		out = into
	}
	return c.call(ctx, req, out)
}

// Delete removes an object. Cascade() lets a non-empty namespace go with
// everything in it.
func (c *Client) Delete(ctx context.Context, kind, namespace, name string, opts ...Option) error {
	res := ResourceFor(kind, namespace)
	if !validName(name) {
		return fmt.Errorf("client: deleting %s: invalid name %q", res.Kind, name)
	}
	req := request{method: http.MethodDelete, path: res.Path(nsFor(res, namespace), name, ""), query: collect(opts).query()}
	return c.call(ctx, req, nil)
}

func nsFor(res Resource, namespace string) string {
	if res.Namespaced {
		return namespace
	}
	return ""
}

// ListOptions narrow and page a list.
type ListOptions struct {
	// LabelSelector, e.g. "app=shop,tier in (web,api)".
	LabelSelector string
	// Limit is the page size; 0 lets the console choose.
	Limit int64
	// Continue is the token of the next page from a previous answer.
	Continue string
	// ResourceVersion reads at that revision (first page only).
	ResourceVersion string
	// AllPages follows continue tokens until the list is complete; the
	// answer then holds every item and no continue token.
	AllPages bool
}

// ListMeta is a list's metadata.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Continue        string `json:"continue,omitempty"`
}

// List is a page of objects of one kind.
type List struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   ListMeta `json:"metadata"`
	Items      []*Raw   `json:"items"`
}

// ItemsAs decodes every item of l into typed objects, e.g.
// ItemsAs[v1.OriginPool](l).
func ItemsAs[T any](l *List) ([]*T, error) {
	out := make([]*T, 0, len(l.Items))
	for i, it := range l.Items {
		v := new(T)
		if err := it.Into(v); err != nil {
			return nil, fmt.Errorf("decoding item %d (%s): %w", i, it.Metadata.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// List lists objects of kind in namespace (empty namespace: across all
// namespaces for namespaced kinds).
func (c *Client) List(ctx context.Context, kind, namespace string, opts ListOptions) (*List, error) {
	res := ResourceFor(kind, namespace)
	path := res.Path(nsFor(res, namespace), "", "")
	var all *List
	cont := opts.Continue
	for {
		q := url.Values{}
		if opts.LabelSelector != "" {
			q.Set("labelSelector", opts.LabelSelector)
		}
		if opts.Limit > 0 {
			q.Set("limit", strconv.FormatInt(opts.Limit, 10))
		}
		if cont != "" {
			q.Set("continue", cont)
		} else if opts.ResourceVersion != "" {
			q.Set("resourceVersion", opts.ResourceVersion)
		}
		page := &List{}
		if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, page); err != nil {
			return nil, err
		}
		if !opts.AllPages {
			return page, nil
		}
		if all == nil {
			all = page
		} else {
			all.Items = append(all.Items, page.Items...)
		}
		if page.Metadata.Continue == "" {
			all.Metadata.Continue = ""
			return all, nil
		}
		if page.Metadata.Continue == cont {
			return nil, fmt.Errorf("listing %s: the console returned the same continue token twice", res.Plural)
		}
		cont = page.Metadata.Continue
	}
}

// History lists the previous generations of an object, as the console keeps them.
func (c *Client) History(ctx context.Context, kind, namespace, name string) (*List, error) {
	res := ResourceFor(kind, namespace)
	if !validName(name) {
		return nil, fmt.Errorf("client: history of %s: invalid name %q", res.Kind, name)
	}
	l := &List{}
	if err := c.call(ctx, request{method: http.MethodGet, path: res.Path(nsFor(res, namespace), name, "history")}, l); err != nil {
		return nil, err
	}
	return l, nil
}

// Rollback restores the spec of a previous generation and returns the
// updated object (into may be nil).
func (c *Client) Rollback(ctx context.Context, kind, namespace, name string, generation int64, into v1.Object) error {
	res := ResourceFor(kind, namespace)
	if !validName(name) {
		return fmt.Errorf("client: rolling back %s: invalid name %q", res.Kind, name)
	}
	body, _ := json.Marshal(map[string]int64{"generation": generation})
	req := request{method: http.MethodPost, path: res.Path(nsFor(res, namespace), name, "rollback"), body: body}
	var out any
	if into != nil {
		out = into
	}
	return c.call(ctx, req, out)
}
