package evloop

// Rewrite changes the request head a loop sends to the origin
// (Target.Rewrite), as a route's prefixRewrite and hostRewrite do.
type Rewrite struct {
	// Path, when set, replaces the first Strip bytes of the request's
	// path (all of it when Strip < 0); the query stays. A path starting
	// with "//" after the change loses one slash.
	Path  string
	Strip int
	// Host, when set, replaces the Host field's value.
	Host string
}
