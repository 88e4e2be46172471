// Package proxyproto reads and writes PROXY protocol v1 and v2 headers (HAProxy's connection-address preamble).
package proxyproto
