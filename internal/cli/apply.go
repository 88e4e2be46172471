package cli

import (
	"context"
	"fmt"
	"reflect"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// Results of applying one object.
const (
	resultCreated    = "created"
	resultConfigured = "configured"
	resultUnchanged  = "unchanged"
)

// maxConflictRetries bounds how often apply re-reads an object changed by
// someone else between its read and its write.
const maxConflictRetries = 3

func newApplyCommand(streams IOStreams) *cobra.Command {
	f := &factory{streams: streams}
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update objects from YAML or JSON files",
		Long: `Create or update the objects of one or more files or folders.

Files may hold several YAML documents (separated by ---) or JSON objects.
Folders are read recursively (.yaml, .yml, .json). Objects are applied in an
order that respects their references: namespaces first, then every object
after the objects it refers to, so a whole folder applies in one go.
Namespaced objects without metadata.namespace go to -n.`,
		Example: `  # Apply one file
  meridian apply -f shop.yaml

  # Apply a folder, recursively, in reference order
  meridian apply -f ./config/

  # Validate on the console without storing anything
  meridian apply -f shop.yaml --dry-run

  # Read from standard input
  cat shop.yaml | meridian apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd)
			defer cancel()
			c, cctx, err := f.client()
			if err != nil {
				return err
			}
			objs, err := loadOrdered(f, cctx, files, streams)
			if err != nil {
				return err
			}
			failed := 0
			for _, o := range objs {
				ki := kindInfoFor(o.GetTypeMeta().Kind)
				name := displayName(ki, o.GetMetadata().Name)
				res, err := applyObject(ctx, c, o, dryRun)
				if err != nil {
					failed++
					ReportError(streams.ErrOut, fmt.Errorf("%s: %w", name, err))
					if ctx.Err() != nil {
						return ctx.Err()
					}
					continue
				}
				suffix := ""
				if dryRun {
					suffix = " (dry run)"
				}
				fmt.Fprintf(streams.Out, "%s %s%s\n", name, res, suffix)
			}
			if failed > 0 {
				return silentExit(1) // each failure was reported above
			}
			return nil
		},
	}
	f.bindPersistent(cmd, true)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, folder or - (stdin) to apply; repeatable")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate on the console without storing (server-side dry run)")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// loadOrdered reads the manifests, defaults their namespaces and orders
// them for apply, warning about reference cycles.
func loadOrdered(f *factory, cctx Context, files []string, streams IOStreams) ([]v1.Object, error) {
	objs, err := readManifests(files, streams.In)
	if err != nil {
		return nil, err
	}
	if err := setNamespaces(objs, f.ns(cctx), f.namespace != ""); err != nil {
		return nil, err
	}
	if err := checkDuplicates(objs); err != nil {
		return nil, err
	}
	ordered, cycle := orderForApply(objs)
	if len(cycle) > 0 {
		fmt.Fprintf(streams.ErrOut, "Warning: %s; applying them in file order\n", describeCycle(cycle))
	}
	return ordered, nil
}

func checkDuplicates(objs []v1.Object) error {
	seen := make(map[objKey]bool, len(objs))
	for _, o := range objs {
		k := keyOf(o)
		if seen[k] {
			return fmt.Errorf("%s is given twice", k)
		}
		seen[k] = true
	}
	return nil
}

// applyObject creates obj, or updates it when it exists and differs.
func applyObject(ctx context.Context, c *client.Client, obj v1.Object, dryRun bool) (string, error) {
	desired, err := toSendable(obj)
	if err != nil {
		return "", err
	}
	kind, ns, name := desired.Kind, desired.Metadata.Namespace, desired.Metadata.Name
	for attempt := 0; ; attempt++ {
		live := &client.Raw{}
		err := c.Get(ctx, kind, ns, name, live)
		if client.IsNotFound(err) {
			if err := c.Create(ctx, desired, client.DryRunIf(dryRun)); err != nil {
				if client.IsAlreadyExists(err) && attempt < maxConflictRetries {
					continue
				}
				return "", err
			}
			return resultCreated, nil
		}
		if err != nil {
			return "", err
		}
		preview, err := previewUpdate(ctx, c, desired, live)
		if err != nil {
			if client.IsConflict(err) && attempt < maxConflictRetries {
				continue
			}
			return "", err
		}
		// Secrets come back redacted, so a new secret value cannot be seen
		// in the preview: an object that carries one is always written.
		if !carriesSecret(obj) && sameIntent(live, preview) {
			return resultUnchanged, nil
		}
		if dryRun {
			return resultConfigured, nil
		}
		upd, err := client.ToRaw(desired)
		if err != nil {
			return "", err
		}
		upd.Metadata.ResourceVersion = live.Metadata.ResourceVersion
		if err := c.Update(ctx, upd); err != nil {
			if client.IsConflict(err) && attempt < maxConflictRetries {
				continue
			}
			return "", err
		}
		return resultConfigured, nil
	}
}

// carriesSecret reports whether obj sets a write-only secret field.
func carriesSecret(obj v1.Object) bool {
	sh, ok := obj.(v1.SecretHolder)
	if !ok {
		return false
	}
	for _, f := range sh.SecretFields() {
		if f.Value != nil && *f.Value != "" && *f.Value != v1.SecretRedacted {
			return true
		}
	}
	return false
}

// previewUpdate asks the console what updating live with desired gives
// (server-side dry run).
func previewUpdate(ctx context.Context, c *client.Client, desired, live *client.Raw) (*client.Raw, error) {
	p, err := client.ToRaw(desired)
	if err != nil {
		return nil, err
	}
	p.Metadata.ResourceVersion = live.Metadata.ResourceVersion
	if err := c.Update(ctx, p, client.DryRun()); err != nil {
		return nil, err
	}
	return p, nil
}

// previewApply returns the live object (nil when absent) and what apply
// would make of it, both from the console (server-side dry run).
func previewApply(ctx context.Context, c *client.Client, obj v1.Object) (live, want *client.Raw, err error) {
	desired, err := toSendable(obj)
	if err != nil {
		return nil, nil, err
	}
	live = &client.Raw{}
	err = c.Get(ctx, desired.Kind, desired.Metadata.Namespace, desired.Metadata.Name, live)
	if client.IsNotFound(err) {
		if err := c.Create(ctx, desired, client.DryRun()); err != nil {
			return nil, nil, err
		}
		return nil, desired, nil
	}
	if err != nil {
		return nil, nil, err
	}
	want, err = previewUpdate(ctx, c, desired, live)
	if err != nil {
		return nil, nil, err
	}
	return live, want, nil
}

// toSendable converts a decoded object for the wire: status is the
// console's, and console-set metadata is dropped.
func toSendable(obj v1.Object) (*client.Raw, error) {
	r, err := client.ToRaw(obj)
	if err != nil {
		return nil, err
	}
	if r.APIVersion == "" {
		r.APIVersion = v1.APIVersion
	}
	delete(r.Fields, "status")
	md := &r.Metadata
	md.UID, md.ResourceVersion, md.Generation, md.CreationTimestamp, md.Tenant = "", "", 0, nil, ""
	return r, nil
}

// intent is the part of an object a user writes: everything but status
// and console-set metadata.
func intent(r *client.Raw) (map[string]any, error) {
	if r == nil {
		return nil, nil
	}
	m, err := r.Map()
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "tenant"} {
			delete(md, k)
		}
	}
	return m, nil
}

func sameIntent(a, b *client.Raw) bool {
	ma, err1 := intent(a)
	mb, err2 := intent(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return reflect.DeepEqual(normalize(ma), normalize(mb))
}

// normalize drops empty maps and lists so that "labels: {}" and no labels
// compare equal.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			n := normalize(x)
			if isEmpty(n) {
				continue
			}
			out[k] = n
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalize(x)
		}
		return out
	}
	return v
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}
