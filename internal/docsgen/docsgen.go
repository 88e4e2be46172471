package docsgen

import (
	"fmt"

	"github.com/meridian-platform/meridian/api/v1/openapi"
	"github.com/meridian-platform/meridian/internal/auth"
)

// Page is one generated documentation page.
type Page struct {
	// Path is relative to the repository root.
	Path string
	Gen  func() ([]byte, error)
}

// Pages returns every generated page.
func Pages() []Page {
	return []Page{
		{Path: "docs/kinds.md", Gen: openapi.Reference},
		{Path: "docs/roles.md", Gen: func() ([]byte, error) {
			return []byte(fmt.Sprintf("# Built-in roles\n\nGenerated from `internal/auth` (`go test ./internal/docsgen -update`).\n"+
				"Each role is bound with a RoleBinding, tenant-wide or to namespaces; custom Roles list rules of verbs x kinds x namespaces.\n\n%s", auth.BuiltinRolesMarkdown())), nil
		}},
	}
}
