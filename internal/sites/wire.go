package sites

import (
	"encoding/json"
	"net/http"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// RegisterPath is served by Server.Handler (TLS, no client certificate).
const RegisterPath = "/sites/v1/register"

// RegisterRequest is the body of POST RegisterPath.
type RegisterRequest struct {
	// Token is the plaintext SiteToken.
	Token string `json:"token"`
	// Name is the site name the node asks for (a DNS-1123 label).
	Name string `json:"name"`
	// CSR is a PEM certificate request signed with the node's key; the
	// names it asks for are ignored.
	CSR string `json:"csr"`
	// NodeVersion is the meridian version the node runs.
	NodeVersion string `json:"nodeVersion,omitempty"`
	// CapabilityVersion is the protocol version the node understands.
	CapabilityVersion int `json:"capabilityVersion,omitempty"`
}

// RenewRequest asks for a new certificate; it is sent over mTLS with the
// current (or recently expired) certificate (distrib.RenewMethod).
type RenewRequest struct {
	CSR               string `json:"csr"`
	NodeVersion       string `json:"nodeVersion,omitempty"`
	CapabilityVersion int    `json:"capabilityVersion,omitempty"`
}

// Identity is what registration and renewal answer.
type Identity struct {
	Tenant string `json:"tenant"`
	Site   string `json:"site"`
	// State is pending, approved or decommissioned.
	State string `json:"state"`
	// Certificate is the PEM client certificate followed by the CA.
	Certificate string `json:"certificate"`
	// CA is the PEM console CA (trust anchor for the console's serving
	// certificate and for the node's own chain).
	CA       string    `json:"ca"`
	NotAfter time.Time `json:"notAfter"`
}

// errorBody is the Status-shaped error answer (same shape as the REST API).
type errorBody struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
}

// Error is a refused registration or renewal, with the HTTP code and the
// Status reason.
type Error struct {
	Code    int
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

func errf(code int, reason, msg string) *Error {
	return &Error{Code: code, Reason: reason, Message: msg}
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	if e.Code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(e.Code)
	json.NewEncoder(w).Encode(errorBody{APIVersion: v1.APIVersion, Kind: "Status", Status: "Failure",
		Code: e.Code, Reason: e.Reason, Message: e.Message})
}

// DecodeError turns a non-2xx answer body into an *Error (for clients).
func DecodeError(code int, body []byte) *Error {
	var b errorBody
	if json.Unmarshal(body, &b) == nil && b.Message != "" {
		return &Error{Code: code, Reason: b.Reason, Message: b.Message}
	}
	return &Error{Code: code, Reason: http.StatusText(code), Message: string(body)}
}
