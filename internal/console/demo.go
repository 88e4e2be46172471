package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
	"github.com/meridian-platform/meridian/examples"
	"github.com/meridian-platform/meridian/internal/node"
)

// startDemoBackend serves a small JSON application on addr for the demo
// configuration (examples/demo.yaml points its pool at 127.0.0.1:9000).
func startDemoBackend(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("demo backend: %w", err)
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"service": "meridian-demo-backend", "host": host, "method": r.Method, "path": r.URL.Path,
			"query": r.URL.RawQuery, "requestId": r.Header.Get("X-Request-Id"),
			"forwardedFor": r.Header.Get("X-Forwarded-For"), "time": time.Now().UTC().Format(time.RFC3339Nano),
		})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), nil
}

// applyObjects creates or updates objs through the API, referenced kinds
// first (the order of v1.Kinds), the way `meridian apply` does.
func applyObjects(ctx context.Context, cl *client.Client, objs []v1.Object) error {
	order := map[string]int{}
	for i, k := range v1.Kinds() {
		order[k.Kind] = i
	}
	slices.SortStableFunc(objs, func(a, b v1.Object) int {
		return order[a.GetTypeMeta().Kind] - order[b.GetTypeMeta().Kind]
	})
	for _, o := range objs {
		tm, m := o.GetTypeMeta(), o.GetMetadata()
		err := cl.Create(ctx, o)
		if client.IsAlreadyExists(err) {
			err = cl.Update(ctx, o)
		}
		if err != nil {
			return fmt.Errorf("applying %s %q: %w", tm.Kind, m.Name, err)
		}
	}
	return nil
}

// applyDemo applies the demo configuration in the tenant, retrying while
// the console finishes starting.
func applyDemo(ctx context.Context, cl *client.Client, yaml []byte) error {
	objs, err := v1.DecodeAll(yaml)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	var last error
	for attempt := 0; attempt < 50; attempt++ {
		if last = applyObjects(ctx, cl, objs); last == nil {
			return nil
		}
		var se *client.StatusError
		if errors.As(last, &se) && se.Code != http.StatusServiceUnavailable {
			return last // a real refusal, not a console still starting
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return last
}

// startDevNode starts the demo backend, the dev node (with the security
// stages) and applies the demo configuration; the node keeps running in the
// background until ctx ends.
func (c *Console) startDevNode(ctx context.Context, token, tenant, demoAddr string, errOut io.Writer) error {
	if _, err := startDemoBackend(ctx, demoAddr); err != nil {
		return err
	}
	sec := node.NewSecurity(errOut)
	go sec.Run(ctx)
	go func() {
		err := c.RunDevNode(ctx, DevNodeOptions{AdminToken: token, Tenant: tenant, AdminListen: "",
			AccessLog: io.Discard, Security: sec})
		if err != nil && ctx.Err() == nil {
			c.log.Error("dev node stopped", "err", err)
		}
	}()
	cl, err := client.New(client.Config{Server: c.URL(), Token: token, CAData: c.CACertPEM(), Tenant: tenant})
	if err != nil {
		return err
	}
	if err := applyDemo(ctx, cl, examples.Demo()); err != nil {
		return fmt.Errorf("applying the demo configuration: %w", err)
	}
	return nil
}
