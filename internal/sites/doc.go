// Package sites registers nodes as sites (SiteToken + CSR), issues and renews their mTLS identities and checks them on every call.
package sites
