package node

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// DefaultNamespace is given to objects of a standalone configuration that
// name no namespace.
const DefaultNamespace = "default"

// configFiles lists the YAML/JSON files of path (a file, or a folder read
// recursively), sorted.
func configFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !strings.HasPrefix(d.Name(), ".") {
				files = append(files, p)
			}
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// signature changes when a file is added, removed or modified.
func signature(path string) string {
	files, err := configFiles(path)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&b, "%s:gone;", f)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// fileObjects is what one file held.
type fileObjects struct {
	objs []v1.Object
	err  error
}

// loadFiles decodes every file; a file that does not decode is reported
// and contributes nothing (the caller keeps its last good objects).
func loadFiles(path string) (map[string]fileObjects, error) {
	files, err := configFiles(path)
	if err != nil {
		return nil, fmt.Errorf("listing configuration %s: %w", path, err)
	}
	out := make(map[string]fileObjects, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			out[f] = fileObjects{err: fmt.Errorf("reading %s: %w", f, err)}
			continue
		}
		objs, err := v1.DecodeAll(data)
		if err != nil {
			out[f] = fileObjects{err: fmt.Errorf("%s: %w", f, err)}
			continue
		}
		for _, o := range objs {
			ki, ok := v1.KindOf(o)
			if m := o.GetMetadata(); m.Namespace == "" && ok && ki.Scope == v1.ScopeNamespaced {
				m.Namespace = DefaultNamespace
			}
		}
		out[f] = fileObjects{objs: objs}
	}
	return out, nil
}

func objectKey(o v1.Object) string {
	m := o.GetMetadata()
	return o.GetTypeMeta().Kind + " " + m.Namespace + "/" + m.Name
}
