// Package rxlit computes, from a regular expression's syntax tree, literals one of which every match must contain, and checks inputs for them quickly: a sound prefilter that lets a regular expression run only when it can match.
package rxlit
