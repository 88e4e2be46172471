package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB answers country and ASN questions from up to two MaxMind DB files: a
// country database (GeoIP2/GeoLite2 Country or City, or any database whose
// records carry country.iso_code) and an ASN database (GeoLite2 ASN, or
// any database whose records carry autonomous_system_number). It is safe
// for concurrent use. Decoded records are cached by their offset in the
// file (many networks share one record), so that a look-up allocates only
// the first time a record is seen.
type DB struct {
	country *table[[2]byte]
	asn     *table[uint32]
}

// maxCached bounds the records cached per database; records beyond it are
// decoded on every look-up.
const maxCached = 1 << 18

type table[T any] struct {
	path   string
	r      *maxminddb.Reader
	decode func(maxminddb.Result) (T, bool, error)
	mu     sync.RWMutex
	cache  map[uintptr]entry[T]
}

type entry[T any] struct {
	v  T
	ok bool
}

func (t *table[T]) lookup(a netip.Addr) (T, bool) {
	var zero T
	if t == nil || !a.IsValid() {
		return zero, false
	}
	res := t.r.Lookup(a.Unmap().WithZone(""))
	if !res.Found() {
		return zero, false
	}
	off := res.Offset()
	t.mu.RLock()
	e, hit := t.cache[off]
	t.mu.RUnlock()
	if hit {
		return e.v, e.ok
	}
	v, ok, err := t.decode(res)
	if err != nil {
		return zero, false
	}
	t.mu.Lock()
	if t.cache == nil {
		t.cache = map[uintptr]entry[T]{}
	}
	if len(t.cache) < maxCached {
		t.cache[off] = entry[T]{v, ok}
	}
	t.mu.Unlock()
	return v, ok
}

func decodeCountry(res maxminddb.Result) ([2]byte, bool, error) {
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		Registered struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"registered_country"`
	}
	if err := res.Decode(&rec); err != nil {
		return [2]byte{}, false, err
	}
	code := rec.Country.ISOCode
	if code == "" {
		code = rec.Registered.ISOCode
	}
	if len(code) != 2 {
		return [2]byte{}, false, nil
	}
	return [2]byte{upper(code[0]), upper(code[1])}, true, nil
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func decodeASN(res maxminddb.Result) (uint32, bool, error) {
	var n uint32
	if err := res.DecodePath(&n, "autonomous_system_number"); err != nil {
		return 0, false, err
	}
	return n, n != 0, nil
}

// Open opens the database files. Each path's kind is taken from the
// database type in its metadata: a type naming ASN is an ASN database,
// any other a country database (City databases carry countries too). At
// most one database of each kind may be given.
func Open(paths ...string) (*DB, error) {
	db := &DB{}
	for _, p := range paths {
		if p == "" {
			continue
		}
		r, err := maxminddb.Open(p)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("opening GeoIP database %s: %w", p, err)
		}
		typ := r.Metadata.DatabaseType
		if strings.Contains(strings.ToUpper(typ), "ASN") {
			if db.asn != nil {
				r.Close()
				db.Close()
				return nil, fmt.Errorf("opening GeoIP database %s: a second ASN database (type %q; %s is one already)", p, typ, db.asn.path)
			}
			db.asn = &table[uint32]{path: p, r: r, decode: decodeASN}
			continue
		}
		if db.country != nil {
			r.Close()
			db.Close()
			return nil, fmt.Errorf("opening GeoIP database %s: a second country database (type %q; %s is one already)", p, typ, db.country.path)
		}
		db.country = &table[[2]byte]{path: p, r: r, decode: decodeCountry}
	}
	if db.country == nil && db.asn == nil {
		return nil, errors.New("opening GeoIP databases: no file given")
	}
	return db, nil
}

// OpenFiles opens a country database and an ASN database, either of which
// may be "" (but not both); it checks that each file is of the kind its
// role needs.
func OpenFiles(countryPath, asnPath string) (*DB, error) {
	db, err := Open(countryPath, asnPath)
	if err != nil {
		return nil, err
	}
	if countryPath != "" && (db.country == nil || db.country.path != countryPath) {
		db.Close()
		return nil, fmt.Errorf("GeoIP database %s: is an ASN database, not a country or city database", countryPath)
	}
	if asnPath != "" && (db.asn == nil || db.asn.path != asnPath) {
		db.Close()
		return nil, fmt.Errorf("GeoIP database %s: is not an ASN database (its type does not name ASN)", asnPath)
	}
	return db, nil
}

// Close releases the files.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	var errs []error
	if db.country != nil {
		errs = append(errs, db.country.r.Close())
	}
	if db.asn != nil {
		errs = append(errs, db.asn.r.Close())
	}
	return errors.Join(errs...)
}

// HasCountry reports whether a country database is loaded.
func (db *DB) HasCountry() bool { return db != nil && db.country != nil }

// HasASN reports whether an ASN database is loaded.
func (db *DB) HasASN() bool { return db != nil && db.asn != nil }

// Country returns the ISO 3166-1 alpha-2 code of the country a is located
// in (ok false when unknown or without a country database).
func (db *DB) Country(a netip.Addr) ([2]byte, bool) {
	if db == nil {
		return [2]byte{}, false
	}
	return db.country.lookup(a)
}

// ASN returns the autonomous system number a belongs to (ok false when
// unknown or without an ASN database).
func (db *DB) ASN(a netip.Addr) (uint32, bool) {
	if db == nil {
		return 0, false
	}
	return db.asn.lookup(a)
}

// Describe says which databases are loaded, for logs.
func (db *DB) Describe() string {
	var parts []string
	if db.HasCountry() {
		parts = append(parts, fmt.Sprintf("country: %s (%s)", db.country.path, db.country.r.Metadata.DatabaseType))
	}
	if db.HasASN() {
		parts = append(parts, fmt.Sprintf("asn: %s (%s)", db.asn.path, db.asn.r.Metadata.DatabaseType))
	}
	return strings.Join(parts, ", ")
}
