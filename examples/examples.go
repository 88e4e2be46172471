// Package examples embeds the ready configurations that the binary itself uses (demo.yaml is what `meridian dev` applies).
package examples

import _ "embed"

//go:embed demo.yaml
var demo []byte

// Demo returns examples/demo.yaml.
func Demo() []byte { return append([]byte(nil), demo...) }
