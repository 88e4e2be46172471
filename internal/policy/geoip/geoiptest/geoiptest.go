package geoiptest

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// WriteCountry writes a GeoLite2-Country-shaped database mapping each CIDR
// to an ISO country code (reserved and private ranges allowed).
func WriteCountry(path string, networks map[string]string) error {
	return write(path, "GeoLite2-Country", networks, func(v string) mmdbtype.DataType {
		return mmdbtype.Map{
			"country":            mmdbtype.Map{"iso_code": mmdbtype.String(v), "names": mmdbtype.Map{"en": mmdbtype.String("country " + v)}},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(v)},
		}
	})
}

// WriteCity writes a GeoLite2-City-shaped database (country inside a city
// record) mapping each CIDR to an ISO country code.
func WriteCity(path string, networks map[string]string) error {
	return write(path, "GeoLite2-City", networks, func(v string) mmdbtype.DataType {
		return mmdbtype.Map{
			"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Somewhere")}},
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(v)},
		}
	})
}

// WriteASN writes a GeoLite2-ASN-shaped database mapping each CIDR to an
// autonomous system number.
func WriteASN(path string, networks map[string]uint32) error {
	s := map[string]string{}
	nums := map[string]uint32{}
	for k, v := range networks {
		s[k] = fmt.Sprint(v)
		nums[fmt.Sprint(v)] = v
	}
	return write(path, "GeoLite2-ASN", s, func(v string) mmdbtype.DataType {
		return mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(nums[v]),
			"autonomous_system_organization": mmdbtype.String("AS" + v),
		}
	})
}

func write(path, typ string, networks map[string]string, rec func(string) mmdbtype.DataType) error {
	t, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: typ, IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		return err
	}
	for cidr, v := range networks {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return fmt.Errorf("network %q: %w", cidr, err)
		}
		if err := t.Insert(n, rec(v)); err != nil {
			return fmt.Errorf("inserting %s: %w", cidr, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := t.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
