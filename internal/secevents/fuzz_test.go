package secevents

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzFromAttrs: attributes from a node never make the console panic, and
// what comes out is bounded and survives a JSON round trip.
func FuzzFromAttrs(f *testing.F) {
	f.Add("waf", "blocked", "403", `[{"id":942100,"variable":"ARGS:id","data":"1 or 1=1"}]`, "/a?token=x", "msg")
	f.Add("policy", "detected", "", "", "/", "")
	f.Add("", "", "-1", "{", "?", "")
	f.Add("authn", "rejected", "401", `[{"name":"jwt","variable":"REQUEST_HEADERS:Authorization","data":"Bearer x"}]`, "/x?a=1&b", "bad token")
	f.Fuzz(func(t *testing.T, kind, action, status, rules, path, msg string) {
		e, err := FromAttrs(time.Unix(0, 0), msg, map[string]string{"kind": kind, "action": action, "status": status,
			"rules": rules, "path": path, "loadBalancer": "ns/lb"})
		if err != nil {
			return
		}
		if len(e.Rules) > maxRules || len(e.Message) > maxField+4 || len(e.Path) > maxField+4 {
			t.Fatalf("not bounded: %d rules, message %d, path %d bytes", len(e.Rules), len(e.Message), len(e.Path))
		}
		for _, h := range e.Rules {
			if len(h.Data) > MaxMatchedData+4 {
				t.Fatalf("matched data not bounded: %d bytes", len(h.Data))
			}
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
	})
}
