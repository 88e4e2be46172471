// Package wafstage plugs compiled AppFirewalls into the data-plane pipeline (the "waf" slot of dataplane.Order): request phases, optional response phases, block replies and security events.
package wafstage
