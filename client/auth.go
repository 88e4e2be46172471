package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LoginRequest is a local user's password login.
type LoginRequest struct {
	Tenant   string `json:"tenant"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResult carries the session token.
type LoginResult struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Login exchanges a username and password for a session token. The
// client's own token is not needed (nor sent when empty).
func (c *Client) Login(ctx context.Context, in LoginRequest) (*LoginResult, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	out := &LoginResult{}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/login", body: body}, out); err != nil {
		return nil, err
	}
	if out.Token == "" {
		return nil, errors.New("login: the console answered without a token")
	}
	return out, nil
}

// UserInfo says who the credentials belong to.
type UserInfo struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Kind is "User" or "APIToken".
	Kind  string   `json:"kind"`
	Roles RoleList `json:"roles"`
}

// RoleList is the roles of a principal. The console may send plain role
// names or objects ({"role":"devops","namespace":"retail"}); both decode,
// the objects as "role@namespace" ("role" when tenant-wide).
type RoleList []string

// UnmarshalJSON accepts strings and role objects.
func (r *RoleList) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make(RoleList, 0, len(raw))
	for _, item := range raw {
		var s string
		if err := json.Unmarshal(item, &s); err == nil {
			out = append(out, s)
			continue
		}
		var o struct {
			Role      string `json:"role"`
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		}
		if err := json.Unmarshal(item, &o); err != nil {
			return err
		}
		name := o.Role
		if name == "" {
			name = o.Name
		}
		if o.Namespace != "" {
			name += "@" + o.Namespace
		}
		out = append(out, name)
	}
	*r = out
	return nil
}

// WhoAmI returns the principal behind the client's token.
func (c *Client) WhoAmI(ctx context.Context) (*UserInfo, error) {
	out := &UserInfo{}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/whoami"}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// AccessReviewRequest asks whether the caller may do Verb on Kind in Namespace.
type AccessReviewRequest struct {
	Verb      string `json:"verb"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
}

// AccessReviewResult is the console's answer.
type AccessReviewResult struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

// AccessReview asks the console whether the caller may do something.
func (c *Client) AccessReview(ctx context.Context, in AccessReviewRequest) (*AccessReviewResult, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	out := &AccessReviewResult{}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/accessreviews", body: body}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditFilter narrows an audit query; zero fields do not filter.
type AuditFilter struct {
	Principal string
	Verb      string
	Kind      string
	Namespace string
	Name      string
	Since     time.Time
	Until     time.Time
	Limit     int
}

func (f AuditFilter) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("principal", f.Principal)
	set("verb", f.Verb)
	set("kind", f.Kind)
	set("namespace", f.Namespace)
	set("name", f.Name)
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// AuditRecord is one audit record as the console sends it. Its schema
// belongs to the console; the record is kept as generic JSON so that a
// newer console's fields survive, with accessors for the common ones.
type AuditRecord map[string]any

// String returns the first string field among keys ("" when none).
func (r AuditRecord) String(keys ...string) string {
	for _, k := range keys {
		if v, ok := r[k]; ok && v != nil {
			switch t := v.(type) {
			case string:
				if t != "" {
					return t
				}
			case float64:
				return strconv.FormatFloat(t, 'f', -1, 64)
			case bool:
				return strconv.FormatBool(t)
			case map[string]any:
				// e.g. "principal": {"name": "alice", "kind": "User"}
				if s := AuditRecord(t).String("name", "id"); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// AuditRecordList is an answer of AuditRecords.
type AuditRecordList struct {
	Kind     string        `json:"kind"`
	Metadata ListMeta      `json:"metadata"`
	Items    []AuditRecord `json:"items"`
}

// AuditRecords lists the tenant's audit records matching f.
func (c *Client) AuditRecords(ctx context.Context, f AuditFilter) (*AuditRecordList, error) {
	out := &AuditRecordList{}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/auditrecords", query: f.query()}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditVerifyResult is the outcome of checking the tenant's audit chain.
type AuditVerifyResult struct {
	OK          bool         `json:"ok"`
	Records     int64        `json:"records"`
	Checkpoints int64        `json:"checkpoints"`
	FirstBad    *AuditBadRef `json:"firstBad,omitempty"`
}

// AuditBadRef names the first record that failed verification.
type AuditBadRef struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// AuditVerify asks the console to check the tenant's hash chain and
// signed checkpoints.
func (c *Client) AuditVerify(ctx context.Context) (*AuditVerifyResult, error) {
	out := &AuditVerifyResult{}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/audit/verify", body: []byte("{}")}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenAPI returns the console's OpenAPI 3.1 document.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	if err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/openapi.json"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Healthz checks that the console answers.
func (c *Client) Healthz(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}
