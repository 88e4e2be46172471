package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Cause is one field-level problem reported in a Status error.
type Cause struct {
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// StatusError is a non-2xx answer of the console, decoded from its Status body.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Reason is machine-readable (NotFound, Conflict, Invalid, ...).
	Reason string
	// Message is for people.
	Message string
	// Kind and Name identify the object concerned, when the console said.
	Kind, Name string
	// Causes lists field-level problems (for Invalid).
	Causes []Cause
	// RetryAfter is the wait the console asked for (429), zero otherwise.
	RetryAfter time.Duration
	// retryAfterSet tells "Retry-After: 0" from no header.
	retryAfterSet bool
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = fmt.Sprintf("%s (HTTP %d)", e.Reason, e.Code)
	}
	if len(e.Causes) == 0 {
		return msg
	}
	var b strings.Builder
	b.WriteString(msg)
	for _, c := range e.Causes {
		b.WriteString("\n")
		b.WriteString(c.String())
	}
	return b.String()
}

func (c Cause) String() string {
	if c.Field == "" {
		return c.Message
	}
	return c.Field + ": " + c.Message
}

// statusBody is the wire form of a Status.
type statusBody struct {
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details *struct {
		Kind   string  `json:"kind"`
		Name   string  `json:"name"`
		Causes []Cause `json:"causes"`
	} `json:"details"`
}

// decodeStatusError builds a StatusError from a non-2xx response body. A body
// that is not a Status (a proxy's HTML page, say) still gives a usable error.
func decodeStatusError(code int, header http.Header, body []byte) *StatusError {
	se := &StatusError{Code: code}
	var st statusBody
	if err := json.Unmarshal(body, &st); err == nil && st.Kind == "Status" {
		se.Reason = st.Reason
		se.Message = st.Message
		if st.Code != 0 {
			se.Code = st.Code
		}
		if st.Details != nil {
			se.Kind, se.Name, se.Causes = st.Details.Kind, st.Details.Name, st.Details.Causes
		}
	} else {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "..."
		}
		if msg == "" {
			msg = http.StatusText(code)
		}
		se.Message = fmt.Sprintf("the server answered %d %s: %s", code, http.StatusText(code), msg)
	}
	if se.Reason == "" {
		se.Reason = v1.StatusReasonForCode(se.Code)
	}
	if ra := header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			se.RetryAfter, se.retryAfterSet = time.Duration(s)*time.Second, true
		} else if t, err := http.ParseTime(ra); err == nil {
			se.RetryAfter, se.retryAfterSet = max(time.Until(t), 0), true
		}
	}
	return se
}

// ReasonOf returns the Status reason of err, or "" when err is not a StatusError.
func ReasonOf(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Reason
	}
	return ""
}

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return ReasonOf(err) == v1.StatusReasonNotFound }

// IsConflict reports whether err is an optimistic-concurrency conflict (409).
func IsConflict(err error) bool { return ReasonOf(err) == v1.StatusReasonConflict }

// IsAlreadyExists reports whether a create failed because the name is taken.
func IsAlreadyExists(err error) bool { return ReasonOf(err) == v1.StatusReasonAlreadyExists }

// IsInvalid reports whether the object was rejected by validation.
func IsInvalid(err error) bool { return ReasonOf(err) == v1.StatusReasonInvalid }

// IsForbidden reports whether RBAC denied the request.
func IsForbidden(err error) bool { return ReasonOf(err) == v1.StatusReasonForbidden }

// IsUnauthorized reports whether the credentials were missing, unknown or expired.
func IsUnauthorized(err error) bool { return ReasonOf(err) == v1.StatusReasonUnauthorized }

// IsGone reports whether a resourceVersion is too old (compacted).
func IsGone(err error) bool { return ReasonOf(err) == v1.StatusReasonGone }

// IsTooManyRequests reports whether the tenant's rate limit was hit.
func IsTooManyRequests(err error) bool { return ReasonOf(err) == v1.StatusReasonTooManyRequests }
