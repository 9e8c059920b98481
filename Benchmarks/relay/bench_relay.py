#!/usr/bin/env python3
"""Ringfence relay benchmark: the same traffic direct, through proxyd's relay, through HAProxy, and
(bulk only) through a minimal splice(2) relay.

Run as root (it makes network namespaces and loads nftables rules in them):

    .venv/bin/python Benchmarks/relay/bench_relay.py --bin-dir "$(swift build -c release --show-bin-path)"
    make bench-relay                      # the same, building proxyd in release first
    ... --quick                           # reduced sizes: about a minute
    ... --json results.json               # also write every sample as JSON

Topology (two namespaces of its own, removed at the end, on Ctrl-C and on SIGTERM too):

    rfbench-PID-host  rfb0 10.79.0.1/24   server agent, TCPStore masters, proxyd, HAProxy, splice relay
    rfbench-PID-peer  eth0 10.79.0.2/24   client agent (veth to rfb0; no bridge)

Paths, with the server always in the host namespace:
    direct   client -> 10.79.0.1:29600 (a port no guard covers); TCPStore: 29601
    relay    client -> 10.79.0.1:29500, redirected by proxyd's nat rule to its relay on 39500,
             which connects to the original destination 10.79.0.1:29500 (protocol = "none");
             TCPStore: 29501 -> 39501, protocol = "tcpstore" (the gate on)
    haproxy  client -> HAProxy (mode tcp) on 29700 -> 10.79.0.1:29600; TCPStore: 29701 -> 29601
    splice   bulk only: client -> splice_relay.py on 29702 -> 10.79.0.1:29600 (HAProxy's upstream);
             what a minimal zero-copy relay does on this machine (--no-splice skips it)
Every main-table measurement runs with proxyd's nftables table loaded (so conntrack is on for
every path alike); one extra run per metric before proxyd starts gives the "no Ringfence at all"
baseline. See README.md beside this file for the choices and how to read the numbers.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Benchmarks/, for benchkit.py
from benchkit import (  # noqa: E402
    NOISY_SPREAD, Agent, BenchError, ProxyCost, Service, add_log_options, add_namespaces,
    add_veth, arg_parser, fd_count, load_line, loadavg, log, machine_info, machine_line,
    make_logdir, note_descriptor_growth, observations, proxyd_binary, proxyd_line, run,
    run_bench, start_proxyd, status_field, sweep_stale, verdict, wait_reachable)

HERE = Path(__file__).resolve().parent
AGENT = HERE / "bench_agent.py"
HAPROXY_TEMPLATE = HERE / "haproxy.cfg.template"
SPLICE_RELAY = HERE / "splice_relay.py"

HOST_IP, PEER_IP, LOOPBACK = "10.79.0.1", "10.79.0.2", "127.0.0.1"
SUBNET_BITS = 24
# The server agent's TCP ports: the guarded one (the relay's original destination) and the
# direct one (no guard; also HAProxy's upstream and the loopback relay's fixed upstream).
BENCH_GUARDED, BENCH_DIRECT = 29500, 29600
# The two TCPStore masters: behind the tcpstore relay, and direct (also HAProxy's upstream).
STORE_GUARDED, STORE_DIRECT = 29501, 29601
# Loopback relay: nothing listens on 29503; the benchmark's own nat output rule redirects
# 127.0.0.1:29503 to the relay's 39503, whose fixed upstream is 127.0.0.1:29600.
LO_GUARDED = 29503
RELAY_BENCH, RELAY_STORE, RELAY_LO = 39500, 39501, 39503
HAPROXY_BENCH, HAPROXY_STORE = 29700, 29701
# The minimal splice relay (bulk only): one port for both bulk metrics, upstream as HAProxy's.
SPLICE_BENCH = 29702

NS_RE = re.compile(r"rfbench-(\d+)-(host|peer)")
PATHS = ("direct", "relay", "haproxy")  # every metric
SPLICE = "splice"  # the bulk metrics only, unless --no-splice
BULK_METRICS = ("bulk_ns", "bulk_lo")
METRICS = (*BULK_METRICS, "store", "connrate", "burst")
TORCH_ENV = {"TORCH_CPP_LOG_LEVEL": "ERROR", "TORCH_SHOW_CPP_STACKTRACES": "0", "OMP_NUM_THREADS": "1"}


# --------------------------------------------------------------------------------------------
# Namespaces (created, deleted and swept by benchkit)


class Topology:
    def __init__(self):
        self.host = f"rfbench-{os.getpid()}-host"
        self.peer = f"rfbench-{os.getpid()}-peer"

    def build(self) -> None:
        h, p = self.host, self.peer
        add_namespaces(h, p)
        add_veth(h, "rfb0", f"{HOST_IP}/{SUBNET_BITS}", p, f"{PEER_IP}/{SUBNET_BITS}")
        # Per-namespace settings of our own namespaces only: room for the connection-rate
        # runs' ephemeral ports, and none of them ever taken from the benchmark's own ports.
        run("ip", "netns", "exec", p, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000")
        run("ip", "netns", "exec", h, "sysctl", "-qw",
            "net.ipv4.ip_local_reserved_ports=29500-29799,39500-39599")
        wait_reachable(p, HOST_IP, f"{PEER_IP} cannot reach {HOST_IP} over the veth pair")


# --------------------------------------------------------------------------------------------
# HAProxy and the splice relay (proxyd and the agents: benchkit.Proxyd, benchkit.Agent)


def wait_listening(ns: str, proc: subprocess.Popen, ports: list[int], name: str, log_path: Path,
                   timeout: float = 10.0) -> None:
    """Waits until something listens on every one of `ports` in namespace `ns` (ss), or fails
    with the log's tail should `proc` exit first."""
    deadline = time.monotonic() + timeout
    while True:
        out = run("ip", "netns", "exec", ns, "ss", "-Hltn", check=False).stdout
        listening = {int(m) for m in re.findall(r":(\d+)\s", out)}
        if all(p in listening for p in ports):
            return
        if proc.poll() is not None:
            raise BenchError(f"{name} exited (rc={proc.returncode}):\n{log_path.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise BenchError(f"{name} is not listening on {ports} after {timeout:g} s")
        time.sleep(0.05)


class HAProxy(Service):
    def __init__(self, ns: str, cfg: Path, logdir: Path, ports: list[int]):
        check = run("haproxy", "-c", "-f", cfg, check=False)
        if check.returncode != 0:
            raise BenchError(f"haproxy -c rejected {cfg}: {check.stdout}{check.stderr}")
        super().__init__(ns, ["haproxy", "-f", str(cfg), "-db"], logdir / "haproxy.log", "haproxy", 5)  # -db: no fork
        wait_listening(ns, self.proc, ports, "haproxy", self.log_path)


class SpliceRelay(Service):
    """splice_relay.py in a namespace: the minimal zero-copy relay the bulk rows compare with."""

    def __init__(self, ns: str, logdir: Path, port: int, upstream: tuple[str, int]):
        argv = [sys.executable, str(SPLICE_RELAY), "--listen", str(port),
                "--upstream", f"{upstream[0]}:{upstream[1]}"]
        super().__init__(ns, argv, logdir / "splice_relay.log", "splice relay", 5)
        wait_listening(ns, self.proc, [port], "splice relay", self.log_path)


# --------------------------------------------------------------------------------------------
# Configuration files


def policy_text(control_socket: Path) -> str:
    # max_connections: the burst's clients on the store guard; the others carry one connection at a
    # time. Together within this machine's open-file limit (proxyd warns otherwise).
    common = "buffer_bytes = \"1MiB\"\nmax_connections_per_peer = 100000\naccept_rate_per_peer = 1000000\n"
    return f"""# Written by Benchmarks/relay/bench_relay.py for one run; the host namespace is the benchmark's own.
[firewall]
table = "ringfence"

[daemon]
control_socket = "{control_socket}"

[[guard]]
name = "bench"
kind = "tcp"
port = {BENCH_GUARDED}
listen_port = {RELAY_BENCH}
allow = ["{PEER_IP}"]
protocol = "none"
max_connections = 1024
{common}
[[guard]]
name = "store"
kind = "tcp"
port = {STORE_GUARDED}
listen_port = {RELAY_STORE}
allow = ["{PEER_IP}"]
protocol = "tcpstore"
max_connections = 5000
{common}
# Loopback bulk only: reached through the benchmark's own nat output redirect (local traffic is
# never redirected by Ringfence), relaying to a fixed upstream.
[[guard]]
name = "bench_lo"
kind = "tcp"
port = {LO_GUARDED}
listen_port = {RELAY_LO}
upstream = "{LOOPBACK}:{BENCH_DIRECT}"
allow = ["{LOOPBACK}"]
protocol = "none"
max_connections = 1024
{common}"""


LOOPBACK_REDIRECT = f"""table ip rfbench {{
    chain out {{
        type nat hook output priority -100; policy accept;
        ip daddr {LOOPBACK} tcp dport {LO_GUARDED} redirect to :{RELAY_LO}
    }}
}}
"""


def haproxy_cfg(splice: bool, threads: int | None) -> str:
    return string.Template(HAPROXY_TEMPLATE.read_text()).substitute(
        global_extra=f"    nbthread {threads}" if threads else "",
        defaults_extra="    option splice-auto" if splice else "",
        bench_port=HAPROXY_BENCH, store_port=HAPROXY_STORE, upstream_host=HOST_IP,
        bench_upstream_port=BENCH_DIRECT, store_upstream_port=STORE_DIRECT)


# --------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.results: dict = {}
        self.bare: dict = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.proxy_pids: dict[str, int] = {}
        self.na: dict[tuple[str, str], str] = {}  # (metric, path) -> why not measured

    @property
    def has_report(self) -> bool:
        """Once proxyd started there is a report, even of a run that failed later."""
        return hasattr(self, "proxyd")

    def paths(self, metric: str) -> tuple[str, ...]:
        """The paths a metric is measured on: the splice relay only for bulk, and not with --no-splice."""
        if metric in BULK_METRICS and not self.args.no_splice:
            return (*PATHS, SPLICE)
        return PATHS

    # -- one measurement ------------------------------------------------------------------------

    def measure(self, agent: Agent, cmd: dict, path: str, budget: float) -> dict:
        cost = ProxyCost(self.proxy_pids.get(path))
        # An agent that does not answer in time ends the run (BenchError): a late answer would
        # be taken for the next request's. Failures the agent reports are recorded and the run goes on.
        answer = agent.request(cmd, timeout=budget)
        cost.add_to(answer)
        return answer

    def record(self, metric: str, path: str, answer: dict, key: str) -> None:
        entry = self.results.setdefault(metric, {}).setdefault(path, {"samples": [], "runs": [], "errors": []})
        entry["runs"].append(answer)
        if answer.get("ok"):
            entry["samples"].append(answer[key])
        else:
            entry["errors"].append(answer.get("error", "?"))
            self.failures.append(f"{metric}/{path}: {answer.get('error')}")
            log(f"  {metric} {path}: FAILED: {answer.get('error')}")

    def best(self, metric: str, path: str) -> float | None:
        samples = self.results.get(metric, {}).get(path, {}).get("samples", [])
        return max(samples) if samples else None

    # -- phases -----------------------------------------------------------------------------------

    def bulk(self, metric: str, agent: Agent, targets: dict[str, tuple[str, int]], reps: int) -> None:
        nbytes = self.args.bulk_mib << 20
        for rep in range(reps):
            for path in self.paths(metric):
                if (metric, path) in self.na:
                    continue
                host, port = targets[path]
                answer = self.measure(agent, {"op": "bulk", "host": host, "port": port, "bytes": nbytes,
                                              "timeout": self.args.bulk_timeout}, path, self.args.bulk_timeout + 100)
                self.record(metric, path, answer, "mb_per_s")
                if answer.get("ok"):
                    cpu = f", proxy CPU {answer['proxy_cpu_s']:.2f}s" if "proxy_cpu_s" in answer else ""
                    log(f"  {metric} {path} #{rep + 1}: {answer['mb_per_s']:.0f} MB/s "
                        f"({answer['seconds']:.2f}s{cpu})")

    def store(self, agent: Agent, targets: dict[str, tuple[str, int]], rounds: int) -> None:
        for rnd in range(rounds):
            for path in PATHS:
                if ("store", path) in self.na:
                    continue
                host, port = targets[path]
                answer = self.measure(agent, {"op": "store", "host": host, "port": port, "ops": self.args.store_ops,
                                              "seconds": self.args.store_seconds}, path, self.args.store_seconds + 60)
                self.record("store", path, answer, "per_s")
                if answer.get("ok"):
                    log(f"  store {path} #{rnd + 1}: {answer['per_s']:.0f} ops/s ({answer['ops']} ops in "
                        f"{answer['seconds']:.2f}s{self._per_unit(answer, 'ops')})")

    def connrate(self, agent: Agent, targets: dict[str, tuple[str, int]], rounds: int) -> None:
        for rnd in range(rounds):
            for path in PATHS:
                if ("connrate", path) in self.na:
                    continue
                host, port = targets[path]
                answer = self.measure(agent, {"op": "connrate", "host": host, "port": port,
                                              "count": self.args.conn_count, "seconds": self.args.conn_seconds},
                                      path, self.args.conn_seconds + 60)
                self.record("connrate", path, answer, "per_s")
                if answer.get("ok"):
                    log(f"  connrate {path} #{rnd + 1}: {answer['per_s']:.0f}/s ({answer['connections']} in "
                        f"{answer['seconds']:.2f}s, p50 {answer['p50_us']:.0f} us, p99 {answer['p99_us']:.0f} us, "
                        f"{answer['errors']} errors{self._per_unit(answer, 'connections')})")
                    if answer["errors"]:
                        self.failures.append(f"connrate/{path}: {answer['errors']} failed connections "
                                             f"(first: {answer['first_error']})")

    def burst(self, agent: Agent, targets: dict[str, tuple[str, int]], rounds: int) -> None:
        """`--burst-clients` TCPStore clients at once (burst.py), each path in turn; the proxy's
        peak RSS is sampled through the run."""
        for rnd in range(rounds):
            for path in PATHS:
                if ("burst", path) in self.na:
                    continue
                host, port = targets[path]
                sampler = PeakRSS(self.proxy_pids.get(path))
                answer = self.measure(agent, {"op": "burst", "host": host, "port": port,
                                              "count": self.args.burst_clients, "seconds": self.args.burst_seconds},
                                      path, self.args.burst_seconds + 60)
                sampler.add_to(answer)
                self.record("burst", path, answer, "per_s")
                if answer.get("ok"):
                    rss = (f", proxy peak RSS {answer['proxy_rss_peak_bytes'] / 2**20:.0f} MiB"
                           if "proxy_rss_peak_bytes" in answer else "")
                    log(f"  burst {path} #{rnd + 1}: {answer['clients']} clients served in {answer['seconds']:.3f}s "
                        f"(all connected after {answer['connected_s']:.3f}s{self._per_unit(answer, 'clients')}{rss})")

    @staticmethod
    def _per_unit(answer: dict, key: str) -> str:
        """", proxy X us CPU and Y context switches per op" for a proxied run."""
        n = answer.get(key) or 0
        if not n or "proxy_cpu_s" not in answer:
            return ""
        text = f", proxy {answer['proxy_cpu_s'] / n * 1e6:.0f} us CPU"
        if "proxy_context_switches" in answer:
            text += f" and {answer['proxy_context_switches'] / n:.1f} context switches"
        return text + " per " + {"ops": "op", "clients": "client"}.get(key, "connection")

    # -- the run ------------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        proxyd_bin = proxyd_binary(a.bin_dir)
        self.machine = machine_info(proxyd_bin, len(os.sched_getaffinity(0)), {"haproxy": ["haproxy", "-v"]})
        have_haproxy = shutil.which("haproxy") is not None
        if not have_haproxy:
            for metric in METRICS:
                self.na[(metric, "haproxy")] = "haproxy not installed (make bench-deps)"

        logdir = self.logdir = make_logdir(a.log_dir, "rfbench-")

        sweep_stale(NS_RE)
        topo = Topology()
        log(f"namespaces {topo.host} ({HOST_IP}) and {topo.peer} ({PEER_IP})")
        topo.build()

        env = dict(os.environ, **TORCH_ENV)
        server = Agent(AGENT, topo.host, "server", logdir, "server",
                       "--tcp-ports", f"{BENCH_GUARDED},{BENCH_DIRECT}",
                       "--store-ports", f"{STORE_GUARDED},{STORE_DIRECT}", env=env)
        peer = Agent(AGENT, topo.peer, "peer-client", logdir, "client", env=env)
        local = Agent(AGENT, topo.host, "host-client", logdir, "client", env=env)
        for agent in (peer, local):
            hello = agent.read(30)
            if not hello.get("ready"):
                raise BenchError(f"{agent.name}: {hello}")
        # Import torch in the peer client while the server starts its stores (never timed).
        peer.send({"op": "torch"})
        hello = server.read(120)
        if not hello.get("ready"):
            raise BenchError(f"server agent: {hello.get('error')}")
        torch_answer = peer.read(120)
        store_problem = hello.get("store_error") or (None if torch_answer.get("ok") else torch_answer.get("error"))
        if store_problem:
            for path in PATHS:
                self.na[("store", path)] = f"TCPStore unavailable: {store_problem}"
            log(f"TCPStore rows skipped: {store_problem}")
        else:
            self.machine["torch"] = torch_answer.get("torch")

        ns_targets = {"direct": (HOST_IP, BENCH_DIRECT), "relay": (HOST_IP, BENCH_GUARDED),
                      "haproxy": (HOST_IP, HAPROXY_BENCH), SPLICE: (HOST_IP, SPLICE_BENCH)}
        lo_targets = {"direct": (LOOPBACK, BENCH_DIRECT), "relay": (LOOPBACK, LO_GUARDED),
                      "haproxy": (LOOPBACK, HAPROXY_BENCH), SPLICE: (LOOPBACK, SPLICE_BENCH)}
        store_targets = {"direct": (HOST_IP, STORE_DIRECT), "relay": (HOST_IP, STORE_GUARDED),
                         "haproxy": (HOST_IP, HAPROXY_STORE)}

        # Baseline without Ringfence: no nftables table in the host namespace, so no conntrack.
        if not a.no_bare:
            log("baseline: direct, before proxyd starts (no nftables table, no conntrack)")
            self.bare["bulk_ns"] = peer.request({"op": "bulk", "host": HOST_IP, "port": BENCH_DIRECT,
                                                 "bytes": a.bulk_mib << 20, "timeout": a.bulk_timeout},
                                                a.bulk_timeout + 100)
            if ("store", "direct") not in self.na:
                self.bare["store"] = peer.request({"op": "store", "host": HOST_IP, "port": STORE_DIRECT,
                                                   "ops": a.store_ops, "seconds": a.store_seconds},
                                                  a.store_seconds + 60)
            self.bare["connrate"] = peer.request({"op": "connrate", "host": HOST_IP, "port": BENCH_DIRECT,
                                                  "count": a.conn_count, "seconds": a.conn_seconds},
                                                 a.conn_seconds + 60)
            for metric, key in (("bulk_ns", "mb_per_s"), ("store", "per_s"), ("connrate", "per_s")):
                answer = self.bare.get(metric)
                if answer is not None:
                    log(f"  {metric} bare: " + (f"{answer[key]:.0f}" if answer.get("ok") else f"FAILED {answer}"))

        self.proxyd = start_proxyd(proxyd_bin, topo.host, policy_text(logdir / "control.sock"), logdir,
                                   ["bench", "store", "bench_lo"], "relay listening")
        self.proxy_pids["relay"] = self.proxyd.pid
        self.proxyd_fds_start = fd_count(self.proxyd.pid)
        lo_rule = run("ip", "netns", "exec", topo.host, "nft", "-f", "-", input=LOOPBACK_REDIRECT, check=False)
        if lo_rule.returncode != 0:
            self.na[("bulk_lo", "relay")] = f"n/a (could not load the loopback redirect: {lo_rule.stderr.strip()})"

        if have_haproxy:
            cfg = logdir / "haproxy.cfg"
            cfg.write_text(haproxy_cfg(a.haproxy_splice, a.haproxy_threads))
            log("starting haproxy")
            self.haproxy = HAProxy(topo.host, cfg, logdir, [HAPROXY_BENCH, HAPROXY_STORE])
            self.proxy_pids["haproxy"] = self.haproxy.pid

        if not a.no_splice:
            log("starting the splice relay")
            # The same upstream as HAProxy's, for both bulk metrics.
            self.splice = SpliceRelay(topo.host, logdir, SPLICE_BENCH, (HOST_IP, BENCH_DIRECT))
            self.proxy_pids[SPLICE] = self.splice.pid

        # Smoke test of every path (also warms ARP and the conntrack tables).
        for agent, targets, metric in ((peer, ns_targets, "bulk_ns"), (local, lo_targets, "bulk_lo")):
            for path in self.paths(metric):
                if (metric, path) in self.na:
                    continue
                host, port = targets[path]
                answer = agent.request({"op": "connrate", "host": host, "port": port, "count": 20, "seconds": 5}, 30)
                if not answer.get("ok") or answer.get("errors"):
                    raise BenchError(f"smoke test {metric}/{path} ({host}:{port}) failed: {answer}")

        log(f"bulk, peer -> host namespace: {a.bulk_mib} MiB one way, best of {a.reps}")
        self.bulk("bulk_ns", peer, ns_targets, a.reps)
        log(f"bulk, loopback in the host namespace: {a.bulk_mib} MiB one way, best of {a.reps}")
        self.bulk("bulk_lo", local, lo_targets, a.reps)
        if not all(("store", p) in self.na for p in PATHS):
            log(f"TCPStore set/get: up to {a.store_ops} ops or {a.store_seconds:g} s per path, best of {a.rounds}")
            self.store(peer, store_targets, a.rounds)
        log(f"connections: up to {a.conn_count} or {a.conn_seconds:g} s per path, best of {a.rounds}")
        self.connrate(peer, ns_targets, a.rounds)
        if not all(("burst", p) in self.na for p in PATHS):
            log(f"{a.burst_clients} TCPStore clients at once, per path, best of {a.burst_rounds}")
            self.burst(peer, store_targets, a.burst_rounds)
        self.machine["loadavg_end"] = loadavg()

        self.proxyd_report()
        if not a.no_splice:
            self.splice_report()
        return 0

    def splice_report(self) -> None:
        """Stops the splice relay; notes a crash, an unclean exit, or sessions that failed."""
        s = self.splice
        if not s.alive():
            self.failures.append(f"the splice relay exited during the run (rc={s.proc.returncode})")
        else:
            s.stop()
            if s.exit_code != 0:
                self.notes.append(f"splice relay exit code on SIGTERM: {s.exit_code}")
        problems = s.text().splitlines()
        if problems:
            self.notes.append(f"the splice relay logged {len(problems)} lines, first: {problems[0]}")

    def proxyd_report(self) -> None:
        d = self.proxyd
        # The relay's pipe pools close pipes left idle for a whole 5 s round: give them two rounds
        # before counting descriptors, so that pooled pipes are not taken for leaked sessions.
        deadline = time.monotonic() + 11
        while (time.monotonic() < deadline and self.proxyd_fds_start is not None
               and (fd_count(d.pid) or 0) > self.proxyd_fds_start + 4):
            time.sleep(0.5)
        report = d.vitals(self.proxyd_fds_start, "rss_peak_bytes")
        was_alive = d.stop_after_runs(self.failures, self.notes)
        report["exit_code_on_sigterm"] = d.exit_code if was_alive else None
        report["exit_code"] = d.exit_code
        lines, bad = d.log_lines()
        report["log_lines"] = len(lines)
        report["log_warnings"] = bad[:20]
        report["log_warning_count"] = len(bad)
        if bad:
            self.notes.append(f"proxyd logged {len(bad)} warning/error lines, first: {bad[0]}")
        note_descriptor_growth(report, 4, self.notes)
        self.proxyd_info = report

    # -- output -------------------------------------------------------------------------------------

    def cell(self, metric: str, path: str) -> str:
        if (metric, path) in self.na:
            why = self.na[(metric, path)]
            return why if why.startswith("n/a") else f"n/a ({why})"
        value = self.best(metric, path)
        if value is None:
            return "error"
        return f"{value:,.0f}"

    def ratio(self, metric: str, a: str, b: str) -> float | None:
        x, y = self.best(metric, a), self.best(metric, b)
        return x / y if x is not None and y else None

    def table(self) -> str:
        a = self.args
        size = f"{a.bulk_mib // 1024} GiB" if a.bulk_mib % 1024 == 0 else f"{a.bulk_mib} MiB"
        best = f"best of {a.reps}" if a.reps > 1 else "1 run"
        rbest = f", best of {a.rounds}" if a.rounds > 1 else ""
        rows = [
            ("bulk_ns", f"bulk peer ns → host ns, {size} one way, {best} (MB/s)"),
            ("bulk_lo", f"bulk loopback (host ns), {size} one way, {best} (MB/s)"),
            ("store", f"TCPStore set/get, ≤{a.store_ops:,} ops or {a.store_seconds:g} s{rbest} (ops/s)"),
            ("connrate", f"connections (connect, 1 B echo, close), ≤{a.conn_count:,} or {a.conn_seconds:g} s{rbest} (/s)"),
            ("burst", f"{a.burst_clients:,} TCPStore clients at once (VALIDATE, PING), "
                      f"best of {a.burst_rounds} (clients/s until all served)"),
        ]
        splice = not a.no_splice
        fmt = lambda r: "" if r is None else f"{r:.2f}"  # noqa: E731
        out = ["| metric | direct | relay | haproxy | " + ("splice | " if splice else "")
               + "relay/direct | relay/haproxy |" + (" relay/splice |" if splice else ""),
               "|---|" + "---:|" * (7 if splice else 5)]
        for metric, label in rows:
            cells = [label, *(self.cell(metric, path) for path in PATHS)]
            if splice:
                cells.append(self.cell(metric, SPLICE) if SPLICE in self.paths(metric) else "—")
            cells += [fmt(self.ratio(metric, "relay", "direct")), fmt(self.ratio(metric, "relay", "haproxy"))]
            if splice:
                cells.append(fmt(self.ratio(metric, "relay", SPLICE)) if SPLICE in self.paths(metric) else "—")
            out.append("| " + " | ".join(cells) + " |")
        return "\n".join(out)

    def targets(self) -> list[tuple[str, float | None, float, bool | None]]:
        checks = [
            ("bulk (peer → host) relay/direct", self.ratio("bulk_ns", "relay", "direct"), 0.5),
            ("bulk (peer → host) relay/haproxy", self.ratio("bulk_ns", "relay", "haproxy"), 2.0),
            ("TCPStore ops relay/direct", self.ratio("store", "relay", "direct"), 0.85),
            ("connections relay/haproxy", self.ratio("connrate", "relay", "haproxy"), 1.0),
            (f"{self.args.burst_clients:,} clients at once relay/haproxy", self.ratio("burst", "relay", "haproxy"), 1.0),
        ]
        return [(name, value, goal, None if value is None else value >= goal) for name, value, goal in checks]

    def best_run(self, metric: str, path: str, key: str) -> dict | None:
        runs = [r for r in self.results.get(metric, {}).get(path, {}).get("runs", []) if r.get("ok")]
        return max(runs, key=lambda r: r[key]) if runs else None

    def proxy_cost(self, metric: str, path: str) -> tuple[float, float | None] | None:
        """The proxy's CPU (s per GiB for bulk, us per op or connection otherwise) and context
        switches per op/connection, over the run with the best rate."""
        key, unit = {"bulk_ns": ("mb_per_s", "bytes"), "bulk_lo": ("mb_per_s", "bytes"),
                     "store": ("per_s", "ops"), "connrate": ("per_s", "connections"),
                     "burst": ("per_s", "clients")}[metric]
        r = self.best_run(metric, path, key)
        if not r or r.get("proxy_cpu_s") is None or not r.get(unit):
            return None
        if unit == "bytes":
            return r["proxy_cpu_s"] / (r["bytes"] / (1 << 30)), None
        cs = r.get("proxy_context_switches")
        return r["proxy_cpu_s"] / r[unit] * 1e6, (None if cs is None else cs / r[unit])

    def spread(self, metric: str, path: str) -> float | None:
        samples = self.results.get(metric, {}).get(path, {}).get("samples", [])
        return (max(samples) - min(samples)) / max(samples) if len(samples) > 1 and max(samples) else None

    def report(self) -> str:
        m = self.machine
        lines = ["", "## Ringfence relay benchmark", "",
                 machine_line(m) + f"; {m.get('haproxy', 'no haproxy')}"
                 + (f" ({'splice-auto' if self.args.haproxy_splice else 'no splicing'}, "
                    f"{'nbthread ' + str(self.args.haproxy_threads) if self.args.haproxy_threads else 'default threads'})"
                    if 'haproxy' in m else "")
                 + (f"; torch {m['torch']}" if m.get("torch") else "")
                 + (" — quick mode" if self.args.quick else ""),
                 "", self.table(), ""]
        if self.bare:
            parts = []
            for metric, key, unit in (("bulk_ns", "mb_per_s", "MB/s bulk"), ("store", "per_s", "TCPStore ops/s"),
                                      ("connrate", "per_s", "connections/s")):
                answer = self.bare.get(metric)
                if answer and answer.get("ok"):
                    parts.append(f"{answer[key]:,.0f} {unit}")
            if parts:
                lines.append("Direct before proxyd started (no nftables table, so no conntrack), 1 run each: "
                             + ", ".join(parts) + ".")
        cost_paths = ("relay", "haproxy") + (() if self.args.no_splice else (SPLICE,))
        cost_rows = []
        for metric, label, unit in (("bulk_ns", "bulk peer → host", "CPU s per GiB"),
                                    ("bulk_lo", "bulk loopback", "CPU s per GiB"),
                                    ("store", "TCPStore", "CPU µs / context switches per op"),
                                    ("connrate", "connections", "CPU µs / context switches per connection"),
                                    ("burst", "clients at once", "CPU µs / context switches per client")):
            cells = []
            for path in cost_paths:
                cost = self.proxy_cost(metric, path)
                if path not in self.paths(metric):
                    cells.append("—")
                elif cost is None:
                    cells.append("")
                elif cost[1] is None:
                    cells.append(f"{cost[0]:.2f}" if metric.startswith("bulk") else f"{cost[0]:.0f}")
                else:
                    cells.append(f"{cost[0]:.0f} / {cost[1]:.1f}")
            if any(c not in ("", "—") for c in cells):
                cost_rows.append(f"| {label}: {unit} | " + " | ".join(cells) + " |")
        if cost_rows:
            header = "| proxy cost | relay (proxyd) | haproxy |" + ("" if self.args.no_splice else " splice relay |")
            lines += ["Cost in the proxy process itself (its run with the best rate; context switches summed over "
                      "its threads):", "", header, "|---|" + "---:|" * len(cost_paths), *cost_rows, ""]
        lines += self.burst_lines()
        noisy = []
        for metric in METRICS:
            for path in self.paths(metric):
                sp = self.spread(metric, path)
                if sp is not None and sp > NOISY_SPREAD:
                    noisy.append(f"{metric}/{path} {sp:.0%}")
        lines.append(load_line(m, noisy))
        lines.append("Bulk: the client sends, the server discards and answers the byte count; MB/s = 10^6 B/s, "
                     "timed from connect to the count's arrival. Main-table runs all have proxyd's nftables table "
                     "loaded (conntrack on for every path); paths are interleaved run by run.")
        lines.append(f"Loopback relay: Ringfence never redirects local traffic, so the benchmark adds its own nat "
                     f"output rule (table ip rfbench) sending {LOOPBACK}:{LO_GUARDED} to the relay's {RELAY_LO} "
                     f"(guard bench_lo, upstream {LOOPBACK}:{BENCH_DIRECT}).")
        if not self.args.no_splice:
            lines.append(f"Splice: {SPLICE_RELAY.name}, a minimal zero-copy relay (os.splice through a 1 MiB "
                         f"pipe, one blocking thread per direction) on :{SPLICE_BENCH}, upstream "
                         f"{HOST_IP}:{BENCH_DIRECT} like HAProxy's; bulk rows only.")
        info = getattr(self, "proxyd_info", None)
        if info:
            exit_code = (f"exit code on SIGTERM {info['exit_code_on_sigterm']}." if info["alive_after_runs"]
                         else f"exit code {info.get('exit_code')}.")
            lines.append(proxyd_line(info, "peak RSS", "rss_peak_bytes",
                                     f"{info['log_warning_count']} warning/error log lines; {exit_code}"))
        lines.append("")
        lines.append("Targets:")
        for name, value, goal, ok in self.targets():
            shown = "—" if value is None else f"{value:.3f}"
            lines.append(f"- {name} ≥ {goal:g}: {shown} — {verdict(ok)}")
        if not self.args.no_splice:
            value = self.ratio("bulk_ns", "relay", SPLICE)
            lines.append(f"- relay/splice (bulk peer→host): {'—' if value is None else f'{value:.3f}'} "
                         f"— for information, no target")
        lines += observations(self.failures, self.notes)
        return "\n".join(lines)

    def burst_lines(self) -> list[str]:
        """Seconds until all burst clients were served, and the proxy's peak RSS, per path."""
        parts = []
        for path in PATHS:
            r = self.best_run("burst", path, "per_s")
            if r:
                rss = (f", proxy peak RSS {r['proxy_rss_peak_bytes'] / 2**20:.0f} MiB"
                       if "proxy_rss_peak_bytes" in r else "")
                parts.append(f"{path} {r['seconds']:.3f} s{rss}")
        if not parts:
            return []
        return [f"{self.args.burst_clients:,} clients at once, until all served (best run): " + "; ".join(parts)
                + ". Every client connects at the same moment, sends VALIDATE and a PING and waits for its "
                "nonce; all stay open until the last is served.", ""]

    def json_data(self) -> dict:
        summary = {}
        for metric in METRICS:
            summary[metric] = {path: self.best(metric, path) for path in self.paths(metric)}
            summary[metric]["relay/direct"] = self.ratio(metric, "relay", "direct")
            summary[metric]["relay/haproxy"] = self.ratio(metric, "relay", "haproxy")
            if SPLICE in self.paths(metric):
                summary[metric]["relay/splice"] = self.ratio(metric, "relay", SPLICE)
            summary[metric]["median"] = {}
            for path in self.paths(metric):
                samples = sorted(self.results.get(metric, {}).get(path, {}).get("samples", []))
                summary[metric]["median"][path] = samples[len(samples) // 2] if samples else None
        return {
            "machine": self.machine,
            "config": {k: v for k, v in vars(self.args).items() if k != "json"},
            "units": {"bulk_ns": "MB/s", "bulk_lo": "MB/s", "store": "ops/s", "connrate": "connections/s",
                      "burst": "clients/s"},
            "summary": summary,
            "not_measured": {f"{m}/{p}": why for (m, p), why in self.na.items()},
            "results": self.results,
            "bare_direct": self.bare,
            "targets": [{"name": n, "value": v, "goal": g, "met": ok} for n, v, g, ok in self.targets()],
            "proxyd": getattr(self, "proxyd_info", None),
            "failures": self.failures,
            "notes": self.notes,
        }


class PeakRSS:
    """Samples a process's RSS every 10 ms from creation until add_to(result), which sets
    result["proxy_rss_peak_bytes"]. With no pid (the direct path) it adds nothing."""

    def __init__(self, pid: int | None):
        self.pid, self.peak = pid, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True) if pid else None
        if self.thread:
            self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, status_field(self.pid, "VmRSS") or 0)

    def add_to(self, result: dict) -> None:
        if self.thread:
            self.stop.set()
            self.thread.join()
            if self.peak:
                result["proxy_rss_peak_bytes"] = self.peak


def parse_args(argv=None):
    ap = arg_parser("Direct vs proxyd relay vs HAProxy (and, for bulk, a minimal splice relay), in network "
                    "namespaces.", "reduced sizes and counts (about a minute)")
    ap.add_argument("--bulk-mib", type=int, help="bulk transfer size in MiB (default 1024; quick 256)")
    ap.add_argument("--reps", type=int, help="bulk repetitions per path, best kept (default 3; quick 1)")
    ap.add_argument("--rounds", type=int, help="TCPStore and connection runs per path, best kept (default 5; quick 1)")
    ap.add_argument("--store-ops", type=int, help="TCPStore operations per path (default 20000; quick 5000)")
    ap.add_argument("--store-seconds", type=float, help="time bound per TCPStore run (default 10; quick 3)")
    ap.add_argument("--conn-count", type=int, help="connections per path (default 5000; quick 2000)")
    ap.add_argument("--conn-seconds", type=float, help="time bound per connection run (default 5; quick 2)")
    ap.add_argument("--bulk-timeout", type=float, default=60.0, help="time bound per bulk transfer (60 s)")
    ap.add_argument("--burst-clients", type=int, default=4096, help="TCPStore clients at once (4096)")
    ap.add_argument("--burst-rounds", type=int, help="runs of the clients-at-once test per path (default 3; quick 1)")
    ap.add_argument("--burst-seconds", type=float, default=60.0, help="time bound per clients-at-once run (60 s)")
    ap.add_argument("--haproxy-splice", action="store_true", help="add `option splice-auto` to HAProxy")
    ap.add_argument("--haproxy-threads", type=int, help="HAProxy nbthread (default: HAProxy's, = CPUs)")
    ap.add_argument("--no-bare", action="store_true", help="skip the direct runs before proxyd starts")
    ap.add_argument("--no-splice", action="store_true",
                    help="skip the minimal splice(2) relay (splice_relay.py) in the bulk rows")
    add_log_options(ap, "proxyd/haproxy/agent logs")
    args = ap.parse_args(argv)
    defaults = ({"bulk_mib": 256, "reps": 1, "rounds": 1, "store_ops": 5000, "store_seconds": 3.0, "conn_count": 2000,
                 "conn_seconds": 2.0, "burst_rounds": 1} if args.quick else
                {"bulk_mib": 1024, "reps": 3, "rounds": 5, "store_ops": 20000, "store_seconds": 10.0, "conn_count": 5000,
                 "conn_seconds": 5.0, "burst_rounds": 3})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_bench(Bench(args), args, "bench_relay.py")


if __name__ == "__main__":
    sys.exit(main())
