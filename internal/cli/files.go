package cli

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// maxManifestSize bounds one file read by -f.
const maxManifestSize = 32 << 20

// manifestExts are the file name endings read from a folder.
var manifestExts = []string{".yaml", ".yml", ".json"}

// readManifests decodes every object of the files (or folders, read
// recursively; "-" is stdin) with api/v1's strict decoder.
func readManifests(paths []string, stdin io.Reader) ([]v1.Object, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no file given: use -f FILE, -f DIR or -f -")
	}
	var objs []v1.Object
	for _, p := range paths {
		files, err := expandPath(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := readSource(f, stdin)
			if err != nil {
				return nil, err
			}
			got, err := v1.DecodeAll(data)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", sourceName(f), err)
			}
			objs = append(objs, got...)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects found in %s", strings.Join(paths, ", "))
	}
	return objs, nil
}

func sourceName(p string) string {
	if p == "-" {
		return "standard input"
	}
	return p
}

func readSource(p string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if p == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("reading standard input: no input")
		}
		r = stdin
	} else {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", sourceName(p), err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("reading %s: larger than %d MiB", sourceName(p), maxManifestSize>>20)
	}
	return data, nil
}

// expandPath lists the manifest files of p: p itself, or every
// .yaml/.yml/.json file under the folder p (hidden entries skipped), sorted.
func expandPath(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != p && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		for _, ext := range manifestExts {
			if strings.HasSuffix(strings.ToLower(d.Name()), ext) {
				files = append(files, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading folder %s: %w", p, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("folder %s holds no .yaml, .yml or .json file", p)
	}
	sort.Strings(files)
	return files, nil
}

// setNamespaces gives namespaced objects without a namespace the default
// one, and rejects a namespace on objects that have none, or a namespace
// other than an explicit -n.
func setNamespaces(objs []v1.Object, ns string, explicit bool) error {
	for _, o := range objs {
		tm, md := o.GetTypeMeta(), o.GetMetadata()
		ki, err := resolveKind(tm.Kind)
		if err != nil {
			return err
		}
		if ki.Scope != v1.ScopeNamespaced {
			if md.Namespace != "" {
				return fmt.Errorf("%s: %s is not namespaced: remove metadata.namespace", displayName(ki, md.Name), ki.Kind)
			}
			continue
		}
		switch {
		case md.Namespace == "":
			md.Namespace = ns
		case explicit && md.Namespace != ns:
			return fmt.Errorf("%s: the object's namespace %q does not match -n %q", displayName(ki, md.Name), md.Namespace, ns)
		}
	}
	return nil
}
