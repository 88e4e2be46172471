// Package testfixture holds small helpers shared by tests of several packages (free loopback ports, polling, the security stages' request headers and event sink).
package testfixture
