# Ringfence: build, test, demo and benchmark on Debian 12 (run as root for test and demo:
# the integration tests and the demo create network namespaces and load nftables rules).

SWIFT ?= swift
PYTHON ?= /usr/bin/python3
# Debian packages the build, the tests and the demo need.
DEBIAN_PACKAGES := nftables libnftables-dev libzmq3-dev python3-zmq python3-pytest iproute2 iputils-ping pkg-config

.PHONY: all deps build test unit-test integration-test demo bench clean

all: build

# Installs whichever of DEBIAN_PACKAGES is missing (apt-get update first, once).
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

unit-test: build
	$(SWIFT) test

integration-test: build
	RINGFENCE_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(PYTHON) -m pytest -v Tests/integration

# The whole suite: Swift unit tests, then the namespace integration tests against the built binaries.
test: unit-test integration-test

demo: build
	bash scripts/demo.sh "$$($(SWIFT) build --show-bin-path)"

bench: deps
	$(SWIFT) build -c release --product PolicyBenchmark
	"$$($(SWIFT) build -c release --show-bin-path)/PolicyBenchmark"

clean:
	rm -rf .build
