// Package apiserver serves Meridian's REST API (/api/v1): generic object handlers, authentication, RBAC, admission, audit hooks and watches.
package apiserver
