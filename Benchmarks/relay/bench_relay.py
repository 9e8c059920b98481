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

import argparse
import atexit
import contextlib
import datetime
import json
import os
import platform
import queue
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
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
METRICS = (*BULK_METRICS, "store", "connrate")
TORCH_ENV = {"TORCH_CPP_LOG_LEVEL": "ERROR", "TORCH_SHOW_CPP_STACKTRACES": "0", "OMP_NUM_THREADS": "1"}


class BenchError(Exception):
    """A setup step failed: the run cannot go on."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*args, check: bool = True, timeout: float = 20.0, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise BenchError(f"`{' '.join(map(str, args))}` failed (rc={proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()}")
    return proc


# --------------------------------------------------------------------------------------------
# Cleanup: one registry, run once, from `finally`, atexit, or a signal


class Cleanup:
    def __init__(self):
        self.actions: list[tuple[str, callable]] = []
        self.done = False
        self.lock = threading.Lock()

    def add(self, what: str, action) -> None:
        self.actions.append((what, action))

    def run(self) -> list[str]:
        with self.lock:
            if self.done:
                return []
            self.done = True
        # A second Ctrl-C must not cut the teardown short.
        with contextlib.suppress(ValueError):  # not on the main thread (atexit is)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        problems = []
        for what, action in reversed(self.actions):
            try:
                action()
            except Exception as exc:  # keep tearing down
                problems.append(f"{what}: {exc}")
        return problems


CLEANUP = Cleanup()


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------------
# Namespaces


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_netns_processes(name: str) -> None:
    """Ends what still runs in one of our namespaces (only ever ours), by pid: SIGTERM, then
    SIGKILL after 3 s."""
    out = run("ip", "netns", "pids", name, check=False).stdout
    pids = [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if pid_alive(p) and not _zombie(p)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def netns_delete(name: str) -> None:
    if netns_exists(name):
        kill_netns_processes(name)
        run("ip", "netns", "del", name, check=False)
        if netns_exists(name):
            raise BenchError(f"could not delete namespace {name}")


def sweep_stale() -> None:
    """Deletes rfbench-PID-* namespaces of earlier runs whose process is gone (SIGKILL)."""
    d = Path("/run/netns")
    if not d.is_dir():
        return
    for entry in d.iterdir():
        m = NS_RE.fullmatch(entry.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            log(f"removing stale namespace {entry.name}")
            netns_delete(entry.name)


class Topology:
    def __init__(self):
        self.host = f"rfbench-{os.getpid()}-host"
        self.peer = f"rfbench-{os.getpid()}-peer"

    def build(self) -> None:
        for ns in (self.host, self.peer):
            run("ip", "netns", "add", ns)
            CLEANUP.add(f"namespace {ns}", lambda ns=ns: netns_delete(ns))
            run("ip", "-n", ns, "link", "set", "lo", "up")
        h, p = self.host, self.peer
        run("ip", "-n", h, "link", "add", "rfb0", "type", "veth", "peer", "name", "eth0", "netns", p)
        run("ip", "-n", h, "addr", "add", f"{HOST_IP}/{SUBNET_BITS}", "dev", "rfb0")
        run("ip", "-n", h, "link", "set", "rfb0", "up")
        run("ip", "-n", p, "addr", "add", f"{PEER_IP}/{SUBNET_BITS}", "dev", "eth0")
        run("ip", "-n", p, "link", "set", "eth0", "up")
        # Per-namespace settings of our own namespaces only: room for the connection-rate
        # runs' ephemeral ports, and none of them ever taken from the benchmark's own ports.
        run("ip", "netns", "exec", p, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000")
        run("ip", "netns", "exec", h, "sysctl", "-qw",
            "net.ipv4.ip_local_reserved_ports=29500-29799,39500-39599")
        deadline = time.monotonic() + 5
        while run("ip", "netns", "exec", p, "ping", "-c1", "-W1", HOST_IP, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise BenchError(f"{PEER_IP} cannot reach {HOST_IP} over the veth pair")


# --------------------------------------------------------------------------------------------
# Processes in the namespaces


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int | None:
    """Voluntary + involuntary context switches summed over the threads that exist now
    (approximate: threads that ended in between are not counted)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


def busy_cpus(seconds: float = 1.0) -> float | None:
    """How many CPUs' worth of time the machine spent busy over `seconds` (from /proc/stat):
    other people's work, measured before the benchmark starts anything."""
    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if t1 == t0:
        return None
    return (1 - (i1 - i0) / (t1 - t0)) * len(os.sched_getaffinity(0))


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def status_field(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


SETPRIV = shutil.which("setpriv")


def in_ns(ns: str, *argv: str) -> list[str]:
    """The command line that runs `argv` in namespace `ns`. With util-linux's setpriv, the
    process also gets SIGTERM should this script die without cleaning up (SIGKILL); setpriv
    and `ip netns exec` exec in place, so the pid is the program's own."""
    prefix = [SETPRIV, "--pdeathsig", "TERM"] if SETPRIV else []
    return [*prefix, "ip", "netns", "exec", ns, *argv]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL; returns the exit code (None if it had to be killed)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        return None


class Agent:
    """bench_agent.py in a namespace, one JSON line per request and per answer."""

    def __init__(self, ns: str, name: str, logdir: Path, *args: str):
        self.name = name
        self.stderr_path = logdir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            in_ns(ns, sys.executable, str(AGENT), *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
            env=dict(os.environ, **TORCH_ENV), start_new_session=True)
        CLEANUP.add(f"agent {name}", self.stop)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True, name=f"pump-{name}").start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def describe(self) -> str:
        tail = ""
        with contextlib.suppress(OSError):
            tail = self.stderr_path.read_text(errors="replace")[-2000:]
        return f"{self.name} (rc={self.proc.poll()}), stderr tail:\n{tail}"

    def read(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"no answer from {self.name} within {timeout:.0f}s") from None
        if line is None:
            raise BenchError(f"{self.name} ended: {self.describe()}")
        try:
            return json.loads(line)
        except ValueError:
            raise BenchError(f"{self.name} printed {line!r}: {self.describe()}") from None

    def request(self, cmd: dict, timeout: float) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, 3)
        self._stderr.close()


class Proxyd:
    def __init__(self, binary: Path, ns: str, policy: Path, logdir: Path, guards: list[str]):
        self.log_path = logdir / "proxyd.log"
        self._log = open(self.log_path, "wb")
        self.exit_code: int | None = None
        self.stopped = False
        # `ip netns exec` execs proxyd in place: the Popen pid is proxyd's own.
        self.proc = subprocess.Popen(
            in_ns(ns, str(binary), "--policy", str(policy), "--control-socket", str(logdir / "control.sock")),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        CLEANUP.add("proxyd", self.stop)
        self.wait_for(r"msg=running\b")
        for guard in guards:
            self.wait_for(rf'msg="relay listening" guard={re.escape(guard)}\b')
        self.pid = self.proc.pid
        with contextlib.suppress(OSError):
            exe = os.readlink(f"/proc/{self.pid}/exe")
            if os.path.basename(exe) != "proxyd":
                raise BenchError(f"pid {self.pid} is {exe}, not proxyd: CPU figures would be wrong")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text()):
            if self.proc.poll() is not None:
                raise BenchError(f"proxyd exited (rc={self.proc.returncode}) before /{pattern}/:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"proxyd did not log /{pattern}/ within {timeout}s:\n{self.text()[-3000:]}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.exit_code = stop_process(self.proc, 10)
        self._log.close()


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


class HAProxy:
    def __init__(self, ns: str, cfg: Path, logdir: Path, ports: list[int]):
        self.log_path = logdir / "haproxy.log"
        self._log = open(self.log_path, "wb")
        check = run("haproxy", "-c", "-f", cfg, check=False)
        if check.returncode != 0:
            raise BenchError(f"haproxy -c rejected {cfg}: {check.stdout}{check.stderr}")
        self.proc = subprocess.Popen(in_ns(ns, "haproxy", "-f", str(cfg), "-db"),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        CLEANUP.add("haproxy", self.stop)
        self.pid = self.proc.pid  # `ip netns exec` execs haproxy in place; -db: no fork
        wait_listening(ns, self.proc, ports, "haproxy", self.log_path)

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self._log.close()


class SpliceRelay:
    """splice_relay.py in a namespace: the minimal zero-copy relay the bulk rows compare with."""

    def __init__(self, ns: str, logdir: Path, port: int, upstream: tuple[str, int]):
        self.log_path = logdir / "splice_relay.log"
        self._log = open(self.log_path, "wb")
        self.exit_code: int | None = None
        self.stopped = False
        argv = [sys.executable, str(SPLICE_RELAY), "--listen", str(port),
                "--upstream", f"{upstream[0]}:{upstream[1]}"]
        self.proc = subprocess.Popen(in_ns(ns, *argv), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        CLEANUP.add("splice relay", self.stop)
        self.pid = self.proc.pid  # setpriv and `ip netns exec` exec in place: the pid is Python's
        wait_listening(ns, self.proc, [port], "splice relay", self.log_path)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.exit_code = stop_process(self.proc, 5)
        self._log.close()


# --------------------------------------------------------------------------------------------
# Configuration files


def policy_text(control_socket: Path) -> str:
    common = ("buffer_bytes = \"1MiB\"\nmax_connections_per_peer = 100000\naccept_rate_per_peer = 1000000\n"
              "max_connections = 100000\n")
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
{common}
[[guard]]
name = "store"
kind = "tcp"
port = {STORE_GUARDED}
listen_port = {RELAY_STORE}
allow = ["{PEER_IP}"]
protocol = "tcpstore"
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
# Machine


def machine_info(proxyd: Path) -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "cpu": cpu,
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
        "busy_cpus_before": busy_cpus(),
        "proxyd": str(proxyd),
    }
    with contextlib.suppress(Exception):
        info["haproxy"] = run("haproxy", "-v", check=False).stdout.splitlines()[0]
    with contextlib.suppress(Exception):
        rev = run("git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
        dirty = run("git", "-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
        info["commit"] = rev + ("+dirty" if dirty else "")
    return info


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

    def paths(self, metric: str) -> tuple[str, ...]:
        """The paths a metric is measured on: the splice relay only for bulk, and not with --no-splice."""
        if metric in BULK_METRICS and not self.args.no_splice:
            return (*PATHS, SPLICE)
        return PATHS

    # -- one measurement ------------------------------------------------------------------------

    def measure(self, agent: Agent, cmd: dict, path: str, budget: float) -> dict:
        pid = self.proxy_pids.get(path)
        cpu0 = cpu_seconds(pid) if pid else None
        cs0 = context_switches(pid) if pid else None
        # An agent that does not answer in time ends the run (BenchError): a late answer would
        # be taken for the next request's. Failures the agent reports are recorded and the run goes on.
        answer = agent.request(cmd, timeout=budget)
        if pid and cpu0 is not None:
            cpu1, cs1 = cpu_seconds(pid), context_switches(pid)
            if cpu1 is not None:
                answer["proxy_cpu_s"] = round(cpu1 - cpu0, 3)
            if cs0 is not None and cs1 is not None:
                answer["proxy_context_switches"] = cs1 - cs0
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

    @staticmethod
    def _per_unit(answer: dict, key: str) -> str:
        """", proxy X us CPU and Y context switches per op" for a proxied run."""
        n = answer.get(key) or 0
        if not n or "proxy_cpu_s" not in answer:
            return ""
        text = f", proxy {answer['proxy_cpu_s'] / n * 1e6:.0f} us CPU"
        if "proxy_context_switches" in answer:
            text += f" and {answer['proxy_context_switches'] / n:.1f} context switches"
        return text + " per " + ("op" if key == "ops" else "connection")

    # -- the run ------------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        proxyd_bin = Path(a.bin_dir) / "proxyd"
        if not os.access(proxyd_bin, os.X_OK):
            raise BenchError(f"{proxyd_bin} is missing: swift build -c release --product proxyd")
        self.machine = machine_info(proxyd_bin)
        have_haproxy = shutil.which("haproxy") is not None
        if not have_haproxy:
            for metric in METRICS:
                self.na[(metric, "haproxy")] = "haproxy not installed (make bench-deps)"

        logdir = Path(a.log_dir) if a.log_dir else Path(tempfile.mkdtemp(prefix="rfbench-"))
        logdir.mkdir(parents=True, exist_ok=True)
        self.logdir = logdir
        log(f"logs in {logdir}")

        sweep_stale()
        topo = Topology()
        log(f"namespaces {topo.host} ({HOST_IP}) and {topo.peer} ({PEER_IP})")
        topo.build()

        server = Agent(topo.host, "server", logdir, "server",
                       "--tcp-ports", f"{BENCH_GUARDED},{BENCH_DIRECT}",
                       "--store-ports", f"{STORE_GUARDED},{STORE_DIRECT}")
        peer = Agent(topo.peer, "peer-client", logdir, "client")
        local = Agent(topo.host, "host-client", logdir, "client")
        for agent in (peer, local):
            hello = agent.read(30)
            if not hello.get("ready"):
                raise BenchError(f"{agent.name}: {hello}")
        # Import torch in the peer client while the server starts its stores (never timed).
        peer.proc.stdin.write(json.dumps({"op": "torch"}) + "\n")
        peer.proc.stdin.flush()
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

        # proxyd
        policy = logdir / "policy.toml"
        policy.write_text(policy_text(logdir / "control.sock"))
        proxyctl = Path(a.bin_dir) / "proxyctl"
        if os.access(proxyctl, os.X_OK):
            check = run(proxyctl, "check", policy, check=False)
            if check.returncode != 0:
                raise BenchError(f"proxyctl check rejected the benchmark policy:\n{check.stderr}")
        log("starting proxyd")
        self.proxyd = Proxyd(proxyd_bin, topo.host, policy, logdir, ["bench", "store", "bench_lo"])
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
        report = {"alive_after_runs": d.alive(), "pid": d.pid}
        if d.alive():
            # Let sessions that ended a moment ago close before counting descriptors.
            time.sleep(0.5)
            report["fds_start"] = self.proxyd_fds_start
            report["fds_end"] = fd_count(d.pid)
            report["rss_peak_bytes"] = status_field(d.pid, "VmHWM")
            report["rss_end_bytes"] = status_field(d.pid, "VmRSS")
            report["threads"] = len(os.listdir(f"/proc/{d.pid}/task"))
        else:
            self.failures.append(f"proxyd exited during the run (rc={d.proc.returncode})")
        was_alive = d.alive()
        d.stop()
        report["exit_code_on_sigterm"] = d.exit_code if was_alive else None
        report["exit_code"] = d.exit_code
        if was_alive and d.exit_code != 0:
            self.notes.append(f"proxyd exit code on SIGTERM: {d.exit_code}")
        lines = d.text().splitlines()
        bad = [line for line in lines if re.search(r"\blevel=(warning|error|critical)\b", line)]
        report["log_lines"] = len(lines)
        report["log_warnings"] = bad[:20]
        report["log_warning_count"] = len(bad)
        if bad:
            self.notes.append(f"proxyd logged {len(bad)} warning/error lines, first: {bad[0]}")
        if report.get("fds_start") is not None and report.get("fds_end") is not None \
                and report["fds_end"] > report["fds_start"] + 4:
            self.notes.append(f"proxyd held {report['fds_end']} descriptors after the runs "
                              f"({report['fds_start']} at start): sessions not closed?")
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
        ]
        return [(name, value, goal, None if value is None else value >= goal) for name, value, goal in checks]

    def best_run(self, metric: str, path: str, key: str) -> dict | None:
        runs = [r for r in self.results.get(metric, {}).get(path, {}).get("runs", []) if r.get("ok")]
        return max(runs, key=lambda r: r[key]) if runs else None

    def proxy_cost(self, metric: str, path: str) -> tuple[float, float | None] | None:
        """The proxy's CPU (s per GiB for bulk, us per op or connection otherwise) and context
        switches per op/connection, over the run with the best rate."""
        key, unit = {"bulk_ns": ("mb_per_s", "bytes"), "bulk_lo": ("mb_per_s", "bytes"),
                     "store": ("per_s", "ops"), "connrate": ("per_s", "connections")}[metric]
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
                 f"Machine: {m['nproc']} CPUs ({m.get('cpu', '?')}), Linux {m['kernel']}, {m['date']}; "
                 f"proxyd {m.get('commit', '?')}; {m.get('haproxy', 'no haproxy')}"
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
                                    ("connrate", "connections", "CPU µs / context switches per connection")):
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
        noisy = []
        for metric in METRICS:
            for path in self.paths(metric):
                sp = self.spread(metric, path)
                if sp is not None and sp > 0.25:
                    noisy.append(f"{metric}/{path} {sp:.0%}")
        busy = m.get("busy_cpus_before")
        lines.append((f"Other work on the machine just before the run: {busy:.2f} of {m['nproc']} CPUs busy. "
                      if busy is not None else "")
                     + f"Load average at start {m.get('loadavg_start', '?')}, at end {m.get('loadavg_end', '?')}"
                     + (f"; samples spread (max−min)/max over 25%: {', '.join(noisy)} — the machine was busy or "
                        f"noisy, rerun for firmer figures." if noisy else "."))
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
            mib = lambda b: f"{b / (1 << 20):.0f} MiB" if b else "?"  # noqa: E731
            lines.append(f"proxyd: {'alive throughout' if info['alive_after_runs'] else 'EXITED during the run'}; "
                         f"{info.get('fds_start', '?')} descriptors before the runs, {info.get('fds_end', '?')} after; "
                         f"{info.get('threads', '?')} threads; peak RSS {mib(info.get('rss_peak_bytes'))}; "
                         f"{info['log_warning_count']} warning/error log lines; "
                         + (f"exit code on SIGTERM {info['exit_code_on_sigterm']}." if info["alive_after_runs"]
                            else f"exit code {info.get('exit_code')}."))
        lines.append("")
        lines.append("Targets:")
        for name, value, goal, ok in self.targets():
            state = "not measured" if ok is None else ("met" if ok else "MISSED")
            shown = "—" if value is None else f"{value:.3f}"
            lines.append(f"- {name} ≥ {goal:g}: {shown} — {state}")
        if not self.args.no_splice:
            value = self.ratio("bulk_ns", "relay", SPLICE)
            lines.append(f"- relay/splice (bulk peer→host): {'—' if value is None else f'{value:.3f}'} "
                         f"— for information, no target")
        if self.notes or self.failures:
            lines.append("")
            lines.append("Observations:")
            for note in self.failures + self.notes:
                lines.append(f"- {note}")
        return "\n".join(lines)

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
            "units": {"bulk_ns": "MB/s", "bulk_lo": "MB/s", "store": "ops/s", "connrate": "connections/s"},
            "summary": summary,
            "not_measured": {f"{m}/{p}": why for (m, p), why in self.na.items()},
            "results": self.results,
            "bare_direct": self.bare,
            "targets": [{"name": n, "value": v, "goal": g, "met": ok} for n, v, g, ok in self.targets()],
            "proxyd": getattr(self, "proxyd_info", None),
            "failures": self.failures,
            "notes": self.notes,
        }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Direct vs proxyd relay vs HAProxy (and, for bulk, a minimal "
                                             "splice relay), in network namespaces.")
    ap.add_argument("--bin-dir", default=str(REPO_ROOT / ".build" / "release"),
                    help="directory with proxyd (and proxyctl); default .build/release")
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--quick", action="store_true", help="reduced sizes and counts (about a minute)")
    ap.add_argument("--bulk-mib", type=int, help="bulk transfer size in MiB (default 1024; quick 256)")
    ap.add_argument("--reps", type=int, help="bulk repetitions per path, best kept (default 3; quick 1)")
    ap.add_argument("--rounds", type=int, help="TCPStore and connection runs per path, best kept (default 5; quick 1)")
    ap.add_argument("--store-ops", type=int, help="TCPStore operations per path (default 20000; quick 5000)")
    ap.add_argument("--store-seconds", type=float, help="time bound per TCPStore run (default 10; quick 3)")
    ap.add_argument("--conn-count", type=int, help="connections per path (default 5000; quick 2000)")
    ap.add_argument("--conn-seconds", type=float, help="time bound per connection run (default 5; quick 2)")
    ap.add_argument("--bulk-timeout", type=float, default=60.0, help="time bound per bulk transfer (60 s)")
    ap.add_argument("--haproxy-splice", action="store_true", help="add `option splice-auto` to HAProxy")
    ap.add_argument("--haproxy-threads", type=int, help="HAProxy nbthread (default: HAProxy's, = CPUs)")
    ap.add_argument("--no-bare", action="store_true", help="skip the direct runs before proxyd starts")
    ap.add_argument("--no-splice", action="store_true",
                    help="skip the minimal splice(2) relay (splice_relay.py) in the bulk rows")
    ap.add_argument("--log-dir", help="keep proxyd/haproxy/agent logs here (default: a temporary directory, "
                                      "removed unless something failed)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temporary log directory")
    args = ap.parse_args(argv)
    defaults = ({"bulk_mib": 256, "reps": 1, "rounds": 1, "store_ops": 5000, "store_seconds": 3.0, "conn_count": 2000,
                 "conn_seconds": 2.0} if args.quick else
                {"bulk_mib": 1024, "reps": 3, "rounds": 5, "store_ops": 20000, "store_seconds": 10.0, "conn_count": 5000,
                 "conn_seconds": 5.0})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_relay.py needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    # Ctrl-C raises KeyboardInterrupt even if SIGINT came in ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    atexit.register(CLEANUP.run)
    bench = Bench(args)
    rc = 0
    started = time.monotonic()
    try:
        rc = bench.run()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except BenchError as exc:
        log(f"setup failed: {exc}")
        rc = 2
    except Exception:
        import traceback

        log("unexpected error:\n" + traceback.format_exc())
        rc = 2
    finally:
        problems = CLEANUP.run()
        for p in problems:
            log(f"cleanup: {p}")
    if rc == 130 or not hasattr(bench, "machine"):
        return rc
    if rc == 0 and bench.failures:
        rc = 1
    if hasattr(bench, "proxyd"):
        print(bench.report(), flush=True)
        print(f"\n(run took {time.monotonic() - started:.0f} s; logs: "
              f"{bench.logdir if (args.log_dir or args.keep_logs or rc) else 'removed'})", flush=True)
    if args.json and hasattr(bench, "proxyd"):
        Path(args.json).write_text(json.dumps(bench.json_data(), indent=2) + "\n")
        log(f"JSON written to {args.json}")
    if hasattr(bench, "logdir") and not (args.log_dir or args.keep_logs or rc):
        shutil.rmtree(bench.logdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
