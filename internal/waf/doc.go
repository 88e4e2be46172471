// Package waf compiles AppFirewalls into Coraza v3 instances running the OWASP Core Rule Set v4 (cached by content hash) and runs one transaction per request through them.
package waf
