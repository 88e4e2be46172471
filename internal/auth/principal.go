package auth

// SystemTenant is the tenant whose admins manage Tenant objects.
const SystemTenant = "system"

// PrincipalKind says how a principal authenticated.
type PrincipalKind string

const (
	// KindUser is a local user (password login, then a session token).
	KindUser PrincipalKind = "User"
	// KindAPIToken is an API token acting as itself.
	KindAPIToken PrincipalKind = "APIToken"
	// KindSystem is the console acting on its own behalf; it is allowed
	// everything in its tenant and must never be built from a credential.
	KindSystem PrincipalKind = "System"
)

// Principal is an authenticated caller.
type Principal struct {
	Tenant string
	Name   string
	Kind   PrincipalKind
	// Groups are matched by RoleBinding subjects of kind Group.
	Groups []string
}

// String returns "tenant/Kind/name", for logs and audit records.
func (p Principal) String() string {
	return p.Tenant + "/" + string(p.Kind) + "/" + p.Name
}
