package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// Status is the body of every non-2xx answer.
type Status struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Status     string         `json:"status"`
	Code       int            `json:"code"`
	Reason     string         `json:"reason"`
	Message    string         `json:"message"`
	Details    *StatusDetails `json:"details,omitempty"`
}

// StatusDetails names the object concerned and the field causes.
type StatusDetails struct {
	Kind   string          `json:"kind,omitempty"`
	Name   string          `json:"name,omitempty"`
	Causes []v1.FieldError `json:"causes,omitempty"`
}

// apiError is an error that carries its HTTP answer.
type apiError struct {
	code       int
	reason     string
	message    string
	details    *StatusDetails
	retryAfter int // seconds, for 429
}

func (e *apiError) Error() string { return e.message }

func newErr(code int, reason, format string, args ...any) *apiError {
	return &apiError{code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

func errBadRequest(format string, args ...any) *apiError {
	return newErr(http.StatusBadRequest, v1.StatusReasonBadRequest, format, args...)
}

func errNotFound(kind, name string) *apiError {
	e := newErr(http.StatusNotFound, v1.StatusReasonNotFound, "%s %q not found", kind, name)
	e.details = &StatusDetails{Kind: kind, Name: name}
	return e
}

func errNamespaceNotFound(ns string) *apiError {
	e := newErr(http.StatusNotFound, v1.StatusReasonNotFound, "Namespace %q not found", ns)
	e.details = &StatusDetails{Kind: "Namespace", Name: ns}
	return e
}

func errAlreadyExists(kind, name string) *apiError {
	e := newErr(http.StatusConflict, v1.StatusReasonAlreadyExists, "%s %q already exists", kind, name)
	e.details = &StatusDetails{Kind: kind, Name: name}
	return e
}

func errConflict(kind, name, format string, args ...any) *apiError {
	e := newErr(http.StatusConflict, v1.StatusReasonConflict, format, args...)
	e.details = &StatusDetails{Kind: kind, Name: name}
	return e
}

func errInvalid(kind, name string, causes v1.FieldErrors) *apiError {
	msg := fmt.Sprintf("%s %q is invalid: %s", kind, name, causes.Error())
	if name == "" {
		msg = fmt.Sprintf("%s is invalid: %s", kind, causes.Error())
	}
	e := newErr(http.StatusUnprocessableEntity, v1.StatusReasonInvalid, "%s", msg)
	e.details = &StatusDetails{Kind: kind, Name: name, Causes: causes}
	return e
}

func errInternal(err error) *apiError {
	return newErr(http.StatusInternalServerError, v1.StatusReasonInternalError, "internal error: %v", err)
}

func errUnauthorized(msg string) *apiError {
	return newErr(http.StatusUnauthorized, v1.StatusReasonUnauthorized, "%s", msg)
}

func errForbidden(format string, args ...any) *apiError {
	return newErr(http.StatusForbidden, v1.StatusReasonForbidden, format, args...)
}

func errMethod(method, path string) *apiError {
	return newErr(http.StatusMethodNotAllowed, v1.StatusReasonMethodNotAllowed, "method %s is not allowed on %s", method, path)
}

func errGone(format string, args ...any) *apiError {
	return newErr(http.StatusGone, v1.StatusReasonGone, format, args...)
}

// toAPIError turns any error into an apiError; unknown errors become 500.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return errInternal(err)
}

// writeError writes the JSON Status body for err.
func writeError(w http.ResponseWriter, err error) {
	ae := toAPIError(err)
	st := Status{
		APIVersion: v1.APIVersion,
		Kind:       "Status",
		Status:     "Failure",
		Code:       ae.code,
		Reason:     ae.reason,
		Message:    ae.message,
		Details:    ae.details,
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	if ae.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, POST, PUT, PATCH, DELETE")
	}
	writeJSON(w, ae.code, st)
}

// writeJSON writes v as JSON with the given status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"apiVersion":"meridian/v1","kind":"Status","status":"Failure","code":500,"reason":"InternalError","message":"encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
