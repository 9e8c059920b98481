# Ringfence: build, test, demo and benchmark on Debian 12 (run as root for test and demo:
# the integration tests and the demo create network namespaces and load nftables rules).

SWIFT ?= swift
# The tests' interpreter: a virtualenv over Debian's python3 (which brings pytest and python3-zmq)
# with PyTorch's CPU build for the real TCPStore (Debian's python3-torch 1.13 speaks an older protocol)
# and kubernetes-validate, whose bundled Kubernetes schemas (1.25-1.37) and jsonschema (>= 4.23;
# Debian's is 4.10) the manifest tests validate deploy/kubernetes/ with.
VENV := .venv
PYTHON := $(VENV)/bin/python
TORCH := torch==2.13.0+cpu
KUBERNETES_VALIDATE := kubernetes-validate==1.37.0
# Debian packages the build, the tests and the demo need.
DEBIAN_PACKAGES := nftables systemd libnftables-dev libnftnl-dev libmnl-dev libzmq3-dev python3-zmq python3-pytest python3-venv python3-prometheus-client dnsmasq-base iproute2 iputils-ping pkg-config
# What the benchmarks add: HAProxy, run beside the relay for comparison.
BENCH_PACKAGES := haproxy

.PHONY: all deps bench-deps install-packages venv build test unit-test integration-test demo bench bench-relay clean

all: build

# Installs whichever of DEBIAN_PACKAGES is missing (apt-get update first, once).
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEBIAN_PACKAGES)"

bench-deps: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(BENCH_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Creates the virtualenv and installs PyTorch (CPU) and kubernetes-validate into it, once.
venv: deps
	@if ! $(PYTHON) -c "import torch, numpy, kubernetes_validate" 2>/dev/null; then \
	  /usr/bin/python3 -m venv --system-site-packages $(VENV) && \
	  $(PYTHON) -m pip install -q --disable-pip-version-check '$(TORCH)' numpy '$(KUBERNETES_VALIDATE)'; \
	fi

build: deps
	$(SWIFT) build

unit-test: build
	$(SWIFT) test

integration-test: build venv
	RINGFENCE_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(PYTHON) -m pytest -v Tests/integration

# The whole suite: Swift unit tests, then the namespace integration tests against the built binaries.
test: unit-test integration-test

# The whole story in network namespaces (root): scripts/demo.sh. Its engine, readers and TCPStore
# client are Python peers with torch and pyzmq, hence the venv.
demo: build venv
	bash scripts/demo.sh "$$($(SWIFT) build --show-bin-path)"

bench: deps
	$(SWIFT) build -c release --product PolicyBenchmark
	"$$($(SWIFT) build -c release --show-bin-path)/PolicyBenchmark"

# The relay benchmark (root: it makes network namespaces): direct vs relay vs HAProxy.
bench-relay: bench-deps venv
	$(SWIFT) build -c release --product proxyd
	$(PYTHON) Benchmarks/relay/bench_relay.py --bin-dir "$$($(SWIFT) build -c release --show-bin-path)"

# The broker benchmark (root: it makes network namespaces): direct libzmq vs the broker vs zmq_proxy.
# Debian's python3 with python3-zmq; no torch needed. BENCH_BROKER_ARGS=--quick for a short run.
.PHONY: bench-broker
bench-broker: deps
	$(SWIFT) build -c release --product proxyd
	/usr/bin/python3 Benchmarks/broker/bench_broker.py --bin-dir "$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_BROKER_ARGS)

# The reload benchmark (root): proxyctl reload of a 10,000-CIDR policy with 1,000 live connections.
.PHONY: bench-reload
bench-reload: deps
	$(SWIFT) build -c release --product proxyd
	$(SWIFT) build -c release --product proxyctl
	/usr/bin/python3 Benchmarks/reload/bench_reload.py --bin-dir "$$($(SWIFT) build -c release --show-bin-path)"

# The host guard benchmark (root): kind = "host" (prerouting rules on every packet) against no fence,
# with the peer and with 10,000 CIDRs allowed, and reloads of that allowlist. BENCH_HOST_ARGS=--quick for a short run.
.PHONY: bench-host
bench-host: deps
	$(SWIFT) build -c release --product proxyd
	$(SWIFT) build -c release --product proxyctl
	/usr/bin/python3 Benchmarks/host/bench_host.py --bin-dir "$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_HOST_ARGS)

# The discovery benchmark (root): time from listen(2) to a live redirect, over 200 listeners, with the
# tracepoint and with polling, and proxyd's idle CPU. BENCH_DISCOVERY_ARGS=--quick for a short run.
.PHONY: bench-discovery
bench-discovery: deps
	$(SWIFT) build -c release --product proxyd
	$(SWIFT) build -c release --product proxyctl
	/usr/bin/python3 Benchmarks/discovery/bench_discovery.py --bin-dir "$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_DISCOVERY_ARGS)

clean:
	rm -rf .build $(VENV)
