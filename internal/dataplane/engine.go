package dataplane

// DefaultHTTP1Engine is the HTTP/1.1 engine of Options.HTTP1Engine "": the
// event-loop engine where this build has it (Linux), else the goroutine
// engine.
func DefaultHTTP1Engine() string {
	if evloopSupported {
		return EngineEvloop
	}
	return EngineGoroutine
}
