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
See README.md beside this file for the choices and how to read the numbers.
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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
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
ATTACK_HWM_MESSAGES = 100  # the attack guard's hwm_messages

NS_RE = re.compile(r"rfbbench-(\d+)-(host|peer|evil)")
PATHS = ("direct", "broker", "zmq_proxy")
KiB, MiB = 1 << 10, 1 << 20
SIZES = (64, 64 * KiB, 4 * MiB)
# Messages per throughput run (full, quick), the flow-control window (messages a reader may be
# behind the publisher) and how often readers report progress.
COUNTS = {64: (100000, 40000), 64 * KiB: (10000, 4000), 4 * MiB: (300, 100)}
WINDOWS = {64: (256, 64), 64 * KiB: (64, 16), 4 * MiB: (8, 2)}
READERS = 4


class BenchError(Exception):
    """A setup step failed, or an agent stopped answering: the run cannot go on."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(*args, check: bool = True, timeout: float = 20.0, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise BenchError(f"`{' '.join(map(str, args))}` failed (rc={proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def size_label(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= KiB and size % KiB == 0:
        return f"{size // KiB} KiB"
    return f"{size} B"


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def percentile(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


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


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
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


def netns_delete(name: str) -> None:
    if netns_exists(name):
        kill_netns_processes(name)
        run("ip", "netns", "del", name, check=False)
        if netns_exists(name):
            raise BenchError(f"could not delete namespace {name}")


def sweep_stale() -> None:
    """Deletes rfbbench-PID-* namespaces of earlier runs whose process is gone (SIGKILL)."""
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
        self.host = f"rfbbench-{os.getpid()}-host"
        self.peer = f"rfbbench-{os.getpid()}-peer"
        self.evil = f"rfbbench-{os.getpid()}-evil"

    def build(self) -> None:
        for ns in (self.host, self.peer, self.evil):
            run("ip", "netns", "add", ns)
            CLEANUP.add(f"namespace {ns}", lambda ns=ns: netns_delete(ns))
            run("ip", "-n", ns, "link", "set", "lo", "up")
        h = self.host
        for host_if, ns, host_addr, addr in (("rfb0", self.peer, HOST_IP, PEER_IP),
                                              ("rfb1", self.evil, EVIL_GW, EVIL_IP)):
            run("ip", "-n", h, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "-n", h, "addr", "add", f"{host_addr}/{SUBNET_BITS}", "dev", host_if)
            run("ip", "-n", h, "link", "set", host_if, "up")
            run("ip", "-n", ns, "addr", "add", f"{addr}/{SUBNET_BITS}", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
        # The evil namespace reaches the publisher's address (10.78.0.1) through rfb1.
        run("ip", "-n", self.evil, "route", "add", "default", "via", EVIL_GW)
        # Ephemeral ports of the host namespace never take the benchmark's own ports.
        run("ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_local_reserved_ports=29600-29799,39600-39699")
        for ns in (self.peer, self.evil):
            deadline = time.monotonic() + 5
            while run("ip", "netns", "exec", ns, "ping", "-c1", "-W1", HOST_IP, check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise BenchError(f"{ns} cannot reach {HOST_IP}")


# --------------------------------------------------------------------------------------------
# /proc


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int | None:
    """Voluntary + involuntary context switches summed over the threads that exist now."""
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


def stat_cpu() -> tuple[int, int] | None:
    """(total, busy) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields), sum(fields) - fields[3] - fields[4]


def busy_cpus(seconds: float = 1.0) -> float | None:
    """How many CPUs' worth of time the machine spent busy over `seconds`: other people's work,
    measured before the benchmark starts anything."""
    a = stat_cpu()
    time.sleep(seconds)
    b = stat_cpu()
    if not a or not b or b[0] == a[0]:
        return None
    return (b[1] - a[1]) / (b[0] - a[0]) * os.cpu_count()


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


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (clear_refs 5, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


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
# Processes in the namespaces


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
            start_new_session=True)
        self.pid = self.proc.pid
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

    def send(self, cmd: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise BenchError(f"{self.name}: cannot write its stdin ({exc}): {self.describe()}") from None

    def request(self, cmd: dict, timeout: float) -> dict:
        self.send(cmd)
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
            self.wait_for(rf'msg="broker listening" guard={re.escape(guard)}\b')
        self.pid = self.proc.pid
        with contextlib.suppress(OSError):
            exe = os.readlink(f"/proc/{self.pid}/exe")
            if os.path.basename(exe) != "proxyd":
                raise BenchError(f"pid {self.pid} is {exe}, not proxyd: CPU figures would be wrong")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_size(self) -> int:
        with contextlib.suppress(OSError):
            return self.log_path.stat().st_size
        return 0

    def text_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

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


def established(ns: str, port: int) -> int:
    """TCP connections established from namespace `ns` to remote port `port`."""
    out = run("ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", f"( dport = :{port} )",
              check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def policy_text(control_socket: Path, attack_per_peer: int, busy_poll: str | None = None) -> str:
    extra = f'busy_poll = "{busy_poll}"\n' if busy_poll is not None else ""
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
# in numbers; the high-water marks must.
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
{extra}"""


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
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": cpu,
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
        "busy_cpus_before": busy_cpus(),
        "proxyd": str(proxyd),
    }
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
        # throughput[size][path] -> list of run dicts; latency[path] -> list; attack[path] -> list
        self.throughput: dict[int, dict[str, list[dict]]] = {}
        self.latency: dict[str, list[dict]] = {}
        self.attack: dict[str, list[dict]] = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.run_id = 0

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
        pid = self.proxy_pid(path)
        cpu0 = cpu_seconds(pid) if pid else None
        cs0 = context_switches(pid) if pid else None
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
        if pid and cpu0 is not None:
            cpu1, cs1 = cpu_seconds(pid), context_switches(pid)
            if cpu1 is not None:
                result["proxy_cpu_s"] = round(cpu1 - cpu0, 3)
            if cs0 is not None and cs1 is not None:
                result["proxy_context_switches"] = cs1 - cs0
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
        proxyd_bin = Path(a.bin_dir) / "proxyd"
        if not os.access(proxyd_bin, os.X_OK):
            raise BenchError(f"{proxyd_bin} is missing: swift build -c release --product proxyd")
        self.machine = machine_info(proxyd_bin)
        self.started = time.monotonic()
        self.stat_start = stat_cpu()

        logdir = Path(a.log_dir) if a.log_dir else Path(tempfile.mkdtemp(prefix="rfbbench-"))
        logdir.mkdir(parents=True, exist_ok=True)
        self.logdir = logdir
        log(f"logs in {logdir}")

        sweep_stale()
        topo = self.topo = Topology()
        log(f"namespaces {topo.host} ({HOST_IP}, {EVIL_GW}), {topo.peer} ({PEER_IP}) and {topo.evil} ({EVIL_IP})")
        topo.build()

        policy = logdir / "policy.toml"
        policy.write_text(policy_text(logdir / "control.sock", max(a.idle, 8), a.busy_poll))
        proxyctl = Path(a.bin_dir) / "proxyctl"
        if os.access(proxyctl, os.X_OK):
            check = run(proxyctl, "check", policy, check=False)
            if check.returncode != 0:
                raise BenchError(f"proxyctl check rejected the benchmark policy:\n{check.stderr}")
        log("starting proxyd")
        self.proxyd = Proxyd(proxyd_bin, topo.host, policy, logdir, [GUARD, GUARD_ATTACK])
        self.proxyd_fds_start = fd_count(self.proxyd.pid)

        xpubs = f"broker={PUB_BROKER},broker_attack={PUB_BROKER_ATTACK},direct={PUB_DIRECT},proxy={PUB_PROXY_UP}"
        self.publisher = Agent(topo.host, "publisher", logdir, "publisher", "--host", HOST_IP, "--xpub", xpubs,
                               "--ack-port", str(ACK_PORT))
        self.zproxy = Agent(topo.host, "zmq_proxy", logdir, "zmqproxy", "--xsub-connect",
                            f"tcp://{HOST_IP}:{PUB_PROXY_UP}", "--xpub-bind", f"tcp://{HOST_IP}:{PROXY_XPUB}")
        self.readers = [Agent(topo.peer, f"reader{i}", logdir, "reader", "--id", str(i), "--ack",
                              f"{HOST_IP}:{ACK_PORT}") for i in range(READERS)]
        self.idle = Agent(topo.evil, "idle", logdir, "idle")
        for agent in (self.publisher, self.zproxy, *self.readers, self.idle):
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
        self.machine["loadavg_end"] = loadavg()
        self.own_cpu = self.our_cpu_seconds()
        self.stat_end = stat_cpu()
        self.elapsed = time.monotonic() - self.started
        self.proxyd_report()
        return 0

    def our_cpu_seconds(self) -> float:
        total = sum(os.times()[:4])  # this script and the commands it ran (ip, ss)
        for pid in [self.proxyd.pid, self.publisher.pid, self.zproxy.pid, self.idle.pid,
                    *(r.pid for r in self.readers)]:
            total += cpu_seconds(pid) or 0
        return total

    def proxyd_report(self) -> None:
        d = self.proxyd
        report = {"alive_after_runs": d.alive(), "pid": d.pid}
        if d.alive():
            time.sleep(0.5)
            report["fds_start"] = self.proxyd_fds_start
            report["fds_end"] = fd_count(d.pid)
            report["rss_peak_bytes_since_last_reset"] = status_field(d.pid, "VmHWM")
            report["rss_end_bytes"] = status_field(d.pid, "VmRSS")
            report["threads"] = len(os.listdir(f"/proc/{d.pid}/task"))
            report["cpu_s_total"] = cpu_seconds(d.pid)
        else:
            self.failures.append(f"proxyd exited during the run (rc={d.proc.returncode})")
        was_alive = d.alive()
        d.stop()
        report["exit_code"] = d.exit_code
        if was_alive and d.exit_code != 0:
            self.notes.append(f"proxyd exit code on SIGTERM: {d.exit_code}")
        lines = d.text().splitlines()
        bad = [line for line in lines if re.search(r"\blevel=(warning|error|critical)\b", line)]
        expected = [line for line in bad if 'msg="subscriber evicted: queue full"' in line
                    and f"guard={GUARD_ATTACK}" in line and f"peer={EVIL_IP}" in line]
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
        if report.get("fds_start") is not None and report.get("fds_end") is not None \
                and report["fds_end"] > report["fds_start"] + 8:
            self.notes.append(f"proxyd held {report['fds_end']} descriptors after the runs "
                              f"({report['fds_start']} at start): sessions not closed?")
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

    def noise_line(self) -> str:
        m = self.machine
        noisy = []
        for size in self.args.sizes:
            for path in PATHS:
                sp = self.spread([r["msgs_per_s"] for r in self.tp_ok_runs(size, path)])
                if sp is not None and sp > 0.25:
                    noisy.append(f"{size_label(size)}/{path} {sp:.0%}")
        busy = m.get("busy_cpus_before")
        text = (f"Other work on the machine just before the run: {busy:.2f} of {m['nproc']} CPUs busy. "
                if busy is not None else "")
        other = m.get("other_cpu_s")
        if other is not None:
            text += (f"During the run, processes other than the benchmark's used about {max(0.0, other):.0f} CPU-seconds "
                     f"in {m['elapsed_s']:.0f} s (≈ {max(0.0, other) / m['elapsed_s']:.2f} CPUs). ")
        text += f"Load average at start {m.get('loadavg_start', '?')}, at end {m.get('loadavg_end', '?')}"
        if noisy:
            text += (f"; samples spread (max−min)/max over 25%: {', '.join(noisy)} — the machine was busy or noisy, "
                     f"rerun for firmer figures")
        return text + "."

    def report(self) -> str:
        m, a = self.machine, self.args
        lines = ["", "## Ringfence broker benchmark", "",
                 f"Machine: {m['nproc']} CPUs ({m.get('cpu', '?')}), Linux {m['kernel']}, {m['date']}; "
                 f"proxyd {m.get('commit', '?')}; libzmq {m.get('libzmq', '?')}, pyzmq {m.get('pyzmq', '?')}, "
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
        lines += [self.cost_table(), "", self.noise_line()]
        info = getattr(self, "proxyd_info", None)
        if info:
            mib = lambda b: f"{b / MiB:.0f} MiB" if b else "?"  # noqa: E731
            lines.append(f"proxyd: {'alive throughout' if info['alive_after_runs'] else 'EXITED during the run'}; "
                         f"{info.get('fds_start', '?')} descriptors before the runs, {info.get('fds_end', '?')} after; "
                         f"{info.get('threads', '?')} threads; RSS at the end {mib(info.get('rss_end_bytes'))}; "
                         f"{info.get('cpu_s_total') or 0:.1f} CPU s in all; {info['expected_evictions']} evictions of "
                         f"idle subscribers, {info['other_warning_count']} other warning/error log lines; "
                         f"exit code {info.get('exit_code')}.")
        lines += ["", "Targets:"]
        for name, shown, ok in self.targets():
            state = "not measured" if ok is None else ("met" if ok else "MISSED")
            lines.append(f"- {name}: {shown} — {state}")
        if self.notes or self.failures:
            lines += ["", "Observations:"]
            lines += [f"- {note}" for note in self.failures + self.notes]
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
            "targets": [{"name": n, "value": v, "met": ok} for n, v, ok in self.targets()],
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
    ap = argparse.ArgumentParser(description="Direct libzmq vs proxyd's ZMTP broker vs zmq_proxy, in network "
                                             "namespaces: throughput, latency, and 200 idle subscribers.")
    ap.add_argument("--bin-dir", default=str(REPO_ROOT / ".build" / "release"),
                    help="directory with proxyd (and proxyctl); default .build/release")
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--quick", action="store_true", help="fewer messages, 1 run per path (under a minute)")
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
    ap.add_argument("--busy-poll", help="the broker guards' busy_poll (default: the policy default, 200us)")
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
    ap.add_argument("--no-attack", action="store_true", help="skip the idle-subscriber runs")
    ap.add_argument("--log-dir", help="keep proxyd's and the agents' logs here (default: a temporary directory, "
                                      "removed unless something failed)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temporary log directory")
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
    defaults = {"reps": 1 if q else 3, "latency_count": 2500 if q else 5000,
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
    if os.geteuid() != 0:
        print("bench_broker.py needs root (network namespaces, nftables)", file=sys.stderr)
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
    if hasattr(bench, "stat_end") and bench.stat_start and bench.stat_end:
        # Busy time of the whole machine during the run, less what the benchmark's own processes used.
        busy = (bench.stat_end[1] - bench.stat_start[1]) / os.sysconf("SC_CLK_TCK")
        bench.machine["elapsed_s"] = bench.elapsed
        bench.machine["machine_busy_cpu_s"] = busy
        bench.machine["benchmark_cpu_s"] = bench.own_cpu
        bench.machine["other_cpu_s"] = busy - bench.own_cpu
    if hasattr(bench, "proxyd_info"):
        print(bench.report(), flush=True)
        print(f"\n(run took {time.monotonic() - started:.0f} s; logs: "
              f"{bench.logdir if (args.log_dir or args.keep_logs or rc) else 'removed'})", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(bench.json_data(), indent=2) + "\n")
            log(f"JSON written to {args.json}")
    if hasattr(bench, "logdir") and not (args.log_dir or args.keep_logs or rc):
        shutil.rmtree(bench.logdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
