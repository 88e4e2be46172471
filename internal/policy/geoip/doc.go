// Package geoip locates client addresses (country, autonomous system) in MaxMind DB files for service policies.
package geoip
