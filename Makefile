# ShareBroker — the README's two commands are `make serve` and `make test`.
# Both install the Debian packages the build needs when they are missing.

SHELL := /bin/bash
SWIFT ?= swift
PORT ?= 8080
APT_PACKAGES := libcurl4-openssl-dev libjson-c-dev libsqlite3-dev libzstd-dev pkg-config curl
# What the test suite drives besides: a real browser for the privacy center (and CJK fonts for its screenshots),
# and openssl for examples/make-secrets' self-signed TLS certificate.
TEST_APT_PACKAGES := chromium chromium-driver fonts-wqy-zenhei openssl

.PHONY: deps test-deps build serve two-nodes test check bench bench-instructions release install verify-unit clean

## deps: install missing system packages (apt-get, non-interactive)
deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

## test-deps: the packages only the tests need (chromium, chromium-driver, fonts)
test-deps: deps
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_APT_PACKAGES)"

apt-install:
	@missing=""; \
	for package in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  sudo=""; [ "$$(id -u)" -ne 0 ] && sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## build: debug build of everything
build: deps
	$(SWIFT) build

## serve: build and run the broker on the embedded default, in sandbox mode (see docs/getting-started.md)
serve: build
	$$($(SWIFT) build --show-bin-path)/sharebroker serve --sandbox --port $(PORT)

## two-nodes: two broker nodes on one throwaway PostgreSQL (ports 8081, 8082; see docs/several-nodes.md)
two-nodes: build
	scripts/two-nodes

## test: every test suite (XCTest and Swift Testing), with a throwaway PostgreSQL cluster (scripts/with-postgres)
## and a Python venv with the SDKs the tunnel tests drive (scripts/python-venv)
## The tests that drive a browser and Python SDKs load the whole machine: they run after the
## rest, on their own, so the timing-sensitive tests (timeouts, token expiry) do not share it.
## The last line counts every test of both passes (scripts/test-summary), after naming any process
## the tests left running.
HEAVY_TESTS := PrivacyCenterBrowserTests|SDKTunnelTests|OpenAPISpecTests
TEST_LOGS := .build/test-logs
test: test-deps
	@mkdir -p $(TEST_LOGS)
	start=$$(date +%s) && python=$$(scripts/python-venv) && \
	SHAREBROKER_TEST_PYTHON=$$python SHAREBROKER_REQUIRE_PYTHON=1 SHAREBROKER_REQUIRE_POSTGRES=1 \
	  scripts/with-postgres bash -c 'set -o pipefail; status=0; \
	    $(SWIFT) test --skip "$(HEAVY_TESTS)" 2>&1 | tee $(TEST_LOGS)/pass-1.log || status=1; \
	    $(SWIFT) test --skip-build --filter "$(HEAVY_TESTS)" 2>&1 | tee $(TEST_LOGS)/pass-2.log || status=1; \
	    exit $$status'; \
	status=$$?; scripts/test-summary $$start $(TEST_LOGS)/pass-1.log $(TEST_LOGS)/pass-2.log && exit $$status

## check: validate adapters/ and contracts/
check: build
	$$($(SWIFT) build --show-bin-path)/sharebroker check

## bench-instructions: instructions under callgrind (repeatable where timings are not): per decision of the
## pure core, and per request of the whole broker process (allowed and refused shares, 401s, healthz)
bench-instructions: deps
	$(SWIFT) build -c release --product sharebroker-bench
	$(SWIFT) build -c release --product sharebroker
	scripts/decision-instructions
	Benchmarks/gateway/instructions.sh

## bench: release-mode benchmarks (decision core, payload codecs, log queries, revocation, the gateway under wrk)
bench: deps
	$(SWIFT) build -c release --product sharebroker-bench
	$(SWIFT) build -c release --product sharebroker
	$$($(SWIFT) build -c release --show-bin-path)/sharebroker-bench
	scripts/with-postgres Benchmarks/gateway/run.sh
	Benchmarks/gateway/instructions.sh

## release: a release binary with the Swift standard library linked in (--static-swift-stdlib) and
## its resource bundles, in one folder ($(DIST)), with the policy, the example config and deploy/
DIST ?= .build/dist/sharebroker
release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product sharebroker
	rm -rf $(DIST) && mkdir -p $(DIST)
	bin=$$($(SWIFT) build -c release --static-swift-stdlib --show-bin-path) && \
	  cp $$bin/sharebroker $(DIST)/ && cp -R $$bin/*.resources $(DIST)/
	cp -R adapters contracts examples deploy LICENSE $(DIST)/
	@echo "release: $(DIST) ($$($(DIST)/sharebroker --version))"

## install: the release folder into PREFIX (default /usr/local; DESTDIR for staging): the binary in
## PREFIX/lib/sharebroker with PREFIX/bin/sharebroker linking to it; the config and policy in
## ETCDIR (/etc/sharebroker for /usr and /usr/local, else PREFIX/etc/sharebroker; an existing
## config is kept), the state folder STATEDIR (/var/lib/sharebroker, else PREFIX/var/lib/sharebroker)
## and the systemd unit in PREFIX/lib/systemd/system. Creates no user: see docs/deployment.md.
PREFIX ?= /usr/local
ifneq ($(filter /usr /usr/local,$(PREFIX)),)
ETCDIR ?= /etc/sharebroker
STATEDIR ?= /var/lib/sharebroker
else
ETCDIR ?= $(PREFIX)/etc/sharebroker
STATEDIR ?= $(PREFIX)/var/lib/sharebroker
endif
install: release
	install -d -m 0755 $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/sharebroker $(DESTDIR)$(PREFIX)/lib/systemd/system
	cp -R $(DIST)/sharebroker $(DIST)/*.resources $(DESTDIR)$(PREFIX)/lib/sharebroker/
	ln -sf $(PREFIX)/lib/sharebroker/sharebroker $(DESTDIR)$(PREFIX)/bin/sharebroker
	install -d -m 0755 $(DESTDIR)$(ETCDIR)
	install -d -m 0750 $(DESTDIR)$(ETCDIR)/secrets
	install -d -m 0700 $(DESTDIR)$(STATEDIR)
	rm -rf $(DESTDIR)$(ETCDIR)/adapters $(DESTDIR)$(ETCDIR)/contracts
	cp -R adapters contracts $(DESTDIR)$(ETCDIR)/
	[ -e $(DESTDIR)$(ETCDIR)/sharebroker.yaml ] || \
	  sed -e 's|@ETCDIR@|$(ETCDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' deploy/sharebroker.yaml.in > $(DESTDIR)$(ETCDIR)/sharebroker.yaml
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@ETCDIR@|$(ETCDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' \
	  deploy/sharebroker.service.in > $(DESTDIR)$(PREFIX)/lib/systemd/system/sharebroker.service
	@echo "installed into $(DESTDIR)$(PREFIX); config $(ETCDIR)/sharebroker.yaml; state $(STATEDIR) (see docs/deployment.md)"

## verify-unit: systemd-analyze verify on the unit, rendered for the default layout (skipped, saying so,
## where systemd-analyze is not installed)
verify-unit:
	@scripts/verify-unit

clean:
	rm -rf .build
