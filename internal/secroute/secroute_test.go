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

// looping is a stage that says whether it may run on the event loops.
type looping struct {
	named
	loop bool
}

func (l *looping) LoopServable() bool { return l.loop }

type loopingBodied struct{ looping }

func (b *loopingBodied) OnRequestBody(*dataplane.Exchange, []byte, bool) dataplane.Action {
	return dataplane.Continue
}
func (b *loopingBodied) BufferRequestBody() int { return 10 }

// TestSlotLoopServable: the dispatcher is loop-servable exactly when every
// stage of every profile is (one that is not a LoopStage, or says false,
// in any profile keeps the whole load balancer off the loops), with and
// without body callbacks.
func TestSlotLoopServable(t *testing.T) {
	var calls []string
	mk := func(kind string) dataplane.Stage {
		switch kind {
		case "loop":
			return &looping{named{name: kind, calls: &calls}, true}
		case "noloop":
			return &looping{named{name: kind, calls: &calls}, false}
		case "bodyloop":
			return &loopingBodied{looping{named{name: kind, calls: &calls}, true}}
		}
		return &named{name: kind, calls: &calls} // not a LoopStage
	}
	for _, tc := range []struct {
		profiles [][]string
		want     bool
	}{
		{[][]string{{"loop"}, {"loop", "loop"}}, true},
		{[][]string{{}, {"loop"}}, true},
		{[][]string{{"loop"}, {"bodyloop"}}, true},
		{[][]string{{"loop"}, {"loop", "noloop"}}, false},
		{[][]string{{"plain"}, {"loop"}}, false},
		{[][]string{{"bodyloop"}, {"plain"}}, false},
		{[][]string{{"loop", "loop"}}, true},
		{[][]string{{"loop", "noloop"}}, false},
	} {
		var secs []*config.Security
		for i, p := range tc.profiles {
			secs = append(secs, &config.Security{Index: i, AppFirewalls: p})
		}
		build := func(_ *config.VHost, sec *config.Security, _ *dataplane.StageEnv) []dataplane.Stage {
			var out []dataplane.Stage
			for _, k := range sec.AppFirewalls {
				out = append(out, mk(k))
			}
			return out
		}
		s := Slot("waf", build)(&config.VHost{Security: secs}, nil)
		ls, ok := s.(dataplane.LoopStage)
		if got := ok && ls.LoopServable(); got != tc.want {
			t.Errorf("profiles %v: %T loop-servable %v, want %v", tc.profiles, s, got, tc.want)
		}
	}
}
