package waf

import (
	"regexp"
	"strings"
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// leanIDs returns the rule ids of a lean configuration, in order.
func leanIDs(lean string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`id:(\d+)`).FindAllStringSubmatch(lean, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestFoldLean(t *testing.T) {
	root, err := rootFS(false)
	if err != nil {
		t.Fatal(err)
	}
	const detect = `SecRule ARGS "@rx attack" "id:100,phase:2,deny,msg:'x'"` + "\n"
	cases := []struct {
		name, rules string
		lean        []string // ids left in the lean instance, in order
		sets        string   // the folded setvars ("" none)
	}{
		{
			name: "setup, defaults, a constant guard",
			rules: `SecAction "id:1,phase:1,pass,nolog,setvar:tx.level=2,setvar:tx.score=0,setvar:tx.zero=0"
SecRule &TX:level "@eq 0" "id:2,phase:1,pass,nolog,setvar:'tx.level=1'"
SecRule &TX:limit "@eq 0" "id:3,phase:1,pass,nolog,setvar:'tx.limit=5'"
SecRule TX:level "@lt 2" "id:4,phase:2,pass,nolog,skipAfter:END"
SecRule TX:level "@ge 2" "id:5,phase:2,pass,nolog,setvar:'tx.score=+%{tx.zero}'"
SecMarker END
`,
			lean: nil,
			sets: "setvar:'tx.level=2',setvar:'tx.score=0',setvar:'tx.zero=0',setvar:'tx.limit=5'",
		},
		{
			name: "a rule reading the request ends the fold; later constant rules still run",
			rules: `SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=1"
SecRule REQUEST_HEADERS:X "@rx y" "id:2,phase:1,pass,nolog,setvar:tx.a=2"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.b=1"
SecRule TX:a "@eq 1" "id:4,phase:2,pass,nolog,setvar:tx.c=1"
`,
			lean: []string{"2", "3", "4"},
			sets: "setvar:'tx.a=1'",
		},
		{
			name: "rules that neither read nor write TX stay and do not end the fold",
			rules: `SecRule REQUEST_HEADERS:Content-Type "@rx json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:2,phase:1,pass,nolog,setvar:tx.a=1"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.a=+2"
`,
			lean: []string{"1"},
			sets: "setvar:'tx.a=3'",
		},
		{
			name: "a run-time removal: rules it can remove are not known to run",
			rules: `SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=1"
SecRule REMOTE_ADDR "@ipMatch 127.0.0.1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveById=3"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.a=5"
SecRule TX:a "@eq 5" "id:4,phase:2,pass,nolog,setvar:tx.b=1"
SecRule TX:a "@eq 1" "id:5,phase:2,pass,nolog,setvar:tx.a=+0"
`,
			lean: []string{"2", "3", "4", "5"},
			sets: "setvar:'tx.a=1'",
		},
		{
			name: "a static jump leaves out what it skips",
			rules: `SecAction "id:1,phase:1,pass,nolog,setvar:tx.p=100"
SecRule TX:p "@eq 100" "id:2,phase:1,pass,nolog,skipAfter:END-S"
SecRule UNIQUE_ID "@rx (\d)" "id:3,phase:1,pass,nolog,capture,setvar:tx.r=%{tx.1}"
SecMarker END-S
SecRule TX:r "@eq 1" "id:4,phase:1,pass,nolog,setvar:tx.q=1"
`,
			lean: nil,
			sets: "setvar:'tx.p=100'",
		},
		{
			name: "a jump that depends on the request makes the writes it may skip unknown",
			rules: `SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=1"
SecRule ARGS:x "@eq 1" "id:2,phase:2,pass,nolog,skipAfter:END"
SecAction "id:3,phase:2,pass,nolog,setvar:tx.a=2"
SecMarker END
SecRule TX:a "@eq 2" "id:4,phase:2,pass,nolog,setvar:tx.b=1"
`,
			lean: []string{"2", "3", "4"},
			sets: "setvar:'tx.a=1'",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, why := compileFastPath(c.rules+detect, root)
			if p == nil {
				t.Fatalf("no fast path: %s", why)
			}
			if got := leanIDs(p.lean); strings.Join(got, " ") != strings.Join(c.lean, " ") {
				t.Errorf("lean rules %v, want %v\n%s", got, c.lean, p.lean)
			}
			var sets []string
			for i, k := range p.txInit {
				sets = append(sets, "setvar:'tx."+k+"="+p.txInitVals[i][0]+"'")
			}
			if got := strings.Join(sets, ","); got != c.sets {
				t.Errorf("initial TX %s, want %s", got, c.sets)
			}
		})
	}
}

// TestFoldLeanCRS: at PL1 most of the CRS bookkeeping is constant.
func TestFoldLeanCRS(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	st := w.fpStats
	if st.Folded < 50 || st.Bookkeeping > 30 {
		t.Errorf("folded %d, left %d bookkeeping rules in the lean instance", st.Folded, st.Bookkeeping)
	}
	for _, want := range []string{"setvar:'tx.blocking_paranoia_level=1'", "setvar:'tx.inbound_anomaly_score_threshold=5'", "setvar:'tx.inbound_anomaly_score_pl1=0'"} {
		found := false
		for i, k := range w.fp.txInit {
			found = found || want == "setvar:'tx."+k+"="+w.fp.txInitVals[i][0]+"'"
		}
		if !found {
			t.Errorf("the initial TX lacks %s", want)
		}
	}
}

// TestLeanMarkers: Coraza runs every SecMarker in every phase; the lean
// instance keeps only those a lean rule jumps to or counts with skip:N.
func TestLeanMarkers(t *testing.T) {
	root, err := rootFS(false)
	if err != nil {
		t.Fatal(err)
	}
	rules := `SecRule ARGS:a "@eq 1" "id:1,phase:2,pass,nolog,skipAfter:JUMPED"
SecRule ARGS "@rx attack" "id:100,phase:2,deny,msg:'x'"
SecRule ARGS:d "@eq 1" "id:4,phase:2,pass,nolog,setvar:tx.d=1"
SecMarker JUMPED
SecMarker UNUSED
SecRule ARGS:b "@eq 1" "id:2,phase:2,pass,nolog,skip:1"
SecMarker COUNTED
SecRule ARGS:c "@eq 1" "id:3,phase:2,pass,nolog,setvar:tx.c=1"
SecMarker AFTER
`
	p, why := compileFastPath(rules, root)
	if p == nil {
		t.Fatalf("no fast path: %s", why)
	}
	for m, want := range map[string]bool{"JUMPED": true, "UNUSED": false, "COUNTED": true, "AFTER": false} {
		if got := strings.Contains(p.lean, `SecMarker "`+m+`"`); got != want {
			t.Errorf("marker %s in the lean instance: %v, want %v\n%s", m, got, want, p.lean)
		}
	}
}

// TestLeanTXNames: a TX key regex selects nothing the lean instance cannot
// set (920450 reads names only its own first link writes).
func TestLeanTXNames(t *testing.T) {
	w := mustWAF(t, v1.AppFirewallSpec{})
	found := map[int]bool{}
	for _, f := range w.fp.flows[1] {
		if f.check == nil || (f.check.id != 920450 && f.check.id != 921180) {
			continue
		}
		for _, l := range f.check.links {
			for _, v := range l.vars {
				if v.keyM.dfa == nil || v.txNames == nil {
					continue
				}
				found[f.check.id] = true
				if !v.txNames.never() {
					t.Errorf("%d: TX:/%s/ may select %v", f.check.id, v.key, v.txNames)
				}
			}
		}
	}
	if !found[920450] {
		t.Error("920450 has no TX key regex with a name filter")
	}
	for _, f := range w.fp.flows[2] {
		if f.check == nil || f.check.id != 921180 {
			continue
		}
		v := f.check.links[0].vars[0]
		if v.txNames == nil || v.txNames.never() || !v.txNames.may("paramcounter_id") || v.txNames.may("blocking_paranoia_level") {
			t.Errorf("921180: TX:/%s/ filter %+v", v.key, v.txNames)
		}
		return
	}
	t.Error("no 921180 in phase 2")
}
