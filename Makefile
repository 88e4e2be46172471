# Meridian build and test entry points. `make test` is what CI runs.
GO ?= go
PKGS ?= ./...

.PHONY: all build test vet unit crs fuzz bench clean

all: build

build:
	$(GO) build -o bin/meridian ./cmd/meridian

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -timeout 15m -count=1 $(PKGS)

# crs replays the OWASP CRS regression tests through a real listener; it is
# too slow under the race detector, so it runs on its own, without it.
crs:
	$(GO) test -tags crs -count=1 -timeout 10m -run TestCRSRegression ./internal/waf/wafstage/

# test is every test: static checks, the race-enabled suite (which includes
# the seed corpora of the fuzz targets and the e2e tests), and the CRS suite.
test: vet unit crs

# fuzz runs each fuzz target for FUZZTIME (not part of `make test`).
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	$(MAKE) -C bench

clean:
	rm -rf bin
