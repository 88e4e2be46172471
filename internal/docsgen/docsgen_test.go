package docsgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated pages under docs/")

func TestDocsUpToDate(t *testing.T) {
	for _, p := range Pages() {
		want, err := p.Gen()
		if err != nil {
			t.Fatalf("%s: %v", p.Path, err)
		}
		path := filepath.Join("..", "..", p.Path)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./internal/docsgen -update)", p.Path, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go test ./internal/docsgen -update", p.Path)
		}
	}
}
