package waf

import (
	"strconv"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// ResponseInert reports whether the compiled rules can do nothing with a
// response that they would not do without it: response inspection is off
// (so no response body is read and phase 4 never runs) and every detection
// rule of the response-header phase (3) that the compiled control flow
// can reach, whatever the request, reads only the transaction's TX
// variables (such as CRS's outbound anomaly score checks); the others sit
// behind paranoia-level style skips whose guards hold from the folded
// constant bookkeeping on (the fast path's program, walked as its
// per-request check walks it, with the response data unknown). For such a
// WAF an engine may run the response-header phase without the response
// (Tx.ResponseHeaders with no fields) right after the request phases and
// get the verdict and hits it would get with it. When it returns false,
// why says what can act (a rule id, or what is missing).
//
// It is computed at each call (a lean transaction and a walk of one
// phase's flow): call it when a configuration is built, not per request.
func (w *WAF) ResponseInert() (ok bool, why string) {
	if w.Spec.ResponseInspection.Enabled {
		return false, "response inspection is on"
	}
	if w.fp == nil {
		return false, "no fast path (" + w.fpWhy + "): the response rules are not analysed"
	}
	tx := w.lean.NewTransaction()
	defer tx.Close()
	w.fp.initTX(tx)
	st, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return false, "the transaction state is not readable"
	}
	e := w.fp.newEval(st)
	defer w.fp.freeEval(e)
	// Without response inspection only phase 3 runs (Tx.ResponseBody,
	// phase 4, is called only when response bodies are inspected; the
	// logging phase does not run it either).
	if id := w.fp.reachableCheck(e, 3); id != 0 {
		return false, "rule " + strconv.Itoa(id) + " of phase 3 may match a response"
	}
	return true, ""
}

// reachableCheck returns the id of the first detection rule of phase that
// the phase's control flow may reach with the guards evaluated on e's
// state and that reads more than TX variables (0: none). It follows the
// flow as noMatch does, but counts every such reachable rule, whatever
// its target values.
func (p *fpProgram) reachableCheck(e *fpEval, phase int) int {
	e.beginPhase()
	pendA, pendB := make([]bool, p.markers), make([]bool, p.markers)
	reachA, reachB, follow := true, true, true
	for i := range p.flows[phase] {
		f := &p.flows[phase][i]
		switch {
		case f.marker >= 0:
			reachA = reachA || pendA[f.marker]
			reachB = reachB || pendB[f.marker]
			pendA[f.marker], pendB[f.marker] = false, false
		case f.skipN > 0:
			if f.giveUp {
				follow = false
			}
		case f.check != nil:
			reach := reachA
			if !f.check.covered {
				reach = reachB
			}
			if follow && !reach || txOnly(f.check) {
				continue
			}
			return f.check.id
		default: // a skip rule
			holds := f.guard != nil && e.guardHolds(f.guard)
			maybe := f.guard == nil
			if reachA && (holds || maybe) {
				if f.jump >= 0 {
					pendA[f.jump] = true
				}
				if holds {
					reachA = false
				}
			}
			if reachB && (holds || maybe) && f.jump >= 0 {
				pendB[f.jump] = true
			}
		}
	}
	return 0
}

// txOnly says every link of a detection rule reads only TX variables: what
// it decides does not depend on the response.
func txOnly(c *fpCheck) bool {
	if c.unknown != "" {
		return false
	}
	for _, l := range c.links {
		if l.unknown != "" {
			return false
		}
		for i := range l.vars {
			if l.vars[i].rv != variables.TX {
				return false
			}
		}
	}
	return true
}
