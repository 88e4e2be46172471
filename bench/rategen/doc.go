// Command rategen is a lean open-model HTTP/1.1 load generator: requests at a constant rate over keep-alive connections, latency measured from each request's intended send time.
package main
