# ShareBroker — the README's two commands are `make serve` and `make test`.
# Both install the Debian packages the build needs when they are missing.

SHELL := /bin/bash
SWIFT ?= swift
PORT ?= 8080
APT_PACKAGES := libcurl4-openssl-dev libjson-c-dev libsqlite3-dev pkg-config curl
# What the test suite drives besides: a real browser for the privacy center (and CJK fonts for its screenshots).
TEST_APT_PACKAGES := chromium chromium-driver fonts-wqy-zenhei

.PHONY: deps test-deps build serve two-nodes test check bench bench-instructions clean

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

## serve: build and run the broker on the embedded default, in sandbox mode (see README)
serve: build
	$$($(SWIFT) build --show-bin-path)/sharebroker serve --sandbox --port $(PORT)

## two-nodes: two broker nodes on one throwaway PostgreSQL (ports 8081, 8082; see README, "Several nodes")
two-nodes: build
	scripts/two-nodes

## test: every test suite (XCTest and Swift Testing), with a throwaway PostgreSQL cluster (scripts/with-postgres)
## and a Python venv with the SDKs the tunnel tests drive (scripts/python-venv)
## The tests that drive a browser and Python SDKs load the whole machine: they run after the
## rest, on their own, so the timing-sensitive tests (timeouts, token expiry) do not share it.
HEAVY_TESTS := PrivacyCenterBrowserTests|SDKTunnelTests|OpenAPISpecTests
test: test-deps
	python=$$(scripts/python-venv) && \
	SHAREBROKER_TEST_PYTHON=$$python SHAREBROKER_REQUIRE_PYTHON=1 SHAREBROKER_REQUIRE_POSTGRES=1 \
	  scripts/with-postgres bash -c '$(SWIFT) test --skip "$(HEAVY_TESTS)" && $(SWIFT) test --skip-build --filter "$(HEAVY_TESTS)"'

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

clean:
	rm -rf .build
