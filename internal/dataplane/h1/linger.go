package h1

import "time"

// Bounds of a lingering close (RFC 9112 section 9.6), which both HTTP/1.1
// engines make after an answer that ends a connection while the client
// may still be sending: having shut its side, the server reads and drops
// what comes until the client closes, for at most LingerWait between
// reads and LingerMax in all (nginx's lingering_timeout and
// lingering_time, with its defaults).
const (
	LingerWait = 5 * time.Second
	LingerMax  = 30 * time.Second
)
