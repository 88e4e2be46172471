package wafstage

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
	"github.com/meridian-platform/meridian/internal/secevents"
	"github.com/meridian-platform/meridian/internal/waf"
)

var client = &http.Client{Timeout: 10 * time.Second}

func do(t *testing.T, method, url, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
	req.Header.Set("Accept", "text/html,application/json;q=0.9,*/*;q=0.8")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func waitEvents(key string) []*secevents.Event {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if e := events.take(key); e != nil {
			return e
		}
	}
	return nil
}

func TestThroughListener(t *testing.T) {
	backend := reflectBackend(t)
	block := "http://" + startFront(t, "block", v1.AppFirewallSpec{RequestBody: v1.WAFRequestBody{Limit: 8192},
		ResponseInspection: v1.WAFResponseInspection{Enabled: true}}, backend)
	monitor := "http://" + startFront(t, "monitor", v1.AppFirewallSpec{Mode: v1.AppFirewallMonitor}, backend)

	resp, body := do(t, "GET", block+"/api/users?id=42&name=alice", "", "")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("benign GET: %d %q", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", block+"/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "", "")
	if resp.StatusCode != 403 || !strings.Contains(body, "Request blocked") {
		t.Fatalf("SQLi GET: %d %q", resp.StatusCode, body)
	}
	ev := waitEvents("t/block/search")
	if len(ev) != 1 || ev[0].Action != secevents.ActionBlocked || ev[0].Source != "t/block" || ev[0].LoadBalancer != "t/block" ||
		ev[0].Status != 403 || len(ev[0].Rules) == 0 {
		t.Fatalf("events: %+v", ev)
	}
	if metrics.RuleHits("t/block", 942100) == 0 || metrics.RuleHits("t/block", 949110) == 0 {
		t.Error("rule hits not counted")
	}
	if rid := ev[0].RequestID; rid == "" || !strings.Contains(body, rid) {
		t.Errorf("block page does not name the request id %q", rid)
	}

	resp, _ = do(t, "POST", block+"/api", "application/json", `{"comment":"<script>alert(document.cookie)</script>"}`)
	if resp.StatusCode != 403 {
		t.Errorf("XSS in JSON body: %d", resp.StatusCode)
	}
	resp, _ = do(t, "POST", block+"/api", "application/json", strings.Repeat("[", 5000)+strings.Repeat("]", 5000))
	if resp.StatusCode != 400 && resp.StatusCode != 413 {
		t.Errorf("deeply nested JSON: %d", resp.StatusCode)
	}
	resp, _ = do(t, "POST", block+"/api", "application/octet-stream", strings.Repeat("a", 20000))
	if resp.StatusCode != 413 {
		t.Errorf("body over the limit: %d", resp.StatusCode)
	}
	resp, _ = do(t, "POST", block+"/upload", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--b")
	if resp.StatusCode != 400 {
		t.Errorf("broken multipart: %d", resp.StatusCode)
	}
	// Response inspection: a leaked SQL error is blocked on the way out.
	resp, _ = do(t, "POST", block+"/reflect", "application/json",
		`{"body":"You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version"}`)
	if resp.StatusCode != 403 {
		t.Errorf("SQL error leak: %d", resp.StatusCode)
	}

	resp, _ = do(t, "GET", monitor+"/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("monitor mode blocked: %d", resp.StatusCode)
	}
	if ev := waitEvents("t/monitor/search"); len(ev) != 1 || ev[0].Action != secevents.ActionDetected || ev[0].Status != 0 {
		t.Fatalf("monitor events: %+v", ev)
	}
}

func TestFailsClosed(t *testing.T) {
	f := Factory(waf.NewCache(1), Options{})
	st := f(&config.VHost{ID: "t/x", Namespace: "t", Spec: &v1.HTTPLoadBalancerSpec{AppFirewall: "gone"}},
		&dataplane.StageEnv{Table: config.Compile(nil)})
	if Err(st) == nil || !strings.Contains(Err(st).Error(), "t/gone") {
		t.Fatalf("err %v", Err(st))
	}
	x := &dataplane.Exchange{}
	if st.(dataplane.RequestHeadersFilter).OnRequestHeaders(x) != dataplane.Respond || x.Reply.Status != 503 {
		t.Errorf("reply %+v", x.Reply)
	}
	if f(&config.VHost{Spec: &v1.HTTPLoadBalancerSpec{}}, nil) != nil {
		t.Error("stage without a firewall")
	}
	var _ = bytes.Equal
}

func newRequest(method, url, apiKey string) (*http.Request, error) {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0")
	r.Header.Set("Accept", "text/html")
	if apiKey != "" {
		r.Header.Set("X-API-Key", apiKey)
	}
	return r, nil
}
