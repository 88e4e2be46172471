package policy

import (
	"net/netip"
	"slices"
)

// Geo locates client addresses (satisfied by *geoip.DB).
type Geo interface {
	HasCountry() bool
	HasASN() bool
	// Country returns the ISO 3166-1 alpha-2 code of the address's country.
	Country(a netip.Addr) ([2]byte, bool)
	// ASN returns the autonomous system number of the address.
	ASN(a netip.Addr) (uint32, bool)
}

// Options are what compiled policies may use.
type Options struct {
	// Geo answers country and ASN matches; without it (or without the
	// database a rule needs) a policy using them does not compile.
	Geo Geo
}

// geoState looks the client address up at most once per evaluation.
type geoState struct {
	geo          Geo
	cDone, aDone bool
	cOK, aOK     bool
	country      [2]byte
	asn          uint32
}

func (g *geoState) countryOf(r Request) ([2]byte, bool) {
	if !g.cDone {
		g.cDone = true
		g.country, g.cOK = g.geo.Country(r.ClientAddr())
	}
	return g.country, g.cOK
}

func (g *geoState) asnOf(r Request) (uint32, bool) {
	if !g.aDone {
		g.aDone = true
		g.asn, g.aOK = g.geo.ASN(r.ClientAddr())
	}
	return g.asn, g.aOK
}

// geoMatch is the country/ASN part of a matcher.
type geoMatch struct {
	countries, notCountries [][2]byte
	asns, notASNs           []uint32
}

func (m *geoMatch) empty() bool {
	return m == nil || len(m.countries)+len(m.notCountries)+len(m.asns)+len(m.notASNs) == 0
}

func codes(list []string) [][2]byte {
	out := make([][2]byte, 0, len(list))
	for _, c := range list {
		if len(c) == 2 {
			out = append(out, [2]byte{upperASCII(c[0]), upperASCII(c[1])})
		}
	}
	return out
}

func upperASCII(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func (m *geoMatch) match(r Request, g *geoState) bool {
	if len(m.countries)+len(m.notCountries) > 0 {
		c, ok := g.countryOf(r)
		if len(m.countries) > 0 && (!ok || !slices.Contains(m.countries, c)) {
			return false
		}
		if len(m.notCountries) > 0 && ok && slices.Contains(m.notCountries, c) {
			return false
		}
	}
	if len(m.asns)+len(m.notASNs) > 0 {
		n, ok := g.asnOf(r)
		if len(m.asns) > 0 && (!ok || !slices.Contains(m.asns, n)) {
			return false
		}
		if len(m.notASNs) > 0 && ok && slices.Contains(m.notASNs, n) {
			return false
		}
	}
	return true
}
