package node

import (
	"testing"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/internal/dataplane/config"
)

// The shipped examples must decode, validate and compile without errors.
func TestExamplesCompile(t *testing.T) {
	for _, path := range []string{"../../examples/standalone", "../../examples/demo.yaml"} {
		files, err := loadFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		var objs []v1.Object
		for f, fo := range files {
			if fo.err != nil {
				t.Fatalf("%s: %v", f, fo.err)
			}
			for _, o := range fo.objs {
				v1.DefaultObject(o) // as the node does before validating
				if errs := v1.ValidateObject(o); len(errs) > 0 {
					t.Fatalf("%s: %s: %v", f, objectKey(o), errs)
				}
			}
			objs = append(objs, fo.objs...)
		}
		tab := config.Compile(objs)
		if len(tab.Errors) > 0 {
			t.Fatalf("%s: %v", path, tab.Errors)
		}
		if len(tab.HTTP) == 0 {
			t.Fatalf("%s: no HTTP listener", path)
		}
	}
}
