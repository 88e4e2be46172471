// Package geoiptest writes small MaxMind DB files for tests of GeoIP matching.
package geoiptest
