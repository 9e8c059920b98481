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

.PHONY: all deps bench-deps install-packages venv build test unit-test integration-test soak demo bench bench-relay clean

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

# The soak alone (root): Tests/integration/test_soak.py for SOAK_SECONDS of load, churn, kicks and
# reloads (`make test` runs it for its default, 120 s, with the rest of the integration suite);
# its summary of proxyd's descriptors, RSS and threads is printed. docs/reliability.md, "Soak".
SOAK_SECONDS ?= 600
soak: build venv
	SOAK_SECONDS=$(SOAK_SECONDS) RINGFENCE_BIN_DIR="$$($(SWIFT) build --show-bin-path)" \
	  $(PYTHON) -m pytest -v -s Tests/integration/test_soak.py

# The whole suite: Swift unit tests and the fuzz targets' regressions, the namespace integration
# tests against the built binaries, then each fuzz target for 30 s.
test: unit-test fuzz-replay integration-test fuzz-short

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

# Fuzzing (libFuzzer and AddressSanitizer, from the Swift toolchain): each target of Fuzz/ for
# FUZZ_SECONDS, starting from its seed corpus (Fuzz/corpus/TARGET, captured from real libzmq,
# torch and proxyctl by Fuzz/capture_seeds.py) copied to a scratch directory, so new inputs never
# land in the repository. A crash leaves its input as .build-fuzz/crashes/TARGET-crash-*: copy
# it to Fuzz/regressions/TARGET/ with the fix, and `make test` replays it from then on.
# The lld linker: gold fails on the instrumented objects.
FUZZ_TARGETS := FuzzZMTP FuzzTCPStoreGate FuzzPolicy FuzzControlRequest FuzzMetricsRequest
FUZZ_SECONDS ?= 300
FUZZ_JOBS ?= $(shell nproc)
# TOMLKit 0.6.0's TOMLTable.keys never frees the key array it gets from toml++ (LeakSanitizer,
# found by FuzzPolicy: a few KiB per policy parse): not ours to fix here, so leaks are not
# reported for the policy target; AddressSanitizer's other checks stay on. docs/reliability.md.
FUZZ_OPTIONS_FuzzPolicy := -detect_leaks=0
FUZZ_ENV_FuzzPolicy := ASAN_OPTIONS=detect_leaks=0
FUZZ_FLAGS := -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
	-Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld

.PHONY: fuzz fuzz-build fuzz-replay fuzz-short
fuzz-build: deps
	@for t in $(FUZZ_TARGETS); do $(SWIFT) build $(FUZZ_FLAGS) --product $$t || exit 1; done

fuzz: fuzz-build
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) $(addprefix fuzz-run-,$(FUZZ_TARGETS))

# One target for FUZZ_SECONDS (FUZZ_JOBS of them at once: libFuzzer runs on one core).
fuzz-run-%:
	@mkdir -p .build-fuzz/crashes
	@t=$*; bin="$$($(SWIFT) build $(FUZZ_FLAGS) --show-bin-path)"; \
	work=.build-fuzz/corpus/$$t; mkdir -p $$work; cp Fuzz/corpus/$$t/* $$work/; \
	[ -d Fuzz/regressions/$$t ] && cp Fuzz/regressions/$$t/* $$work/ 2>/dev/null; \
	echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	options=""; environment=""; [ $$t = FuzzPolicy ] && options="$(FUZZ_OPTIONS_FuzzPolicy)" environment="$(FUZZ_ENV_FuzzPolicy)"; \
	rc=0; env $$environment "$$bin/$$t" -max_total_time=$(FUZZ_SECONDS) $(FUZZ_EXTRA) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $$options \
	  -artifact_prefix=.build-fuzz/crashes/$$t- $$work >.build-fuzz/$$t.log 2>&1 || rc=$$?; \
	grep -E "^(Done|==[0-9]+==ERROR|SUMMARY|Test unit written|INFO: Seed)" .build-fuzz/$$t.log | sed "s/^/$$t: /"; \
	test $$rc -eq 0 || { echo "$$t: libFuzzer found a problem: .build-fuzz/$$t.log, .build-fuzz/crashes/"; exit 1; }

# The seed corpora and every regression input, through the targets built normally (no sanitizer).
fuzz-replay: build
	@bin="$$($(SWIFT) build --show-bin-path)"; for t in $(FUZZ_TARGETS); do \
	  "$$bin/$$t" Fuzz/corpus/$$t $$( [ -d Fuzz/regressions/$$t ] && echo Fuzz/regressions/$$t ) || exit 1; done

# What `make test` runs: each target for 30 s from a fixed seed (the seed corpora and the
# regressions first), so that a run is repeatable; `make fuzz` explores with a fresh seed.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30 FUZZ_EXTRA=-seed=1
