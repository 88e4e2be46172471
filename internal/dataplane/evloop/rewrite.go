package evloop

// Rewrite changes the request head a loop sends to the origin
// (Target.Rewrite), as a route's prefixRewrite, hostRewrite and
// requestHeaders do.
type Rewrite struct {
	// Path, when set, replaces the first Strip bytes of the request's
	// path (all of it when Strip < 0); the query stays. A path starting
	// with "//" after the change loses one slash.
	Path  string
	Strip int
	// Host, when set, replaces the Host field's value.
	Host string
	// Remove drops the fields so named; then Set replaces the value of
	// the first field of each name (adding the field when there is none)
	// and Add adds fields after the others. Names are compared ASCII
	// case-insensitively; the caller keeps the fields the loop writes
	// itself (framing, Host, forwarding, request id) out of them.
	Remove   []string
	Set, Add []Field
}

// Field is a header field.
type Field struct{ Name, Value string }

// Answerer writes the loop's own answer to a request that goes to no
// origin (Target.Answer: a redirect, say).
type Answerer interface {
	// Answer appends the whole response (head and body) to b, with
	// "Connection: close" when closing is set, and returns it, its status
	// and the body bytes it counts (Config.Observe). r is valid only
	// during the call.
	Answer(b []byte, r *Request, closing bool) (resp []byte, status, body int)
}
