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
	e := w.newEval(st)
	defer w.fp.freeEval(e)
	// Without response inspection only phase 3 runs (Tx.ResponseBody,
	// phase 4, is called only when response bodies are inspected; the
	// logging phase does not run it either).
	if c := w.fp.firstReachable(e, 3, readsResponse); c != nil {
		return false, "rule " + strconv.Itoa(c.id) + " of phase 3 may match a response"
	}
	return true, ""
}

// readsResponse says a detection rule reads more than TX variables: what
// it decides may depend on the response.
func readsResponse(_ *fpEval, c *fpCheck) bool { return !txOnly(c) }

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
