package geoip_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian-platform/meridian/internal/policy/geoip"
	"github.com/meridian-platform/meridian/internal/policy/geoip/geoiptest"
)

func writeDBs(t *testing.T) (country, city, asn string) {
	t.Helper()
	dir := t.TempDir()
	country, city, asn = filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	nets := map[string]string{"203.0.113.0/24": "DE", "198.51.100.0/25": "FR", "2001:db8:1::/48": "JP", "127.0.0.0/8": "DE"}
	if err := geoiptest.WriteCountry(country, nets); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.WriteCity(city, nets); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.WriteASN(asn, map[string]uint32{"203.0.113.0/25": 64496, "2001:db8::/32": 64511}); err != nil {
		t.Fatal(err)
	}
	return
}

func TestLookups(t *testing.T) {
	country, city, asn := writeDBs(t)
	for _, files := range [][]string{{country, asn}, {asn, city}} {
		db, err := geoip.Open(files...)
		if err != nil {
			t.Fatal(err)
		}
		if !db.HasCountry() || !db.HasASN() {
			t.Fatalf("%v: HasCountry %v HasASN %v", files, db.HasCountry(), db.HasASN())
		}
		for _, tc := range []struct {
			addr    string
			country string
			asn     uint32
		}{
			{"203.0.113.7", "DE", 64496},
			{"203.0.113.200", "DE", 0},
			{"198.51.100.1", "FR", 0},
			{"198.51.100.200", "", 0},
			{"::ffff:203.0.113.9", "DE", 64496},
			{"2001:db8:1::1", "JP", 64511},
			{"2001:db8:2::1", "", 64511},
			{"192.0.2.1", "", 0},
		} {
			a := netip.MustParseAddr(tc.addr)
			for range 2 { // second time from the cache
				c, ok := db.Country(a)
				if got := string(c[:]); ok != (tc.country != "") || ok && got != tc.country {
					t.Errorf("%s: country %q %v, want %q", tc.addr, got, ok, tc.country)
				}
				n, ok := db.ASN(a)
				if ok != (tc.asn != 0) || n != tc.asn {
					t.Errorf("%s: ASN %d %v, want %d", tc.addr, n, ok, tc.asn)
				}
			}
		}
		if _, ok := db.Country(netip.Addr{}); ok {
			t.Error("the zero address has a country")
		}
		db.Close()
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	country, _, _ := writeDBs(t)
	// Many distinct records, so that offsets are large.
	asns := map[string]uint32{}
	for i := range 1000 {
		asns[fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)] = uint32(65000 + i)
	}
	asns["203.0.113.0/25"] = 64496
	asn := filepath.Join(t.TempDir(), "big-asn.mmdb")
	if err := geoiptest.WriteASN(asn, asns); err != nil {
		t.Fatal(err)
	}
	db, err := geoip.Open(country, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, ok := db.ASN(netip.MustParseAddr("10.3.200.9")); !ok || n != 65000+3*256+200 {
		t.Fatalf("ASN of 10.3.200.9 = %d %v", n, ok)
	}
	a := netip.MustParseAddr("203.0.113.7")
	db.Country(a)
	db.ASN(a)
	n := testing.AllocsPerRun(200, func() {
		if c, ok := db.Country(a); !ok || c != [2]byte{'D', 'E'} {
			t.Fatal("wrong country")
		}
		if n, ok := db.ASN(a); !ok || n != 64496 {
			t.Fatal("wrong ASN")
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per cached look-up", n)
	}
}

func TestOpenErrors(t *testing.T) {
	country, _, asn := writeDBs(t)
	for _, tc := range []struct {
		name  string
		open  func() (*geoip.DB, error)
		wants string
	}{
		{"missing", func() (*geoip.DB, error) { return geoip.Open("/nonexistent/x.mmdb") }, "/nonexistent/x.mmdb"},
		{"not mmdb", func() (*geoip.DB, error) { return geoip.Open("geoip.go") }, "geoip.go"},
		{"two country", func() (*geoip.DB, error) { return geoip.Open(country, country) }, "second country database"},
		{"none", func() (*geoip.DB, error) { return geoip.Open() }, "no file"},
		{"asn as country", func() (*geoip.DB, error) { return geoip.OpenFiles(asn, "") }, "is an ASN database"},
		{"country as asn", func() (*geoip.DB, error) { return geoip.OpenFiles("", country) }, "is not an ASN database"},
	} {
		if _, err := tc.open(); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wants)
		}
	}
	if db, err := geoip.OpenFiles(country, asn); err != nil || !db.HasASN() || !db.HasCountry() {
		t.Fatalf("OpenFiles: %v", err)
	}
}

func BenchmarkCountryASN(b *testing.B) {
	dir := b.TempDir()
	country, asn := filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "a.mmdb")
	nets := map[string]string{}
	asns := map[string]uint32{}
	codes := []string{"DE", "FR", "US", "JP", "BR", "IN"}
	for i := range 4096 {
		cidr := fmt.Sprintf("%d.%d.%d.0/24", 11+i/65536, (i/256)%256, i%256)
		nets[cidr] = codes[i%len(codes)]
		asns[cidr] = uint32(64512 + i)
	}
	if err := geoiptest.WriteCountry(country, nets); err != nil {
		b.Fatal(err)
	}
	if err := geoiptest.WriteASN(asn, asns); err != nil {
		b.Fatal(err)
	}
	db, err := geoip.Open(country, asn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{11, byte(i / 64), byte(i * 7), byte(i)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a := addrs[i%len(addrs)]
			db.Country(a)
			db.ASN(a)
			i++
		}
	})
}
