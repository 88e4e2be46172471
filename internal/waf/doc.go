// Package waf compiles AppFirewalls into Coraza v3 instances running the OWASP Core Rule Set v4 (cached by content hash) and runs one transaction per request through them.
//
// # The no-match fast path
//
// Most requests match no detection rule, yet Coraza spends about 1.3 µs of
// bookkeeping on each of the ~400 rule evaluations of a benign GET. When a
// configuration has no custom rules, Compile also builds a fast path
// (fastparse.go, fastpath.go, fastrun.go, fasttf.go) whose verdicts are
// Coraza's by construction:
//
//   - The loaded SecLang (the rendered directives and the CRS files they
//     include) is read into a model of each rule: variables with keys, key
//     regexes, exclusions and counts; transformations; operator and
//     negation; phase; chain links; actions.
//   - Bookkeeping rules (no msg, no disruptive action but pass; the CRS
//     setup rules 900000-901999 may carry a msg, which Close leaves out of
//     the hits) run in a lean Coraza instance holding only them, with the
//     same engine settings. It parses the request as the full instance does
//     and keeps the TX collection exactly as the full instance would, as
//     long as no detection rule matches (a detection rule that does not
//     match has no effect, except the actions of chain links that matched;
//     see below). Skip rules whose range holds only detection rules stay
//     out of the lean instance.
//   - Bookkeeping whose effect on TX is known at compile time is folded
//     (fastfold.go): rules whose first link cannot match, and rules whose
//     setvars leave TX as it is, are left out of the lean instance; the
//     constant setvars of phase 1's setup and initialization (up to the
//     first rule that reads TX from the request or may remove rules at run
//     time) become the TX values a lean transaction starts with. At PL1,
//     14 of the 86 bookkeeping rules remain. A TX key regex selects only
//     names some lean rule can set (none: no values at all). Coraza runs every SecMarker in every phase like a SecAction:
//     the lean instance keeps only the markers its own rules jump to or
//     count with skip:N.
//   - After each phase of the lean transaction, every detection rule of the
//     phase that the phase's control flow can reach is checked against the
//     lean transaction's variables. The control flow is followed with the
//     paranoia-level guards (SecRule TX:x "@lt N" ... skipAfter) evaluated
//     on TX values that no later rule of the phase writes; other skip rules
//     "may jump"; a guard that a run-time ctl can remove counts only for the
//     rules the same ctl removes too. A rule is "certainly no match" when
//     one of its chain links is: for every value of its variables (a
//     superset: exclusions are not applied, key regexes are matched
//     case-insensitively), the transformations are computed and the
//     operator answers no match. Transformations and operators are
//     implemented where the result is exact (fasttf.go; @rx through
//     Meridian's own DFA/regexp operator, run only when one of the
//     literals every match of the expression contains occurs in the value:
//     each transformed value is scanned once for the literals of all @rx
//     operators, fastpm.go; @pm through an allocation-free Aho-Corasick
//     DFA over the same phrases as Coraza's, @detectSQLi/@detectXSS through
//     libinjection-go, numeric and string comparisons, @validateByteRange,
//     @validateUtf8Encoding); anything else is "unknown".
//   - Chain links that match run their non-disruptive actions in Coraza even
//     when a later link does not match. A link with such an action (setvar,
//     ctl, ...) that may match makes the rule unknown, except setvars into
//     TX names that only later links of the same chain read (CRS 920420,
//     920450): their values are computed from the link's captures and given
//     to the later links; a name another rule's key regex would match makes
//     the rule unknown. Later links reading MATCHED_VAR(S) or TX:0-9 get the
//     earlier links' candidate values.
//   - A bookkeeping rule whose first link reads what partial matches leave
//     behind (MATCHED_VAR*, TX:0-9, RULE, HIGHEST_SEVERITY) switches the fast
//     path off for the configuration.
//
// If every reachable detection rule of a phase certainly does not match,
// the transaction stays in the lean instance; otherwise everything given to
// the transaction so far (connection, request line and headers, body
// chunks, response headers and body) is replayed into a transaction of the
// full instance, which carries on alone. The lean transaction is also
// replayed when it reports an interruption (body limits) or a phase other
// than the expected one ran. Bodies are kept for a replay up to 256 KiB;
// past that the transaction moves to the full instance at once.
//
// Without a Coraza transaction: for the common request shape (no
// Content-Type, no body, no response body to inspect), a transaction
// starts natively (runstate.go, runlean.go): the variables the checks read are computed the way Coraza
// computes them and TX is kept in Go; the lean rules are followed in
// Coraza's order (guards evaluated, SecAction setvars applied, rules the
// checks prove not to match skipped, rules whose effects nothing reads
// ignored). A rule it cannot follow, a body or anything unusual replays
// what was recorded into the lean instance, which carries on as above.
// TestRunStateMatchesCoraza and FuzzRunState compare every variable with
// a lean transaction's after every phase.
//
// Across transactions (valcache.go): a link whose operator argument is a
// constant answers the same for equal values, so each compiled
// configuration keeps a bounded, lock-free table of values (admitted on
// their second sighting) with one bit per link, set when the checks proved
// that the link does not match the value; later transactions skip those
// links' transformations and operators for it. Only proofs of "no match"
// are kept, so the fallback to Coraza happens at the same rule with and
// without the cache (TestValCacheDifferential).
//
// The judges: the CRS regression suite (make crs) runs with the fast path,
// and TestFastPathDifferential sends every CRS regression request and a
// benign corpus through three configurations with and without the fast
// path, requiring equal outcomes and no request decided by the fast path
// alone that Coraza finds anything in; FuzzFastPath does the same for
// arbitrary requests.
package waf
