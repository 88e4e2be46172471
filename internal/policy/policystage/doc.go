// Package policystage plugs compiled ServicePolicies into the data-plane pipeline (the "policy" slot of dataplane.Order).
package policystage
