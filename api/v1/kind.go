package v1

// KindInfo describes one kind for the console, the CLI and the OpenAPI
// generator. The table of every kind is returned by Kinds (registry.go).
type KindInfo struct {
	// Kind is the CamelCase kind name, e.g. "OriginPool".
	Kind string
	// Plural is the lower-case plural used in URLs, e.g. "originpools".
	Plural string
	// Singular is the lower-case singular, e.g. "originpool".
	Singular string
	// ShortNames are the kubectl-style short names, e.g. ["op"].
	ShortNames []string
	// Scope says where names are unique.
	Scope Scope
	// New returns a new empty object of the kind.
	New func() Object
}
