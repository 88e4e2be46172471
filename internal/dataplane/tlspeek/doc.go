// Package tlspeek reads the server name (SNI) from a TLS ClientHello without consuming it, for TLS passthrough routing.
package tlspeek
