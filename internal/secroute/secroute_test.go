package secroute

import (
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// named is a stage that records the calls it gets.
type named struct {
	name  string
	calls *[]string
	resp  bool
}

func (n *named) Name() string { return n.name }
func (n *named) OnRequestHeaders(*dataplane.Exchange) dataplane.Action {
	*n.calls = append(*n.calls, n.name)
	if n.resp {
		return dataplane.Respond
	}
	return dataplane.Continue
}

type bodied struct{ named }

func (b *bodied) OnRequestBody(*dataplane.Exchange, []byte, bool) dataplane.Action {
	*b.calls = append(*b.calls, b.name+"/body")
	return dataplane.Continue
}
func (b *bodied) BufferRequestBody() int { return 100 }

func TestSlot(t *testing.T) {
	var calls []string
	lbSec := &config.Security{Index: 0, AppFirewalls: []string{"a"}}
	routeSec := &config.Security{Index: 1, AppFirewalls: []string{"b", "c"}}
	build := func(vh *config.VHost, sec *config.Security, _ *dataplane.StageEnv) []dataplane.Stage {
		var out []dataplane.Stage
		for _, fw := range sec.AppFirewalls {
			if fw == "c" {
				out = append(out, &bodied{named{name: fw, calls: &calls}})
				continue
			}
			out = append(out, &named{name: fw, calls: &calls, resp: fw == "b"})
		}
		return out
	}
	f := Slot("waf", build)
	// One profile, one stage: no wrapper.
	one := &config.VHost{Security: []*config.Security{lbSec}}
	if s, ok := f(one, nil).(*named); !ok || s.name != "a" {
		t.Fatalf("single stage wrapped: %T", f(one, nil))
	}
	// No stage at all: nil.
	if s := f(&config.VHost{Security: []*config.Security{{}}}, nil); s != nil {
		t.Fatalf("empty profile gave %T", s)
	}
	vh := &config.VHost{Security: []*config.Security{lbSec, routeSec}}
	s := f(vh, nil)
	bf, ok := s.(dataplane.RequestBodyFilter)
	if !ok || bf.BufferRequestBody() != 100 {
		t.Fatalf("dispatcher %T lacks the body callback of its stages", s)
	}
	if _, ok := s.(dataplane.ResponseBodyFilter); ok {
		t.Fatal("dispatcher has a response body callback no stage needs")
	}
	h := s.(dataplane.RequestHeadersFilter)
	route := &config.Route{Security: routeSec}
	if a := h.OnRequestHeaders(&dataplane.Exchange{Route: route}); a != dataplane.Respond {
		t.Fatal("b's answer was not kept")
	}
	h.OnRequestHeaders(&dataplane.Exchange{})                                      // no route: the load balancer's
	h.OnRequestHeaders(&dataplane.Exchange{Route: &config.Route{Security: lbSec}}) // default route
	bf.OnRequestBody(&dataplane.Exchange{Route: route}, nil, true)
	bf.OnRequestBody(&dataplane.Exchange{}, nil, true)
	want := "b a a c/body"
	got := ""
	for i, c := range calls {
		if i > 0 {
			got += " "
		}
		got += c
	}
	if got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
}
