package dataplane

import (
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

type recStage struct {
	name string
	log  *[]string
	stop bool
}

func (s *recStage) Name() string { return s.name }
func (s *recStage) OnRequestHeaders(x *Exchange) Action {
	*s.log = append(*s.log, "req:"+s.name)
	if s.stop {
		x.respond(403, "stopped by "+s.name)
		return Respond
	}
	return Continue
}
func (s *recStage) OnResponseHeaders(x *Exchange) Action {
	*s.log = append(*s.log, "resp:"+s.name)
	return Continue
}
func (s *recStage) OnRequestBody(x *Exchange, chunk []byte, end bool) Action {
	*s.log = append(*s.log, "body:"+s.name+":"+string(chunk))
	return Continue
}
func (s *recStage) BufferRequestBody() int { return 1024 }
func (s *recStage) OnDone(x *Exchange)     { *s.log = append(*s.log, "done:"+s.name) }

func TestPipelineOrder(t *testing.T) {
	var log []string
	p := newPipeline([]Stage{&recStage{name: "a", log: &log}, &recStage{name: "b", log: &log}, &recStage{name: "c", log: &log}})
	x := &Exchange{}
	if p.RequestHeaders(x) != Continue || p.RequestBody(x, []byte("x"), true) != Continue || p.ResponseHeaders(x) != Continue {
		t.Fatal("unexpected stop")
	}
	p.Done(x)
	want := "req:a req:b req:c body:a:x body:b:x body:c:x resp:c resp:b resp:a done:a done:b done:c"
	if got := strings.Join(log, " "); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !p.WantsRequestBody() || p.BufferRequest != 1024 || p.WantsResponseBody() {
		t.Fatalf("body wishes: %+v", p)
	}
	log = nil
	p = newPipeline([]Stage{&recStage{name: "a", log: &log}, &recStage{name: "b", log: &log, stop: true}, &recStage{name: "c", log: &log}})
	if p.RequestHeaders(x) != Respond || x.Reply.Status != 403 || strings.Join(log, " ") != "req:a req:b" {
		t.Fatalf("stop: %v %+v", log, x.Reply)
	}
}

func TestBuildPipelineFollowsOrder(t *testing.T) {
	vh := &config.VHost{Routes: []*config.Route{{}}}
	p := BuildPipeline(vh, &StageEnv{})
	if got := strings.Join(p.Names, ","); got != "requestid" {
		t.Fatalf("names %s", got)
	}
	seen := map[string]bool{}
	for _, d := range Order {
		if seen[d.Name] {
			t.Fatalf("stage %s listed twice", d.Name)
		}
		seen[d.Name] = true
	}
}

func TestOptionsStagesFillSlots(t *testing.T) {
	var log []string
	extra := map[string]StageFactory{
		"waf":    func(*config.VHost, *StageEnv) Stage { return &recStage{name: "waf", log: &log} },
		"policy": func(*config.VHost, *StageEnv) Stage { return &recStage{name: "policy", log: &log} },
		"authn":  func(*config.VHost, *StageEnv) Stage { return nil }, // not used by this LB
	}
	p := buildPipeline(&config.VHost{Routes: []*config.Route{{}}}, &StageEnv{}, extra)
	if got := strings.Join(p.Names, ","); got != "requestid,policy,waf" {
		t.Fatalf("names %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("unknown stage name accepted")
		}
	}()
	New(Options{Logger: quietLoggerT(), Stages: map[string]StageFactory{"nope": nil}})
}
