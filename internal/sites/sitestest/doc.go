// Package sitestest starts a real in-process console for the tests of site registration, distribution and the node agent.
package sitestest
