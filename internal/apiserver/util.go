package apiserver

import (
	"bytes"
	"encoding/json"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
