// Package authstage plugs authentication into the data-plane pipeline (the "authn" slot of dataplane.Order) and shares the authenticated identities with the policy and rate-limit stages.
package authstage
