package v1

import "net/http"

// Status reasons: the machine-readable "reason" of the Status body of every
// error answer of the REST API (Kubernetes conventions). The console sends
// them and the client tests them.
const (
	StatusReasonBadRequest            = "BadRequest"
	StatusReasonUnauthorized          = "Unauthorized"
	StatusReasonForbidden             = "Forbidden"
	StatusReasonNotFound              = "NotFound"
	StatusReasonAlreadyExists         = "AlreadyExists"
	StatusReasonConflict              = "Conflict"
	StatusReasonInvalid               = "Invalid"
	StatusReasonGone                  = "Gone"
	StatusReasonRequestEntityTooLarge = "RequestEntityTooLarge"
	StatusReasonUnsupportedMediaType  = "UnsupportedMediaType"
	StatusReasonTooManyRequests       = "TooManyRequests"
	StatusReasonMethodNotAllowed      = "MethodNotAllowed"
	StatusReasonInternalError         = "InternalError"
)

// StatusErrorCodes returns the HTTP status codes of the API's error
// answers, in increasing order.
func StatusErrorCodes() []int {
	return []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusConflict, http.StatusGone, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusTooManyRequests,
		http.StatusInternalServerError}
}

// StatusReasonForCode returns the reason an error answer with HTTP status
// code carries by default (409 is Conflict; AlreadyExists is the more
// precise reason of a create); InternalError for any other code.
func StatusReasonForCode(code int) string {
	switch code {
	case http.StatusBadRequest:
		return StatusReasonBadRequest
	case http.StatusUnauthorized:
		return StatusReasonUnauthorized
	case http.StatusForbidden:
		return StatusReasonForbidden
	case http.StatusNotFound:
		return StatusReasonNotFound
	case http.StatusMethodNotAllowed:
		return StatusReasonMethodNotAllowed
	case http.StatusConflict:
		return StatusReasonConflict
	case http.StatusGone:
		return StatusReasonGone
	case http.StatusRequestEntityTooLarge:
		return StatusReasonRequestEntityTooLarge
	case http.StatusUnsupportedMediaType:
		return StatusReasonUnsupportedMediaType
	case http.StatusUnprocessableEntity:
		return StatusReasonInvalid
	case http.StatusTooManyRequests:
		return StatusReasonTooManyRequests
	}
	return StatusReasonInternalError
}
