package fanout

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/meridian-platform/meridian/internal/distrib"
	"github.com/meridian-platform/meridian/internal/sites"
)

// simNode is a node that keeps its snapshot in memory and acknowledges
// every update at once.
type simNode struct {
	name string
	cert tls.Certificate

	mu       sync.Mutex
	version  string
	gotAt    time.Time
	streams  int // streams that delivered at least one update
	lastConn time.Time
	lastErr  error // why the last stream attempt ended
}

func (n *simNode) lastError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastErr
}

func (n *simNode) setError(err error) {
	n.mu.Lock()
	n.lastErr = err
	n.mu.Unlock()
}

func (n *simNode) state() (string, time.Time, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.version, n.gotAt, n.streams
}

// fleet is a set of simulated nodes sharing one key (only the
// certificates differ).
type fleet struct {
	url   string
	roots *x509.CertPool
	key   *ecdsa.PrivateKey
	csr   string
	nodes []*simNode
}

func newFleet(url string, caPEM []byte) (*fleet, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no CA certificate")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		return nil, err
	}
	return &fleet{url: url, roots: roots, key: k, csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}, nil
}

// register enrols n sites with token, parallel at a time.
func (f *fleet) register(ctx context.Context, token, prefix string, n, parallel int) error {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.roots},
		MaxIdleConnsPerHost: parallel, ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	kb, _ := x509.MarshalPKCS8PrivateKey(f.key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	f.nodes = make([]*simNode, n)
	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				name := fmt.Sprintf("%s-%05d", prefix, i)
				b, _ := json.Marshal(sites.RegisterRequest{Token: token, Name: name, CSR: f.csr, NodeVersion: "fanout-sim",
					CapabilityVersion: distrib.CapabilityVersion})
				var id sites.Identity
				err := postJSON(ctx, hc, f.url+sites.RegisterPath, b, &id)
				if err == nil {
					var c tls.Certificate
					c, err = tls.X509KeyPair([]byte(id.Certificate), keyPEM)
					f.nodes[i] = &simNode{name: name, cert: c}
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("registering %s: %w", name, err)
					}
					errMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func postJSON(ctx context.Context, hc *http.Client, url string, body []byte, out any) error {
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 20 {
			time.Sleep(time.Duration(50+mrand.IntN(200)) * time.Millisecond)
			continue
		}
		if resp.StatusCode/100 != 2 {
			return sites.DecodeError(resp.StatusCode, b)
		}
		return json.Unmarshal(b, out)
	}
}

// run keeps node n's stream up until ctx ends, reconnecting with
// exponential backoff and full jitter.
func (f *fleet) run(ctx context.Context, n *simNode, host string) {
	cfg := &tls.Config{RootCAs: f.roots, ServerName: strings.Split(host, ":")[0], Certificates: []tls.Certificate{n.cert},
		NextProtos: []string{"h2"}}
	attempt := 0
	for ctx.Err() == nil {
		if f.stream(ctx, n, host, cfg) {
			attempt = 0
		}
		bound := 200 * time.Millisecond << min(attempt, 7)
		attempt++
		select {
		case <-ctx.Done():
			return
		case <-time.After(100*time.Millisecond + time.Duration(mrand.Int64N(int64(bound)))):
		}
	}
}

func (f *fleet) stream(ctx context.Context, n *simNode, host string, cfg *tls.Config) (healthy bool) {
	conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(distrib.Codec{})),
		grpc.WithReadBufferSize(8<<10), grpc.WithWriteBufferSize(8<<10), grpc.WithSharedWriteBuffer(true),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		n.setError(err)
		return false
	}
	defer conn.Close()
	cs, err := conn.NewStream(ctx, &distrib.StreamDesc, distrib.StreamMethod)
	if err != nil {
		n.setError(err)
		return false
	}
	v, _, _ := n.state()
	if cs.SendMsg(&distrib.NodeMessage{Hello: &distrib.Hello{Site: n.name, NodeVersion: "fanout-sim",
		CapabilityVersion: distrib.CapabilityVersion, AppliedVersion: v}}) != nil {
		var up distrib.Update
		n.setError(cs.RecvMsg(&up)) // the console's reason
		return false
	}
	first := true
	for {
		var up distrib.Update
		if err := cs.RecvMsg(&up); err != nil {
			n.setError(err)
			return healthy
		}
		now := time.Now()
		n.mu.Lock()
		n.version, n.gotAt = up.Version, now
		if first {
			n.streams++
			first = false
		}
		n.mu.Unlock()
		healthy = true
		if err := cs.SendMsg(&distrib.NodeMessage{Ack: &distrib.Ack{Version: up.Version}}); err != nil {
			n.setError(err)
			return healthy
		}
	}
}
