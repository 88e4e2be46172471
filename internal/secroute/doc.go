// Package secroute runs the security stages (authn, policy, ratelimit, waf) with the settings of the route each request matched.
package secroute
