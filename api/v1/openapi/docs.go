package openapi

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
)

// typeDocs holds the doc comments of a package's types and struct fields.
type typeDocs struct {
	types  map[string]string            // type name -> doc
	fields map[string]map[string]string // type name -> Go field name -> doc
}

// parseDocs reads the doc comments of the non-test Go files of fsys.
func parseDocs(fsys fs.FS) (*typeDocs, error) {
	d := &typeDocs{types: map[string]string{}, fields: map[string]map[string]string{}}
	files, err := fs.Glob(fsys, "*.go")
	if err != nil {
		return nil, fmt.Errorf("listing sources: %w", err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if text := commentText(doc); text != "" {
					d.types[ts.Name.Name] = text
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				fields := map[string]string{}
				for _, fld := range st.Fields.List {
					text := commentText(fld.Doc)
					if text == "" {
						text = commentText(fld.Comment)
					}
					if text == "" {
						continue
					}
					for _, n := range fld.Names {
						fields[n.Name] = text
					}
				}
				d.fields[ts.Name.Name] = fields
			}
		}
	}
	return d, nil
}

// commentText is a comment as one paragraph of plain text.
func commentText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

func (d *typeDocs) typeDoc(name string) string {
	if d == nil {
		return ""
	}
	return d.types[name]
}

func (d *typeDocs) fieldDoc(typeName, field string) string {
	if d == nil {
		return ""
	}
	return d.fields[typeName][field]
}
