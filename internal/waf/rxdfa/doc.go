// Package rxdfa answers "does this regular expression match anywhere in the input" with a lazily built deterministic automaton over a compiled regexp/syntax program: a sound no-match check, run before Go's regexp engine, that costs one table lookup per input byte once warm.
package rxdfa
