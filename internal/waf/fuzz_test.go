package waf

import (
	"net/netip"
	"testing"
	"time"

	v1 "github.com/meridian-platform/meridian/api/v1"
)

// FuzzRequestBody feeds arbitrary bodies through the body processors
// (JSON, urlencoded, multipart, XML, raw) of a compiled firewall: no panic,
// a clear verdict status, bounded time.
func FuzzRequestBody(f *testing.F) {
	f.Add("application/json", []byte(`{"a":[1,{"b":"c"}]}`))
	f.Add("application/json", []byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add("application/x-www-form-urlencoded", []byte("a=1&b=%zz&&=&c"))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--x--\r\n"))
	f.Add("multipart/form-data; boundary=", []byte("--\r\n\r\n"))
	f.Add("text/xml", []byte(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`))
	f.Add("application/octet-stream", []byte{0, 1, 2, 0xff})
	w, err := NewCache(1).Get(v1.AppFirewallSpec{RequestBody: v1.WAFRequestBody{Limit: 64 << 10}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		start := time.Now()
		tx := w.NewTx("")
		tx.Connection(netip.MustParseAddrPort("192.0.2.1:1234"), netip.MustParseAddrPort("127.0.0.1:80"))
		v := tx.RequestHeaders("POST", "/upload", "HTTP/1.1", "shop.example.com", func(add func(n, v string)) {
			add("Host", "shop.example.com")
			add("Content-Type", ctype)
		})
		if v == nil {
			v = tx.RequestBody(body, true)
		}
		tx.Close()
		if v != nil && (v.Status < 400 || v.Status > 599) {
			t.Fatalf("verdict status %d", v.Status)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("body of %d bytes took %v", len(body), d)
		}
	})
}
