package v1

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HealthCheck is a reusable active health check for origin pools
// (referenced by OriginPool.spec.healthCheckRef).
type HealthCheck struct {
	Envelope
	Spec   HealthCheckSpec `json:"spec"`
	Status Status          `json:"status,omitempty"`
}

// HealthCheckSpec describes how endpoints are probed. Exactly one of HTTP or
// TCP is set. The same struct is used inline in OriginPool.spec.healthCheck.
type HealthCheckSpec struct {
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	TCP  *TCPHealthCheck  `json:"tcp,omitempty"`
	// Interval between probes of one endpoint (default 5s).
	Interval Duration `json:"interval,omitempty"`
	// Timeout of one probe (default 1s).
	Timeout Duration `json:"timeout,omitempty"`
	// HealthyThreshold is the number of consecutive successes that mark an
	// unhealthy endpoint healthy again (default 2).
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is the number of consecutive failures that mark a
	// healthy endpoint unhealthy (default 3).
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	// Jitter is the largest random delay added to each interval (default 0).
	Jitter Duration `json:"jitter,omitempty"`
}

// HTTPHealthCheck probes with an HTTP request.
type HTTPHealthCheck struct {
	// Path of the probe request (default "/").
	Path string `json:"path,omitempty"`
	// Host header of the probe; default is the endpoint address.
	Host string `json:"host,omitempty"`
	// Method of the probe (default GET).
	Method string `json:"method,omitempty"`
	// ExpectedStatus lists the status codes that count as healthy
	// (default [200]).
	ExpectedStatus []int `json:"expectedStatus,omitempty"`
}

// TCPHealthCheck probes by opening a TCP connection, optionally sending
// bytes and expecting a reply that starts with Expect.
type TCPHealthCheck struct {
	Send   string `json:"send,omitempty"`
	Expect string `json:"expect,omitempty"`
}

// Default fills in defaults.
func (h *HealthCheck) Default() { h.Spec.Default() }

// Validate checks the object.
func (h *HealthCheck) Validate() FieldErrors { return h.Spec.validate("spec") }

// Default fills in health-check defaults.
func (s *HealthCheckSpec) Default() {
	if s.HTTP == nil && s.TCP == nil {
		s.HTTP = &HTTPHealthCheck{}
	}
	if s.HTTP != nil {
		if s.HTTP.Path == "" {
			s.HTTP.Path = "/"
		}
		if s.HTTP.Method == "" {
			s.HTTP.Method = http.MethodGet
		}
		if len(s.HTTP.ExpectedStatus) == 0 {
			s.HTTP.ExpectedStatus = []int{200}
		}
	}
	if s.Interval.Duration == 0 {
		s.Interval.Duration = 5 * time.Second
	}
	if s.Timeout.Duration == 0 {
		s.Timeout.Duration = time.Second
	}
	if s.HealthyThreshold == 0 {
		s.HealthyThreshold = 2
	}
	if s.UnhealthyThreshold == 0 {
		s.UnhealthyThreshold = 3
	}
}

func (s *HealthCheckSpec) validate(path string) FieldErrors {
	var errs FieldErrors
	switch {
	case s.HTTP != nil && s.TCP != nil:
		errs = append(errs, FieldError{Field: path + ".tcp", Reason: ReasonForbidden, Message: "only one of http and tcp may be set"})
	case s.HTTP == nil && s.TCP == nil:
		errs = append(errs, Required(path+".http", "one of http or tcp is required"))
	}
	if h := s.HTTP; h != nil {
		p := path + ".http"
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			errs = append(errs, Invalid(p+".path", h.Path, "must start with /"))
		}
		if h.Method != "" && !dpIsToken(h.Method) {
			errs = append(errs, Invalid(p+".method", h.Method, "must be an HTTP method token"))
		}
		if h.Host != "" && !dpValidHeaderValue(h.Host) {
			errs = append(errs, Invalid(p+".host", h.Host, "must be a valid host"))
		}
		for i, c := range h.ExpectedStatus {
			if c < 100 || c > 599 {
				errs = append(errs, Invalid(fmt.Sprintf("%s.expectedStatus[%d]", p, i), c, "must be between 100 and 599"))
			}
		}
	}
	if s.Interval.Duration != 0 && s.Interval.Duration < 100*time.Millisecond {
		errs = append(errs, Invalid(path+".interval", s.Interval.Duration, "must be at least 100ms"))
	}
	if s.Timeout.Duration != 0 && s.Interval.Duration != 0 && s.Timeout.Duration > s.Interval.Duration {
		errs = append(errs, Invalid(path+".timeout", s.Timeout.Duration, "must not exceed interval"))
	}
	if s.HealthyThreshold < 0 {
		errs = append(errs, Invalid(path+".healthyThreshold", s.HealthyThreshold, "must not be negative"))
	}
	if s.UnhealthyThreshold < 0 {
		errs = append(errs, Invalid(path+".unhealthyThreshold", s.UnhealthyThreshold, "must not be negative"))
	}
	if s.Jitter.Duration != 0 && s.Interval.Duration != 0 && s.Jitter.Duration > s.Interval.Duration {
		errs = append(errs, Invalid(path+".jitter", s.Jitter.Duration, "must not exceed interval"))
	}
	return errs
}

// dpIsToken reports whether s is an RFC 9110 token.
func dpIsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !dpTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func dpTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// dpValidHeaderValue reports whether s may be sent as a header value.
func dpValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
