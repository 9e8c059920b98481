#!/usr/bin/env python3
"""Ringfence broker benchmark: one publisher, four subscribers across namespaces, three paths —
direct libzmq, through proxyd's broker (kind = "zmq-xpub"), through libzmq's own zmq_proxy.

Run as root (it makes network namespaces and proxyd loads nftables rules in them):

    .venv/bin/python Benchmarks/broker/bench_broker.py --bin-dir "$(swift build -c release --show-bin-path)"
    make bench-broker                     # the same, building proxyd in release first
    ... --quick                           # fewer messages, one run per path: under a minute
    ... --json results.json               # also write every sample as JSON

Topology (three namespaces of its own, removed at the end, on Ctrl-C and on SIGTERM too):

    rfbbench-PID-host  rfb0 10.78.0.1/24, rfb1 10.78.1.1/24   publisher, proxyd, zmq_proxy
    rfbbench-PID-peer  eth0 10.78.0.2/24                       the 4 readers (one process each)
    rfbbench-PID-evil  eth0 10.78.1.2/24 (via 10.78.1.1)       the 200 idle subscribers (attack only)

Paths (the publisher has one XPUB per path, so no path ever pays for another's subscribers):
    direct     readers -> tcp://10.78.0.1:29660, the publisher's XPUB (no guard on that port)
    broker     readers -> tcp://10.78.0.1:29650, redirected by proxyd's nat rule to its broker on
               39650 (guard "bus"), which connects upstream to the original destination, the
               publisher's XPUB on 10.78.0.1:29650. Attack phase: port 29651 -> 39651 (guard
               "bus_attack", low high-water marks)
    zmq_proxy  readers -> tcp://10.78.0.1:29670, a zmq_proxy process (XPUB bound there, XSUB
               connected to the publisher's XPUB on 10.78.0.1:29662)
Issue 14's runs (their own XPUBs and guards; lossless.py and idle_cpu.py run them):
    lossless   the publisher flat out through XPUB_NODROP: direct (29663), the broker with
               on_overflow = "block" (29652, guard "bus_block") and "disconnect" (29653,
               "bus_lossy"), a second zmq_proxy with XPUB_NODROP (29671, upstream 29664)
    idle       a vLLM-like broadcast to 2 readers through the broker (29654 "bus_idle",
               29655 "bus_idle_block") with 0, 7 and 100 idle subscribers: proxyd's CPU per message
See README.md beside this file for the choices and how to read the numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Benchmarks/, for benchkit.py
from benchkit import (  # noqa: E402
    NOISY_SPREAD, Agent, BenchError, ProxyCost, add_log_options, add_namespaces, add_veth,
    arg_parser, cpu_seconds, fd_count, load_line, loadavg, log, machine_info, machine_line,
    make_logdir, note_descriptor_growth, observations, proxyd_binary, proxyd_line, run,
    run_bench, start_proxyd, stat_cpu, status_field, sweep_stale, verdict, wait_reachable)
from units import KiB, MiB, median, size_label  # noqa: E402
from idle_cpu import IdleCpu  # noqa: E402
from lossless import Lossless  # noqa: E402
from lossless import EVICTED, PATHS as LOSSLESS_PATHS  # noqa: E402

HERE = Path(__file__).resolve().parent
AGENT = HERE / "bench_agent.py"

HOST_IP, PEER_IP = "10.78.0.1", "10.78.0.2"
EVIL_GW, EVIL_IP = "10.78.1.1", "10.78.1.2"
SUBNET_BITS = 24
# The publisher's XPUBs, one per path, all bound on HOST_IP.
PUB_BROKER, PUB_BROKER_ATTACK, PUB_DIRECT, PUB_PROXY_UP = 29650, 29651, 29660, 29662
ACK_PORT = 29661  # the publisher's PULL for the readers' progress reports
PROXY_XPUB = 29670  # zmq_proxy's XPUB
LISTEN_BROKER, LISTEN_BROKER_ATTACK = 39650, 39651  # proxyd's broker listen ports
GUARD, GUARD_ATTACK = "bus", "bus_attack"
# The lossless runs (lossless.py): XPUBs with XPUB_NODROP, a second zmq_proxy with XPUB_NODROP,
# and two broker guards with default limits, one on_overflow = "block", one "disconnect".
PUB_BLOCK, PUB_LOSSY, PUB_DIRECT_NODROP, PUB_PROXY_NODROP_UP = 29652, 29653, 29663, 29664
PROXY_NODROP_XPUB = 29671
GUARD_BLOCK, GUARD_LOSSY = "bus_block", "bus_lossy"
# The idle-subscriber runs (idle_cpu.py): vLLM-like XPUBs (lossy), broker guards with default
# limits but room for the idle subscribers, one per overflow policy.
PUB_IDLE, PUB_IDLE_BLOCK = 29654, 29655
GUARD_IDLE, GUARD_IDLE_BLOCK = "bus_idle", "bus_idle_block"
ATTACK_HWM_MESSAGES = 100  # the attack guard's hwm_messages

NS_RE = re.compile(r"rfbbench-(\d+)-(host|peer|evil)")
PATHS = ("direct", "broker", "zmq_proxy")
SIZES = (64, 64 * KiB, 4 * MiB)
# Messages per throughput run (full, quick), the flow-control window (messages a reader may be
# behind the publisher) and how often readers report progress.
COUNTS = {64: (100000, 40000), 64 * KiB: (10000, 4000), 4 * MiB: (300, 100)}
WINDOWS = {64: (256, 64), 64 * KiB: (64, 16), 4 * MiB: (8, 2)}
READERS = 4


def percentile(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


# --------------------------------------------------------------------------------------------
# Namespaces (created, deleted and swept by benchkit)


class Topology:
    def __init__(self):
        self.host = f"rfbbench-{os.getpid()}-host"
        self.peer = f"rfbbench-{os.getpid()}-peer"
        self.evil = f"rfbbench-{os.getpid()}-evil"

    def build(self) -> None:
        h = self.host
        add_namespaces(h, self.peer, self.evil)
        add_veth(h, "rfb0", f"{HOST_IP}/{SUBNET_BITS}", self.peer, f"{PEER_IP}/{SUBNET_BITS}")
        add_veth(h, "rfb1", f"{EVIL_GW}/{SUBNET_BITS}", self.evil, f"{EVIL_IP}/{SUBNET_BITS}")
        # The evil namespace reaches the publisher's address (10.78.0.1) through rfb1.
        run("ip", "-n", self.evil, "route", "add", "default", "via", EVIL_GW)
        # Ephemeral ports of the host namespace never take the benchmark's own ports.
        run("ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_local_reserved_ports=29600-29799,39600-39699")
        for ns in (self.peer, self.evil):
            wait_reachable(ns, HOST_IP, f"{ns} cannot reach {HOST_IP}")


# --------------------------------------------------------------------------------------------
# Memory (the other /proc readings are benchkit's)


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (clear_refs 5, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class MemorySampler:
    """Samples VmRSS of some processes every 50 ms in a thread (peaks between two VmHWM reads
    are caught by VmHWM itself, reset before the run)."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="rss")

    def _loop(self) -> None:
        while not self.stop_event.wait(0.05):
            for name, pid in self.pids.items():
                rss = status_field(pid, "VmRSS")
                if rss is not None:
                    self.samples[name].append(rss)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(timeout=2)


# --------------------------------------------------------------------------------------------
# The idle subscribers' connections; the policy


def established(ns: str, port: int) -> int:
    """TCP connections established from namespace `ns` to remote port `port`."""
    out = run("ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", f"( dport = :{port} )",
              check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


# What a guard whose subscribers are evicted on purpose, or come many from one address at once,
# adds: no strike bans (evictions and rate refusals are strikes; a ban would refuse the next run's
# subscribers in the kernel) and room for a burst of connections from one address. The runs
# measure what admitted subscribers cost the broker, not what bans keep out.
UNBANNED = "ban_after = 0\naccept_rate_per_peer = 100000\n"
# The idle-subscriber guards keep the strike bans at their defaults, as a deployment would: the
# idle subscribers' evictions ban their address (at once when they held the engine), so libzmq's
# reconnects are refused in the kernel instead of being admitted, idle and evicted again. Only
# the accept rate is raised, so that a hundred can arrive at once; each run unbans them after.
ROOM = "accept_rate_per_peer = 100000\n"


def default_guard(name: str, port: int, extra: str, overflow: str, per_peer: int | None = None,
                  unbanned: bool = False) -> str:
    """A broker guard with the default limits (the lossless and idle-subscriber runs); its
    on_overflow is always written out, whatever the default is."""
    lines = [f'name = "{name}"', 'kind = "zmq-xpub"', f"port = {port}", f"listen_port = {port + 10000}",
             f'allow = ["{PEER_IP}", "{EVIL_IP}"]']
    lines.append(f'on_overflow = "{overflow}"')
    if unbanned:
        lines.append(UNBANNED.strip())
    elif per_peer:
        lines.append(ROOM.strip())
    if per_peer:
        lines += [f"max_subscribers_per_peer = {per_peer}", f"max_subscribers = {per_peer + 8}"]
    return "\n[[guard]]\n" + "\n".join(lines) + "\n" + extra


def policy_text(control_socket: Path, attack_per_peer: int, busy_poll: str | None = None, block: bool = True,
                idle_per_peer: int = 8) -> str:
    extra = f'busy_poll = "{busy_poll}"\n' if busy_poll is not None else ""
    lossless = "\n# Lossless runs: default limits; block pushes back on the engine, disconnect evicts.\n" + \
        (default_guard(GUARD_BLOCK, PUB_BLOCK, extra, "block") if block else "") + \
        default_guard(GUARD_LOSSY, PUB_LOSSY, extra, "disconnect", unbanned=True)
    idle = "\n# Idle-subscriber runs: default limits, room for the idle subscribers from one peer.\n" + \
        default_guard(GUARD_IDLE, PUB_IDLE, extra, "disconnect", idle_per_peer) + \
        (default_guard(GUARD_IDLE_BLOCK, PUB_IDLE_BLOCK, extra, "block", idle_per_peer) if block else "")
    return f"""# Written by Benchmarks/broker/bench_broker.py for one run; the host namespace is the benchmark's own.
[firewall]
table = "ringfence"

[daemon]
control_socket = "{control_socket}"

# Throughput and latency: limits raised so that nothing is ever evicted (the benchmark's own
# flow control keeps each reader at most a window of messages behind anyway).
[[guard]]
name = "{GUARD}"
kind = "zmq-xpub"
port = {PUB_BROKER}
listen_port = {LISTEN_BROKER}
allow = ["{PEER_IP}", "{EVIL_IP}"]
hwm_messages = 100000
hwm_bytes = "1GiB"
max_message_bytes = "64MiB"
{extra}
# The attack: the idle subscribers are allowed peers (the allowlist cannot stop them), admitted
# in numbers; the high-water marks must, by evicting them at once (on_overflow = "disconnect",
# written out since "block", the default, would first hold the engine for max_stall); no bans
# and no accept rate cap, so that all of them are admitted and every rep meets them afresh.
[[guard]]
name = "{GUARD_ATTACK}"
kind = "zmq-xpub"
port = {PUB_BROKER_ATTACK}
listen_port = {LISTEN_BROKER_ATTACK}
allow = ["{PEER_IP}", "{EVIL_IP}"]
max_subscribers = {attack_per_peer + 64}
max_subscribers_per_peer = {attack_per_peer}
hwm_messages = {ATTACK_HWM_MESSAGES}
hwm_bytes = "64MiB"
max_message_bytes = "64MiB"
on_overflow = "disconnect"
{UNBANNED}{extra}{lossless}{idle}"""


# --------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        # throughput[size][path] -> list of run dicts; latency[path] -> list; attack[path] -> list
        self.throughput: dict[int, dict[str, list[dict]]] = {}
        self.latency: dict[str, list[dict]] = {}
        self.attack: dict[str, list[dict]] = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.run_id = 0
        self.lossless: Lossless | None = None
        self.idle_cpu: IdleCpu | None = None
        self.evil_ip = EVIL_IP

    def established_idle(self, port: int) -> int:
        """The idle subscribers' established connections to `port`."""
        return established(self.topo.evil, port)

    @property
    def has_report(self) -> bool:
        """The run went to the end (proxyd's report is made last): only then is there a report."""
        return hasattr(self, "proxyd_info")

    # -- one run -----------------------------------------------------------------------------------

    def proxy_pid(self, path: str) -> int | None:
        return {"broker": self.proxyd.pid, "zmq_proxy": self.zproxy.pid}.get(path)

    def one_run(self, path: str, size: int, count: int, *, attack: bool = False, rate: float = 0,
                latency: bool = False, window: int | None = None, ack_every: int | None = None) -> dict:
        """Readers first (each opens its SUB and waits), then the publisher (warm-up, then the
        messages); all five answer within their own time bounds."""
        a = self.args
        self.run_id += 1
        xpub, endpoint = self.route(path, attack)
        w, ack = a.windows.get(size, WINDOWS.get(size, (64, 16)))
        window, ack_every = window or w, ack_every or ack
        timeout = a.run_timeout
        cost = ProxyCost(self.proxy_pid(path))
        for reader in self.readers:
            reader.send({"op": "run", "endpoint": endpoint, "run": self.run_id, "count": count,
                         "ack_every": ack_every, "latency": latency, "large": size > 1024, "timeout": timeout})
        self.publisher.send({"op": "run", "xpub": xpub, "run": self.run_id, "count": count, "size": size,
                             "window": window, "readers": READERS, "rate": rate, "warm_timeout": a.warm_timeout,
                             "timeout": timeout})
        pub = self.publisher.read(timeout + a.warm_timeout + 20)
        answers = [r.read(timeout + a.warm_timeout + 20) for r in self.readers]
        result = {"path": path, "size": size, "count": count, "window": window, "rate": rate, "run": self.run_id,
                  "publisher": pub, "readers": [{k: v for k, v in x.items() if k != "lat_ns"} for x in answers]}
        cost.add_to(result)
        errors = ([f"publisher: {pub.get('error')}"] if not pub.get("ok") else []) + \
                 [f"reader {i}: {x.get('error')}" for i, x in enumerate(answers) if not x.get("ok")]
        result["ok"] = not errors
        if errors:
            result["error"] = "; ".join(errors)
            return result
        first = min(x["first_ns"] for x in answers)
        last = max(x["last_ns"] for x in answers)
        span = (last - first) / 1e9
        result["span_s"] = span
        result["msgs_per_s"] = (count - 1) / span if span > 0 else None
        result["bytes_per_s"] = result["msgs_per_s"] * size if result["msgs_per_s"] else None
        mid = min(x["mid_ns"] for x in answers)
        # The second half alone (messages N/2 .. N-1): the rate once a one-off cost at the start
        # (say, filling and evicting idle subscribers) is behind.
        result["second_half_msgs_per_s"] = (count - 1 - count // 2) / ((last - mid) / 1e9) if last > mid else None
        if latency:
            lat = sorted(v for x in answers for v in x.get("lat_ns", []))
            result["lat_samples"] = len(lat)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
                result[f"{name}_ms"] = percentile(lat, q) / 1e6
            result["max_ms"] = lat[-1] / 1e6
            result["achieved_rate"] = (count - 1) / pub["send_seconds"] if pub.get("send_seconds") else None
        return result

    def route(self, path: str, attack: bool) -> tuple[str, str]:
        """(the publisher's XPUB, the readers' endpoint) of a path."""
        if path == "direct":
            return "direct", f"tcp://{HOST_IP}:{PUB_DIRECT}"
        if path == "broker":
            return ("broker_attack", f"tcp://{HOST_IP}:{PUB_BROKER_ATTACK}") if attack else \
                ("broker", f"tcp://{HOST_IP}:{PUB_BROKER}")
        return "proxy", f"tcp://{HOST_IP}:{PROXY_XPUB}"

    def record_failure(self, what: str, result: dict) -> None:
        self.failures.append(f"{what}: {result.get('error')}")
        log(f"  {what}: FAILED: {result.get('error')}")

    # -- phases --------------------------------------------------------------------------------------

    def paths_order(self, rep: int) -> list[str]:
        paths = [p for p in PATHS if p in self.args.paths]
        k = rep % len(paths)
        return paths[k:] + paths[:k]

    def warm_up(self) -> None:
        """One short run per path and kind (connects the broker's and zmq_proxy's upstream links,
        warms ARP, conntrack and the caches); not recorded."""
        for path in self.paths_order(0):
            for attack in ((False, True) if path == "broker" and not self.args.no_attack else (False,)):
                r = self.one_run(path, 64 * KiB, 200, attack=attack)
                if not r["ok"]:
                    raise BenchError(f"warm-up run on {path}{' (attack guard)' if attack else ''} failed: "
                                     f"{r.get('error')}")

    def phase_throughput(self) -> None:
        a = self.args
        for rep in range(a.reps):
            for size in a.sizes:
                count = a.counts[size]
                for path in self.paths_order(rep):
                    r = self.one_run(path, size, count)
                    self.throughput.setdefault(size, {}).setdefault(path, []).append(r)
                    what = f"{size_label(size)} {path} #{rep + 1}"
                    if r["ok"]:
                        log(f"  {what}: {r['msgs_per_s']:,.0f} msg/s, {r['bytes_per_s'] / 1e6:,.1f} MB/s per reader"
                            + self._cost(r, count))
                    else:
                        self.record_failure(f"throughput {what}", r)

    def phase_latency(self) -> None:
        a = self.args
        for rep in range(a.reps):
            for path in self.paths_order(rep):
                r = self.one_run(path, 64, a.latency_count, rate=a.rate, latency=True)
                self.latency.setdefault(path, []).append(r)
                if r["ok"]:
                    log(f"  latency {path} #{rep + 1}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, "
                        f"max {r['max_ms']:.2f} ms ({r['achieved_rate']:,.0f} msg/s sent)" + self._cost(r, r["count"]))
                else:
                    self.record_failure(f"latency {path} #{rep + 1}", r)

    def phase_attack(self) -> None:
        a = self.args
        size, count = a.attack_size, a.attack_count
        for rep in range(a.attack_reps):
            for path in self.paths_order(rep):
                entry = {"path": path}
                pid = self.proxy_pid(path)
                pids = {"publisher": self.publisher.pid, **({"proxy": pid} if pid else {})}
                # Baseline: the same run without the idle subscribers, just before.
                self.publisher.request({"op": "trim"}, 10)
                entry["baseline"] = self.measured_run(path, size, count, pids)
                # Attach the idle subscribers and wait until all are connected.
                _, endpoint = self.route(path, True)
                port = int(endpoint.rsplit(":", 1)[1])
                log_offset = self.proxyd.log_size()
                attach = self.idle.request({"op": "attach", "endpoint": endpoint, "count": a.idle,
                                            "reconnect": not a.idle_no_reconnect}, 30)
                if not attach.get("ok"):
                    raise BenchError(f"attaching the idle subscribers failed: {attach}")
                deadline = time.monotonic() + 15
                n = 0
                while time.monotonic() < deadline:
                    n = established(self.topo.evil, port)
                    if n >= a.idle:
                        break
                    time.sleep(0.1)
                entry["idle_established"] = n
                time.sleep(0.5)  # their subscriptions reach the publisher (or the proxy)
                entry["subscriptions_seen_by_publisher"] = self.publisher.request({"op": "drain"}, 10).get(
                    "subscriptions")
                entry["attacked"] = self.measured_run(path, size, count, pids)
                entry["idle_established_after_run"] = established(self.topo.evil, port)
                detach = self.idle.request({"op": "detach"}, 30)
                entry["idle_rss_bytes"] = attach.get("rss")
                entry["idle_detach"] = detach
                text = self.proxyd.text_since(log_offset)
                entry["evictions"] = self.evictions(text)
                self.attack.setdefault(path, []).append(entry)
                b, x = entry["baseline"], entry["attacked"]
                what = f"attack {path} #{rep + 1}"
                if n < a.idle:
                    self.failures.append(f"{what}: only {n} of {a.idle} idle subscribers connected")
                for label, r in (("baseline", b), ("attacked", x)):
                    if not r["ok"]:
                        self.record_failure(f"{what} ({label})", r)
                if b["ok"] and x["ok"]:
                    log(f"  {what}: {x['msgs_per_s']:,.0f} msg/s with {n} idle subscribers vs {b['msgs_per_s']:,.0f} "
                        f"without ({x['msgs_per_s'] / b['msgs_per_s']:.2f}); publisher RSS "
                        f"+{self.mib(x['pub_growth'])} (baseline +{self.mib(b['pub_growth'])})"
                        + (f"; evictions {sum(entry['evictions'].values())}" if path == "broker" else ""))
                unexpected = {k: v for k, v in entry["evictions"].items() if not k.endswith(f"peer={EVIL_IP}")}
                if unexpected:
                    self.failures.append(f"{what}: proxyd evicted real readers: {unexpected}")
                time.sleep(0.3)

    def measured_run(self, path: str, size: int, count: int, pids: dict[str, int]) -> dict:
        before = {name: status_field(pid, "VmRSS") for name, pid in pids.items()}
        for pid in pids.values():
            reset_peak_rss(pid)
        with MemorySampler(pids) as sampler:
            r = self.one_run(path, size, count, attack=True)
        r["rss_before"] = before
        r["rss_peak"] = {name: status_field(pid, "VmHWM") for name, pid in pids.items()}
        r["rss_end"] = {name: status_field(pid, "VmRSS") for name, pid in pids.items()}
        r["rss_samples_max"] = {name: max(s) if s else None for name, s in sampler.samples.items()}
        r["pub_growth"] = (r["rss_peak"]["publisher"] or 0) - (before["publisher"] or 0)
        if "proxy" in pids:
            r["proxy_growth"] = (r["rss_peak"]["proxy"] or 0) - (before["proxy"] or 0)
        return r

    @staticmethod
    def evictions(text: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for line in text.splitlines():
            if 'msg="subscriber evicted: queue full"' in line:
                g = re.search(r"\bguard=(\S+)", line)
                p = re.search(r"\bpeer=(\S+)", line)
                key = f"guard={g.group(1) if g else '?'} peer={p.group(1) if p else '?'}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    @staticmethod
    def mib(b: int | None) -> str:
        return "?" if b is None else f"{b / MiB:.1f} MiB"

    @staticmethod
    def _cost(r: dict, count: int) -> str:
        if "proxy_cpu_s" not in r:
            return ""
        text = f"; proxy CPU {r['proxy_cpu_s']:.2f} s ({r['proxy_cpu_s'] / count * 1e6:.1f} us/msg)"
        if "proxy_context_switches" in r:
            text += f", {r['proxy_context_switches']:,} context switches"
        return text

    # -- the run -------------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        proxyd_bin = proxyd_binary(a.bin_dir)
        self.machine = machine_info(proxyd_bin, os.cpu_count())
        self.started = time.monotonic()
        self.stat_start = stat_cpu()

        logdir = self.logdir = make_logdir(a.log_dir, "rfbbench-")

        sweep_stale(NS_RE)
        topo = self.topo = Topology()
        log(f"namespaces {topo.host} ({HOST_IP}, {EVIL_GW}), {topo.peer} ({PEER_IP}) and {topo.evil} ({EVIL_IP})")
        topo.build()

        policy = policy_text(logdir / "control.sock", max(a.idle, 8), a.busy_poll, not a.no_block,
                             max([8, *a.idle_cpu_counts]))
        guards = [GUARD, GUARD_ATTACK, GUARD_LOSSY, GUARD_IDLE] + ([] if a.no_block else [GUARD_BLOCK, GUARD_IDLE_BLOCK])
        self.proxyd = start_proxyd(proxyd_bin, topo.host, policy, logdir, guards, "broker listening")
        self.proxyd_fds_start = fd_count(self.proxyd.pid)

        xpubs = (f"broker={PUB_BROKER},broker_attack={PUB_BROKER_ATTACK},direct={PUB_DIRECT},proxy={PUB_PROXY_UP},"
                 f"nodrop_block={PUB_BLOCK},nodrop_lossy={PUB_LOSSY},nodrop_direct={PUB_DIRECT_NODROP},"
                 f"nodrop_proxy={PUB_PROXY_NODROP_UP},idle={PUB_IDLE},idle_block={PUB_IDLE_BLOCK}")
        self.publisher = Agent(AGENT, topo.host, "publisher", logdir, "publisher", "--host", HOST_IP, "--xpub", xpubs,
                               "--ack-port", str(ACK_PORT), "--nodrop",
                               "nodrop_block,nodrop_lossy,nodrop_direct,nodrop_proxy")
        self.zproxy = Agent(AGENT, topo.host, "zmq_proxy", logdir, "zmqproxy", "--xsub-connect",
                            f"tcp://{HOST_IP}:{PUB_PROXY_UP}", "--xpub-bind", f"tcp://{HOST_IP}:{PROXY_XPUB}")
        self.zproxy_nodrop = Agent(AGENT, topo.host, "zmq_proxy_nodrop", logdir, "zmqproxy", "--nodrop",
                                   "--xsub-connect", f"tcp://{HOST_IP}:{PUB_PROXY_NODROP_UP}",
                                   "--xpub-bind", f"tcp://{HOST_IP}:{PROXY_NODROP_XPUB}")
        self.readers = [Agent(AGENT, topo.peer, f"reader{i}", logdir, "reader", "--id", str(i), "--ack",
                              f"{HOST_IP}:{ACK_PORT}") for i in range(READERS)]
        self.idle = Agent(AGENT, topo.evil, "idle", logdir, "idle")
        for agent in (self.publisher, self.zproxy, self.zproxy_nodrop, *self.readers, self.idle):
            hello = agent.read(30)
            if not hello.get("ready"):
                raise BenchError(f"{agent.name}: {hello}")
            if agent is self.publisher:
                self.machine["libzmq"] = hello.get("zmq")
                self.machine["pyzmq"] = hello.get("pyzmq")
            if hello.get("pid") != agent.pid:
                raise BenchError(f"{agent.name} reports pid {hello.get('pid')}, expected {agent.pid}: "
                                 "CPU and memory figures would be wrong")

        log("warm-up: one short run per path")
        self.warm_up()
        if not a.no_throughput:
            log(f"throughput: {', '.join(f'{size_label(s)} × {a.counts[s]:,}' for s in a.sizes)} messages to "
                f"{READERS} readers, {a.reps} run(s) per path and size, paths interleaved")
            self.phase_throughput()
        if not a.no_latency:
            log(f"latency: 64 B paced at {a.rate:,.0f} msg/s, {a.latency_count:,} messages, {a.reps} run(s) per path")
            self.phase_latency()
        if not a.no_attack:
            log(f"attack: {a.idle} idle subscribers from {EVIL_IP}, {size_label(a.attack_size)} × {a.attack_count:,}, "
                f"{a.attack_reps} run(s) per path")
            self.phase_attack()
        if not a.no_lossless:
            self.phase_lossless()
        if not a.no_idle_cpu:
            self.phase_idle_cpu()
        self.machine["loadavg_end"] = loadavg()
        self.own_cpu = self.our_cpu_seconds()
        self.stat_end = stat_cpu()
        self.elapsed = time.monotonic() - self.started
        if self.stat_start and self.stat_end:
            # Busy time of the whole machine during the run, less what the benchmark's own processes used.
            busy = (self.stat_end[1] - self.stat_start[1]) / os.sysconf("SC_CLK_TCK")
            self.machine["elapsed_s"] = self.elapsed
            self.machine["machine_busy_cpu_s"] = busy
            self.machine["benchmark_cpu_s"] = self.own_cpu
            self.machine["other_cpu_s"] = busy - self.own_cpu
        self.proxyd_report()
        return 0

    def phase_lossless(self) -> None:
        a = self.args
        paths = [p for p in LOSSLESS_PATHS if not (a.no_block and p == "broker")]
        log(f"lossless: flat out, {', '.join(f'{size_label(s)} × {a.counts[s]:,}' for s in a.sizes)} to "
            f"{a.lossless_readers} readers, paths {', '.join(paths)}, {a.reps} run(s) each")
        ep = lambda port: f"tcp://{HOST_IP}:{port}"  # noqa: E731
        routes = {"direct": ("nodrop_direct", ep(PUB_DIRECT_NODROP), None),
                  "broker": ("nodrop_block", ep(PUB_BLOCK), GUARD_BLOCK),
                  "zmq_proxy": ("nodrop_proxy", ep(PROXY_NODROP_XPUB), None),
                  "broker_lossy": ("nodrop_lossy", ep(PUB_LOSSY), GUARD_LOSSY)}
        proxies = {"broker": self.proxyd.pid, "broker_lossy": self.proxyd.pid, "zmq_proxy": self.zproxy_nodrop.pid}
        self.lossless = Lossless(self, paths, routes, proxies)
        self.lossless.phase()

    def phase_idle_cpu(self) -> None:
        a = self.args
        routes = {"disconnect": ("idle", f"tcp://{HOST_IP}:{PUB_IDLE}", GUARD_IDLE, PUB_IDLE)}
        if not a.no_block:
            routes["block"] = ("idle_block", f"tcp://{HOST_IP}:{PUB_IDLE_BLOCK}", GUARD_IDLE_BLOCK, PUB_IDLE_BLOCK)
        log(f"idle subscribers: {', '.join(map(str, a.idle_cpu_counts))} idle beside 2 readers, "
            f"{', '.join(routes)}, {a.idle_cpu_reps} run(s) each")
        self.idle_cpu = IdleCpu(self, routes, a.idle_cpu_counts)
        self.idle_cpu.phase()

    def our_cpu_seconds(self) -> float:
        total = sum(os.times()[:4])  # this script and the commands it ran (ip, ss)
        for pid in [self.proxyd.pid, self.publisher.pid, self.zproxy.pid, self.zproxy_nodrop.pid, self.idle.pid,
                    *(r.pid for r in self.readers)]:
            total += cpu_seconds(pid) or 0
        return total

    def proxyd_report(self) -> None:
        d = self.proxyd
        report = d.vitals(self.proxyd_fds_start, "rss_peak_bytes_since_last_reset")
        if report["alive_after_runs"]:
            report["cpu_s_total"] = cpu_seconds(d.pid)
        d.stop_after_runs(self.failures, self.notes)
        report["exit_code"] = d.exit_code
        lines, bad = d.log_lines()
        # Expected: idle subscribers evicted (attack and idle-subscriber guards), and readers of the
        # lossy guard of the lossless runs (that is what those runs show).
        expected = [line for line in bad if (
            'msg="subscriber evicted: queue full"' in line and f"guard={GUARD_ATTACK}" in line and f"peer={EVIL_IP}" in line)
            or (EVICTED in line and f"peer={EVIL_IP}" in line and re.search(rf"guard=({GUARD_IDLE}|{GUARD_IDLE_BLOCK})\b", line))
            or (EVICTED in line and re.search(rf"guard={GUARD_LOSSY}\b", line))]
        other = [line for line in bad if line not in expected]
        report["log_lines"] = len(lines)
        report["log_warning_count"] = len(bad)
        report["expected_evictions"] = len(expected)
        report["other_warnings"] = other[:30]
        report["other_warning_count"] = len(other)
        report["evictions_total"] = self.evictions("\n".join(lines))
        if other:
            self.notes.append(f"proxyd logged {len(other)} warning/error lines besides the idle subscribers' "
                              f"evictions, first: {other[0]}")
        note_descriptor_growth(report, 8, self.notes)
        self.proxyd_info = report

    # -- summaries -----------------------------------------------------------------------------------

    def tp(self, size: int, path: str) -> float | None:
        runs = self.throughput.get(size, {}).get(path, [])
        return median([r["msgs_per_s"] for r in runs if r.get("ok")])

    def tp_ok_runs(self, size: int, path: str) -> list[dict]:
        return [r for r in self.throughput.get(size, {}).get(path, []) if r.get("ok")]

    def lat(self, path: str, key: str) -> float | None:
        return median([r[key] for r in self.latency.get(path, []) if r.get("ok")])

    def attack_med(self, path: str, which: str, key: str) -> float | None:
        return median([e[which][key] for e in self.attack.get(path, []) if e[which].get("ok")
                       and e[which].get(key) is not None])

    def attack_ratio(self, path: str, key: str = "msgs_per_s") -> float | None:
        b, x = self.attack_med(path, "baseline", key), self.attack_med(path, "attacked", key)
        return x / b if b and x else None

    def mem(self, path: str, which: str, field: str, name: str = "publisher") -> float | None:
        return median([e[which][field].get(name) for e in self.attack.get(path, [])
                       if isinstance(e[which].get(field), dict) and e[which][field].get(name) is not None])

    @staticmethod
    def ratio(x, y) -> float | None:
        return x / y if x is not None and y else None

    def spread(self, values: list[float]) -> float | None:
        return (max(values) - min(values)) / max(values) if len(values) > 1 and max(values) else None

    def med_label(self, n: int) -> str:
        return f"median of {n}" if n > 1 else "1 run"

    def table(self) -> str:
        a = self.args
        fmt = lambda r: "" if r is None else f"{r:.2f}"  # noqa: E731
        out = ["| per reader, " + self.med_label(a.reps) + " | direct | broker | zmq_proxy | broker/direct | "
               "broker/zmq_proxy | zmq_proxy/direct |", "|---|---:|---:|---:|---:|---:|---:|"]
        for size in a.sizes:
            frames = "1 frame" if size <= 1024 else "2 frames (64 B + body)"
            cells = []
            for path in PATHS:
                m = self.tp(size, path)
                cells.append(("error" if path in a.paths else "—") if m is None
                             else f"{m:,.0f} msg/s · {m * size / 1e6:,.1f} MB/s")
            d, b, z = (self.tp(size, p) for p in PATHS)
            out.append(f"| {size_label(size)}, {frames}, {a.counts[size]:,} msgs | " + " | ".join(cells)
                       + f" | {fmt(self.ratio(b, d))} | {fmt(self.ratio(b, z))} | {fmt(self.ratio(z, d))} |")
        return "\n".join(out)

    def latency_table(self) -> str:
        a = self.args
        out = [f"| 64 B paced at {a.rate:,.0f} msg/s, {a.latency_count:,} msgs × {READERS} readers, "
               f"{self.med_label(a.reps)} | direct | broker | zmq_proxy | broker added | zmq_proxy added |",
               "|---|---:|---:|---:|---:|---:|"]
        for key, label in (("p50_ms", "p50 one-way (ms)"), ("p99_ms", "p99 one-way (ms)"),
                           ("p999_ms", "p99.9 one-way (ms)")):
            d, b, z = (self.lat(p, key) for p in PATHS)
            cell = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
            add = lambda v: "" if v is None or d is None else f"{v - d:+.3f}"  # noqa: E731
            out.append(f"| {label} | {cell(d)} | {cell(b)} | {cell(z)} | {add(b)} | {add(z)} |")
        return "\n".join(out)

    def attack_table(self) -> str:
        a = self.args
        n = a.attack_reps
        out = [f"| {a.idle} idle subscribers, {size_label(a.attack_size)} × {a.attack_count:,}, "
               f"{self.med_label(n)} | direct | broker | zmq_proxy |", "|---|---:|---:|---:|"]

        def row(label, fn):
            out.append(f"| {label} | " + " | ".join(fn(p) for p in PATHS) + " |")

        num = lambda v, f="{:,.0f}": "—" if v is None else f.format(v)  # noqa: E731
        row("readers' msg/s without → with the idle subscribers",
            lambda p: f"{num(self.attack_med(p, 'baseline', 'msgs_per_s'))} → "
                      f"{num(self.attack_med(p, 'attacked', 'msgs_per_s'))}")
        row("**ratio under attack / no attack**", lambda p: f"**{num(self.attack_ratio(p), '{:.2f}')}**")
        row("the same over each run's second half (steady state)",
            lambda p: num(self.attack_ratio(p, "second_half_msgs_per_s"), "{:.2f}"))
        mib = lambda v: "—" if v is None else f"{v / MiB:,.0f}"  # noqa: E731
        mib1 = lambda v: "—" if v is None else f"{v / MiB:+,.1f}"  # noqa: E731
        for which, label in (("baseline", "no attack"), ("attacked", "under attack")):
            row(f"publisher RSS, {label}: before → peak → end (MiB)",
                lambda p, w=which: f"{mib(self.mem(p, w, 'rss_before'))} → {mib(self.mem(p, w, 'rss_peak'))} → "
                                   f"{mib(self.mem(p, w, 'rss_end'))}")
        row("publisher peak growth, no attack → under attack (MiB)",
            lambda p: f"{mib1(self.attack_med(p, 'baseline', 'pub_growth'))} → "
                      f"**{mib1(self.attack_med(p, 'attacked', 'pub_growth'))}**")
        row("proxy RSS under attack: before → peak (MiB)",
            lambda p: "—" if p == "direct" else
            f"{mib(self.mem(p, 'attacked', 'rss_before', 'proxy'))} → {mib(self.mem(p, 'attacked', 'rss_peak', 'proxy'))}")
        row("idle subscribers still connected after the attacked run (median)",
            lambda p: num(median([e.get("idle_established_after_run") for e in self.attack.get(p, [])])))
        row("evictions by proxyd during the attacked run (median)",
            lambda p: "—" if p != "broker" else num(median([sum(e["evictions"].values()) for e in self.attack.get(p, [])])))
        return "\n".join(out)

    def cost_table(self) -> str:
        a = self.args
        rows = []

        def cell(runs: list[dict]) -> str:
            runs = [r for r in runs if r.get("ok") and r.get("proxy_cpu_s") is not None]
            if not runs:
                return "—"
            cpu = median([r["proxy_cpu_s"] for r in runs])
            cs = median([r.get("proxy_context_switches") for r in runs])
            count = runs[0]["count"]
            return (f"{cpu:.2f} s · {cs:,.0f} cs · {cpu / count * 1e6:,.1f} µs/msg"
                    + (f" · {cpu / (count * runs[0]['size'] / (1 << 30)):.2f} s/GiB" if runs[0]["size"] >= 64 * KiB else ""))

        for size in a.sizes if self.throughput else ():
            rows.append(f"| throughput {size_label(size)} × {a.counts[size]:,} | "
                        + " | ".join(cell(self.throughput.get(size, {}).get(p, [])) for p in ("broker", "zmq_proxy")) + " |")
        if self.latency:
            rows.append(f"| latency, 64 B × {a.latency_count:,} paced | "
                        + " | ".join(cell(self.latency.get(p, [])) for p in ("broker", "zmq_proxy")) + " |")
        if self.attack:
            for which, label in (("baseline", "no attack"), ("attacked", f"{a.idle} idle subscribers")):
                rows.append(f"| {size_label(a.attack_size)} × {a.attack_count:,}, {label} | "
                            + " | ".join(cell([e[which] for e in self.attack.get(p, [])]) for p in ("broker", "zmq_proxy"))
                            + " |")
        return "\n".join(["| proxy cost per run (median; CPU = utime+stime, cs = context switches over its threads) "
                          "| broker (proxyd) | zmq_proxy |", "|---|---:|---:|", *rows])

    def targets(self) -> list[tuple[str, str, bool | None]]:
        a = self.args
        out = []
        for size in a.sizes:
            r = self.ratio(self.tp(size, "broker"), self.tp(size, "zmq_proxy"))
            out.append((f"{size_label(size)}: broker ahead of zmq_proxy (broker/zmq_proxy > 1)",
                        "—" if r is None else f"{r:.3f}", None if r is None else r > 1.0))
        for size in a.sizes:
            if size >= 64 * KiB:
                r = self.ratio(self.tp(size, "broker"), self.tp(size, "direct"))
                out.append((f"{size_label(size)}: broker/direct ≥ 0.85", "—" if r is None else f"{r:.3f}",
                            None if r is None else r >= 0.85))
        for key, goal in (("p50_ms", 0.05), ("p99_ms", 0.1)):
            b, d = self.lat("broker", key), self.lat("direct", key)
            v = None if b is None or d is None else b - d
            out.append((f"added latency {key[:3]} ≤ {goal} ms at {a.rate:,.0f} msg/s",
                        "—" if v is None else f"{v:+.3f} ms", None if v is None else v <= goal))
        if self.attack:
            r = self.attack_ratio("broker")
            r2 = self.attack_ratio("broker", "second_half_msgs_per_s")
            out.append((f"under attack ({a.idle} idle subscribers): broker throughput ≥ 0.95 of no attack (whole run; "
                        f"second half alone {'—' if r2 is None else f'{r2:.3f}'}, for information)",
                        "—" if r is None else f"{r:.3f}", None if r is None else r >= 0.95))
            gb = self.attack_med("broker", "baseline", "pub_growth")
            gx = self.attack_med("broker", "attacked", "pub_growth")
            v = None if gb is None or gx is None else gx - gb
            out.append((f"under attack: publisher memory flat (peak growth at most {a.flat_mib} MiB above the "
                        f"no-attack run's)", "—" if v is None else f"{v / MiB:+.1f} MiB",
                        None if v is None else v <= a.flat_mib * MiB))
        return out

    def all_targets(self) -> list[tuple[str, str, bool | None]]:
        return self.targets() + (self.lossless.targets() if self.lossless else []) + \
            (self.idle_cpu.targets() if self.idle_cpu else [])

    def noise_line(self) -> str:
        m = self.machine
        noisy = []
        for size in self.args.sizes:
            for path in PATHS:
                sp = self.spread([r["msgs_per_s"] for r in self.tp_ok_runs(size, path)])
                if sp is not None and sp > NOISY_SPREAD:
                    noisy.append(f"{size_label(size)}/{path} {sp:.0%}")
        other = m.get("other_cpu_s")
        during = "" if other is None else (
            f"During the run, processes other than the benchmark's used about {max(0.0, other):.0f} CPU-seconds "
            f"in {m['elapsed_s']:.0f} s (≈ {max(0.0, other) / m['elapsed_s']:.2f} CPUs). ")
        return load_line(m, noisy, during)

    def report(self) -> str:
        m, a = self.machine, self.args
        lines = ["", "## Ringfence broker benchmark", "",
                 machine_line(m) + f"; libzmq {m.get('libzmq', '?')}, pyzmq {m.get('pyzmq', '?')}, "
                 f"Python {m['python']}" + (" — quick mode" if a.quick else ""), ""]
        if not a.no_throughput:
            lines += [f"Throughput: one publisher → {READERS} readers (peer namespace), every reader receives every "
                      "message; msg/s per reader, from the first message received (any reader) to the last (any "
                      "reader); MB/s = msg/s × payload (10^6 B/s), per reader (× 4 for the fan-out).", "",
                      self.table(), ""]
        if not a.no_latency:
            lines += ["Latency: one-way, receive time − send time stamped in the message (CLOCK_MONOTONIC), over all "
                      "readers' messages; added = path − direct.", "", self.latency_table(), ""]
        if self.attack:
            lines += [f"Attack: {a.idle} idle subscribers (libzmq SUB, subscribed to \"\", never read, RCVHWM 1, "
                      f"reconnect {'off' if a.idle_no_reconnect else 'on (libzmq default, 100 ms)'}) from {EVIL_IP}, "
                      f"an allowed peer; broker guard {GUARD_ATTACK}: hwm_messages = 100, hwm_bytes = \"64MiB\", "
                      f"on_overflow = \"disconnect\". Each attacked run follows a run without them.", "",
                      self.attack_table(), ""]
        if self.lossless:
            lines += ["Lossless: the publisher sends flat out (no flow control of its own) through XPUBs with "
                      "XPUB_NODROP; each reader checks every sequence number and counts what it never got (lost); "
                      "msg/s = messages delivered per reader over the first to the last receipt. "
                      "broker (block): a guard with on_overflow = \"block\" and default limits; broker "
                      "(disconnect): default limits and policy, for contrast.", "",
                      self.lossless.table(), "", self.lossless.cost_table(), ""]
        if self.idle_cpu:
            lines += ["Idle subscribers: a vLLM-like writer (XPUB_VERBOSE) waits for its 2 readers' subscriptions, "
                      "sends READY; then the idle subscribers connect (libzmq SUB, never read, RCVHWM 1, SO_RCVBUF "
                      f"4096) from {EVIL_IP}, an allowed peer; then the messages, at most a window ahead of the slower "
                      "reader. CPU = proxyd's utime+stime over the messages.", "", self.idle_cpu.table(), ""]
        if self.throughput or self.latency or self.attack:
            lines += [self.cost_table(), ""]
        lines += [self.noise_line()]
        info = getattr(self, "proxyd_info", None)
        if info:
            lines.append(proxyd_line(info, "RSS at the end", "rss_end_bytes",
                                     f"{info.get('cpu_s_total') or 0:.1f} CPU s in all; {info['expected_evictions']} "
                                     f"expected evictions (idle subscribers; readers of the lossy lossless runs), "
                                     f"{info['other_warning_count']} other "
                                     f"warning/error log lines; exit code {info.get('exit_code')}."))
        lines += ["", "Targets:"]
        for name, shown, ok in self.all_targets():
            lines.append(f"- {name}: {shown} — {verdict(ok)}")
        lines += observations(self.failures, self.notes)
        return "\n".join(lines)

    def json_data(self) -> dict:
        a = self.args
        summary = {
            "throughput_msgs_per_s_median": {size_label(s): {p: self.tp(s, p) for p in PATHS} for s in a.sizes},
            "latency_ms_median": {p: {k: self.lat(p, k) for k in ("p50_ms", "p99_ms", "p999_ms")} for p in PATHS},
            "attack_ratio": {p: self.attack_ratio(p) for p in PATHS},
            "attack_ratio_second_half": {p: self.attack_ratio(p, "second_half_msgs_per_s") for p in PATHS},
        }
        return {
            "machine": self.machine,
            "config": {k: (v if not isinstance(v, dict) else {str(x): y for x, y in v.items()})
                       for k, v in vars(a).items() if k != "json"},
            "summary": summary,
            "throughput": {size_label(s): runs for s, runs in self.throughput.items()},
            "latency": self.latency,
            "attack": self.attack,
            "targets": [{"name": n, "value": v, "met": ok} for n, v, ok in self.all_targets()],
            "lossless": self.lossless.json_data() if self.lossless else None,
            "idle_cpu": self.idle_cpu.json_data() if self.idle_cpu else None,
            "proxyd": getattr(self, "proxyd_info", None),
            "failures": self.failures,
            "notes": self.notes,
        }


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(B|KiB|MiB)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64, 64KiB, 4MiB)")
    return int(m.group(1)) * {None: 1, "b": 1, "kib": KiB, "mib": MiB}[(m.group(2) or "").lower() or None]


def parse_args(argv=None):
    ap = arg_parser("Direct libzmq vs proxyd's ZMTP broker vs zmq_proxy, in network namespaces: throughput, "
                    "latency, and 200 idle subscribers.", "fewer messages, 1 run per path (under a minute)")
    ap.add_argument("--reps", type=int, help="throughput and latency runs per path, median kept (default 3; quick 1)")
    ap.add_argument("--sizes", help="comma-separated message sizes (default 64,64KiB,4MiB)")
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated paths (default direct,broker,zmq_proxy)")
    ap.add_argument("--count", action="append", default=[], metavar="SIZE=N",
                    help="messages per throughput run for a size (default 64=100000, 64KiB=10000, 4MiB=300; "
                         "quick 40000, 4000, 100)")
    ap.add_argument("--window", action="append", default=[], metavar="SIZE=W[/A]",
                    help="flow-control window for a size: readers at most W messages behind, reporting every A "
                         "(default 64=256/64, 64KiB=64/16, 4MiB=8/2; the attack guard's hwm_messages = 100 "
                         "needs W < 100 at the attack size)")
    ap.add_argument("--busy-poll", help="the broker guards' busy_poll (default: the policy default, 2ms)")
    ap.add_argument("--rate", type=float, default=5000.0, help="paced rate of the latency runs (5000 msg/s)")
    ap.add_argument("--latency-count", type=int, help="messages per latency run (default 5000; quick 2500)")
    ap.add_argument("--idle", type=int, default=200, help="idle subscribers in the attack (200)")
    ap.add_argument("--idle-no-reconnect", action="store_true",
                    help="idle subscribers do not reconnect once evicted (ZMQ_RECONNECT_IVL -1)")
    ap.add_argument("--attack-size", type=parse_size, default=64 * KiB, help="message size of the attack runs (64KiB)")
    ap.add_argument("--attack-count", type=int, help="messages per attack run (default 6000; quick 4000)")
    ap.add_argument("--attack-reps", type=int, help="attack runs per path (default 3; quick 1)")
    ap.add_argument("--flat-mib", type=float, default=8.0,
                    help="'publisher memory flat': peak growth under attack at most this many MiB above "
                         "the no-attack run's (8)")
    ap.add_argument("--run-timeout", type=float, default=30.0, help="time bound of one run, each side (30 s)")
    ap.add_argument("--warm-timeout", type=float, default=15.0,
                    help="time bound for every reader to receive a warm-up message (15 s)")
    ap.add_argument("--no-throughput", action="store_true", help="skip the throughput runs")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    ap.add_argument("--no-attack", action="store_true", help="skip the attack runs (200 idle subscribers)")
    ap.add_argument("--no-lossless", action="store_true", help="skip the lossless runs")
    ap.add_argument("--no-idle-cpu", action="store_true", help="skip the idle-subscriber CPU runs")
    ap.add_argument("--lossless-readers", type=int, default=2, choices=range(1, READERS + 1), metavar="N",
                    help="readers in the lossless runs (default 2, as in issue 14's observation; at most 4)")
    ap.add_argument("--no-block", action="store_true",
                    help="no guard with on_overflow = \"block\" (for a proxyd that does not know it yet)")
    ap.add_argument("--idle-cpu-counts", default="7,100",
                    help="idle subscribers in the idle-subscriber CPU runs, beside a run without (default 7,100)")
    ap.add_argument("--idle-cpu-reps", type=int, help="idle-subscriber CPU runs per setting (default 3; quick 1)")
    add_log_options(ap, "proxyd's and the agents' logs")
    args = ap.parse_args(argv)
    q = args.quick
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for p in args.paths:
        if p not in PATHS:
            ap.error(f"unknown path {p!r} (direct, broker, zmq_proxy)")
    args.sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else list(SIZES)
    args.counts = {s: COUNTS.get(s, (2000, 700))[1 if q else 0] for s in args.sizes}
    for item in args.count:
        size, _, n = item.partition("=")
        args.counts[parse_size(size)] = int(n)
    args.windows = {}
    for item in args.window:
        size, _, spec = item.partition("=")
        w, _, ack = spec.partition("/")
        args.windows[parse_size(size)] = (int(w), int(ack) if ack else max(1, int(w) // 4))
    attack_window = args.windows.get(args.attack_size, WINDOWS.get(args.attack_size, (64, 16)))[0]
    if not args.no_attack and attack_window >= ATTACK_HWM_MESSAGES:
        ap.error(f"the window at the attack size ({attack_window} messages) must stay under the attack guard's "
                 f"hwm_messages ({ATTACK_HWM_MESSAGES}), or the real readers get evicted too (--window)")
    for size in args.sizes:
        if size < HEADER_BYTES:
            ap.error(f"message size {size} is below the {HEADER_BYTES}-byte header")
    args.idle_cpu_counts = [int(x) for x in args.idle_cpu_counts.split(",") if x.strip()]
    defaults = {"reps": 1 if q else 3, "latency_count": 2500 if q else 5000, "idle_cpu_reps": 1 if q else 3,
                "attack_count": 4000 if q else 6000, "attack_reps": 1 if q else 3}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


HEADER_BYTES = 28


def main(argv=None) -> int:
    args = parse_args(argv)
    if subprocess.run([sys.executable, "-c", "import zmq"], capture_output=True).returncode != 0:
        print(f"{sys.executable} cannot import zmq: run with Debian's python3 (python3-zmq), e.g. /usr/bin/python3 "
              f"or .venv/bin/python", file=sys.stderr)
        return 2
    return run_bench(Bench(args), args, "bench_broker.py")


if __name__ == "__main__":
    sys.exit(main())
