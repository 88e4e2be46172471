package tlspeek

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// clientHello captures the first bytes a real crypto/tls client sends.
func clientHello(t testing.TB, sni string) []byte {
	c1, c2 := net.Pipe()
	go func() {
		tc := tls.Client(c1, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tc.Handshake()
		c1.Close()
	}()
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c2, buf); err != nil {
		t.Fatal(err)
	}
	n := int(buf[3])<<8 | int(buf[4])
	rest := make([]byte, n)
	if _, err := io.ReadFull(c2, rest); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	return append(buf, rest...)
}

func TestServerName(t *testing.T) {
	for _, sni := range []string{"api.example.com", ""} {
		hello := clientHello(t, sni)
		r := bufio.NewReaderSize(bytes.NewReader(append(hello, "tail"...)), 32<<10)
		got, err := ServerName(r)
		if err != nil || got != sni {
			t.Fatalf("sni %q: got %q, %v", sni, got, err)
		}
		all, _ := io.ReadAll(r)
		if !bytes.Equal(all[:len(hello)], hello) {
			t.Fatal("bytes consumed")
		}
	}
	if _, err := ServerName(bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n")))); err != ErrNotTLS {
		t.Fatalf("plain: %v", err)
	}
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(clientHello(f, "a.example.com")[5:])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseClientHello(b)
	})
}
