"""What the two benchmark orchestrators, relay/bench_relay.py and broker/bench_broker.py, share.

Both run as root, build network namespaces of their own, start proxyd and helper processes in
them, drive agents over JSON lines, measure, and print a Markdown report; and both must leave
nothing behind however they end (normal end, error, Ctrl-C, SIGTERM, SIGHUP), and sweep what
an earlier run killed with SIGKILL left. That machinery was written twice; it lives here once:

    commands     BenchError, log, run
    options      arg_parser, add_log_options (the ones run_bench reads)
    cleanup      CLEANUP (one registry, run once), run_bench (the whole of main after parsing)
    namespaces   add_namespaces, add_veth, wait_reachable, netns_delete, sweep_stale
    /proc        cpu_seconds, context_switches, ProxyCost, stat_cpu, busy_cpus, loadavg,
                 status_field, fd_count
    processes    in_ns, stop_process, Agent, Service, Proxyd, proxyd_binary, start_proxyd
    the report   make_logdir, machine_info, machine_line, load_line, proxyd_line, verdict,
                 observations

What differs stays in each orchestrator: the topology's addresses, the policy, the agents'
requests, the phases, the tables and the JSON. The agents' side of the JSON-line protocol is
agentkit.py. The orchestrators run as scripts, not as a package, so they import this module
after putting this folder on sys.path.
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
import socket
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]


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


# --------------------------------------------------------------------------------------------
# Options


def arg_parser(description: str, quick: str) -> argparse.ArgumentParser:
    """A parser with the options every orchestrator lists first: --bin-dir, --json, and --quick
    (`quick`: what it reduces). The orchestrator adds its own, then add_log_options."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--bin-dir", default=str(REPO_ROOT / ".build" / "release"),
                    help="directory with proxyd (and proxyctl); default .build/release")
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--quick", action="store_true", help=quick)
    return ap


def add_log_options(ap: argparse.ArgumentParser, logs: str) -> None:
    """--log-dir and --keep-logs, last in --help (`logs`: whose logs the directory holds)."""
    ap.add_argument("--log-dir", help=f"keep {logs} here (default: a temporary directory, "
                                      "removed unless something failed)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temporary log directory")


# --------------------------------------------------------------------------------------------
# Cleanup: one registry, run once, from `finally`, atexit, or a signal


class Cleanup:
    def __init__(self):
        self.actions: list[tuple[str, Callable[[], None]]] = []
        self.done = False
        self.lock = threading.Lock()

    def add(self, what: str, action: Callable[[], None]) -> None:
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


def run_bench(bench, args, script: str) -> int:
    """The whole of an orchestrator's main once its arguments are parsed; returns the exit status.

    Needs root. Runs bench.run() with CLEANUP run however it ends: normally, on a BenchError or
    any other exception (status 2), on Ctrl-C, SIGTERM or SIGHUP (130, nothing printed). Then,
    once bench has described the machine: status 1 if bench.failures; the report on stdout and
    the JSON to --json if bench.has_report; the log directory removed unless kept (--log-dir,
    --keep-logs) or the run failed. `bench` has run(), machine, failures, has_report,
    report(), json_data() and logdir; `args` has json, log_dir and keep_logs.
    """
    if os.geteuid() != 0:
        print(f"{script} needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    # Ctrl-C raises KeyboardInterrupt even if SIGINT came in ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    atexit.register(CLEANUP.run)
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
    keep_logs = args.log_dir or args.keep_logs or rc
    if bench.has_report:
        print(bench.report(), flush=True)
        print(f"\n(run took {time.monotonic() - started:.0f} s; logs: "
              f"{bench.logdir if keep_logs else 'removed'})", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(bench.json_data(), indent=2) + "\n")
            log(f"JSON written to {args.json}")
    if hasattr(bench, "logdir") and not keep_logs:
        shutil.rmtree(bench.logdir, ignore_errors=True)
    return rc


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


def sweep_stale(names: re.Pattern) -> None:
    """Deletes the namespaces of earlier runs whose process is gone (SIGKILL: no cleanup ran):
    those whose whole name `names` matches, group 1 being the owner's pid (rfbench-PID-host)."""
    d = Path("/run/netns")
    if not d.is_dir():
        return
    for entry in d.iterdir():
        m = names.fullmatch(entry.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            log(f"removing stale namespace {entry.name}")
            netns_delete(entry.name)


def add_namespaces(*names: str) -> None:
    """Creates the namespaces, each deleted again at cleanup, each with its loopback up."""
    for ns in names:
        run("ip", "netns", "add", ns)
        CLEANUP.add(f"namespace {ns}", lambda ns=ns: netns_delete(ns))
        run("ip", "-n", ns, "link", "set", "lo", "up")


def add_veth(host_ns: str, host_if: str, host_cidr: str, ns: str, cidr: str) -> None:
    """A veth pair, `host_if` in `host_ns` and eth0 in `ns`, both ends addressed and up."""
    run("ip", "-n", host_ns, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
    run("ip", "-n", host_ns, "addr", "add", host_cidr, "dev", host_if)
    run("ip", "-n", host_ns, "link", "set", host_if, "up")
    run("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
    run("ip", "-n", ns, "link", "set", "eth0", "up")


def wait_reachable(ns: str, address: str, failure: str, timeout: float = 5.0) -> None:
    """Pings `address` from `ns` until it answers; BenchError(failure) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while run("ip", "netns", "exec", ns, "ping", "-c1", "-W1", address, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise BenchError(failure)


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


class ProxyCost:
    """What one process (the proxy of the measured path) spends over one run: made just before
    the run; add_to(result) afterwards sets result["proxy_cpu_s"] and, where readable,
    result["proxy_context_switches"]. With no pid (the direct path) it adds nothing."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.cpu0 = cpu_seconds(pid) if pid else None
        self.cs0 = context_switches(pid) if pid else None

    def add_to(self, result: dict) -> None:
        if not self.pid or self.cpu0 is None:
            return
        cpu1, cs1 = cpu_seconds(self.pid), context_switches(self.pid)
        if cpu1 is not None:
            result["proxy_cpu_s"] = round(cpu1 - self.cpu0, 3)
        if self.cs0 is not None and cs1 is not None:
            result["proxy_context_switches"] = cs1 - self.cs0


def stat_cpu() -> tuple[int, int] | None:
    """(total, busy) jiffies of the whole machine, from /proc/stat (idle and iowait not busy)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields), sum(fields) - fields[3] - fields[4]


def busy_cpus(cpus: int, seconds: float = 1.0) -> float | None:
    """How many of `cpus` CPUs' worth of time the machine spent busy over `seconds`: other
    people's work, measured before the benchmark starts anything."""
    a = stat_cpu()
    time.sleep(seconds)
    b = stat_cpu()
    if not a or not b or b[0] == a[0]:
        return None
    return (b[1] - a[1]) / (b[0] - a[0]) * cpus


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def status_field(pid: int, key: str) -> int | None:
    """A kB field of /proc/PID/status (VmRSS, VmHWM), in bytes."""
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
    """An agent script (bench_agent.py) in a namespace, one JSON line per request and per
    answer; its stderr goes to logdir/NAME.stderr. The agent's side is agentkit.serve."""

    def __init__(self, script: Path, ns: str, name: str, logdir: Path, *args: str, env: dict | None = None):
        self.name = name
        self.stderr_path = logdir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            in_ns(ns, sys.executable, str(script), *args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
            env=env, start_new_session=True)
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


class Service:
    """A long-running program in a namespace (proxyd, HAProxy, the splice relay), its stdout and
    stderr in `log_path`, stopped (SIGTERM, then SIGKILL after `stop_timeout` s) by stop() or at
    cleanup, whichever comes first. `pid` is the program's own (in_ns execs in place)."""

    def __init__(self, ns: str, argv: list[str], log_path: Path, name: str, stop_timeout: float):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.stop_timeout = stop_timeout
        self.exit_code: int | None = None
        self.stopped = False
        self.proc = subprocess.Popen(in_ns(ns, *argv), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        CLEANUP.add(name, self.stop)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.exit_code = stop_process(self.proc, self.stop_timeout)
        self._log.close()


WARNING_LINE = re.compile(r"\blevel=(warning|error|critical)\b")


class Proxyd(Service):
    """proxyd in a namespace, its log in logdir/proxyd.log and its control socket in `logdir`;
    ready once it logged msg=running and, for every one of `guards`, `msg="LISTENING" guard=G`
    (LISTENING: "relay listening", "broker listening")."""

    def __init__(self, binary: Path, ns: str, policy: Path, logdir: Path, guards: list[str], listening: str):
        super().__init__(ns, [str(binary), "--policy", str(policy), "--control-socket", str(logdir / "control.sock")],
                         logdir / "proxyd.log", "proxyd", 10)
        self.wait_for(r"msg=running\b")
        for guard in guards:
            self.wait_for(rf'msg="{re.escape(listening)}" guard={re.escape(guard)}\b')
        with contextlib.suppress(OSError):
            exe = os.readlink(f"/proc/{self.pid}/exe")
            if os.path.basename(exe) != "proxyd":
                raise BenchError(f"pid {self.pid} is {exe}, not proxyd: CPU figures would be wrong")

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

    # -- after the runs: the pieces of each orchestrator's proxyd report ----------------------

    def vitals(self, fds_start: int | None, peak_key: str) -> dict:
        """Whether it still runs and, if so, its descriptors (then and `fds_start`), its peak
        RSS (VmHWM, under `peak_key`), its RSS now and its threads."""
        report = {"alive_after_runs": self.alive(), "pid": self.pid}
        if self.alive():
            # Let sessions that ended a moment ago close before counting descriptors.
            time.sleep(0.5)
            report["fds_start"] = fds_start
            report["fds_end"] = fd_count(self.pid)
            report[peak_key] = status_field(self.pid, "VmHWM")
            report["rss_end_bytes"] = status_field(self.pid, "VmRSS")
            report["threads"] = len(os.listdir(f"/proc/{self.pid}/task"))
        return report

    def stop_after_runs(self, failures: list[str], notes: list[str]) -> bool:
        """Stops it; a crash during the runs is a failure, a non-zero exit on SIGTERM a note.
        Returns whether it was still running."""
        was_alive = self.alive()
        if not was_alive:
            failures.append(f"proxyd exited during the run (rc={self.proc.returncode})")
        self.stop()
        if was_alive and self.exit_code != 0:
            notes.append(f"proxyd exit code on SIGTERM: {self.exit_code}")
        return was_alive

    def log_lines(self) -> tuple[list[str], list[str]]:
        """(every log line, the warning/error/critical ones)."""
        lines = self.text().splitlines()
        return lines, [line for line in lines if WARNING_LINE.search(line)]


def note_descriptor_growth(report: dict, slack: int, notes: list[str]) -> None:
    """Notes proxyd holding more than `slack` descriptors more after the runs than before."""
    if report.get("fds_start") is not None and report.get("fds_end") is not None \
            and report["fds_end"] > report["fds_start"] + slack:
        notes.append(f"proxyd held {report['fds_end']} descriptors after the runs "
                     f"({report['fds_start']} at start): sessions not closed?")


def proxyd_binary(bin_dir: str) -> Path:
    binary = Path(bin_dir) / "proxyd"
    if not os.access(binary, os.X_OK):
        raise BenchError(f"{binary} is missing: swift build -c release --product proxyd")
    return binary


def start_proxyd(binary: Path, ns: str, policy_text: str, logdir: Path, guards: list[str], listening: str) -> Proxyd:
    """Writes the run's policy to logdir/policy.toml, has proxyctl (beside proxyd, if built)
    check it, and starts proxyd on it (see Proxyd)."""
    policy = logdir / "policy.toml"
    policy.write_text(policy_text)
    proxyctl = binary.parent / "proxyctl"
    if os.access(proxyctl, os.X_OK):
        check = run(proxyctl, "check", policy, check=False)
        if check.returncode != 0:
            raise BenchError(f"proxyctl check rejected the benchmark policy:\n{check.stderr}")
    log("starting proxyd")
    return Proxyd(binary, ns, policy, logdir, guards, listening)


# --------------------------------------------------------------------------------------------
# The machine and the report


def make_logdir(log_dir: str | None, prefix: str) -> Path:
    """--log-dir, or a fresh temporary directory named PREFIX..."""
    logdir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=prefix))
    logdir.mkdir(parents=True, exist_ok=True)
    log(f"logs in {logdir}")
    return logdir


def machine_info(proxyd: Path, nproc: int, versions: dict[str, list[str]] | None = None) -> dict:
    """The machine, the load on it before the run, and proxyd's commit. `nproc` is the CPU
    count the report gives and busy_cpus_before is counted in; `versions` maps a key to a
    command whose first line of output is recorded (the key left out should it fail)."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": nproc,
        "kernel": platform.release(),
        "cpu": cpu,
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
        "busy_cpus_before": busy_cpus(nproc),
        "proxyd": str(proxyd),
    }
    for key, argv in (versions or {}).items():
        with contextlib.suppress(Exception):
            info[key] = run(*argv, check=False).stdout.splitlines()[0]
    with contextlib.suppress(Exception):
        rev = run("git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
        dirty = run("git", "-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip()
        info["commit"] = rev + ("+dirty" if dirty else "")
    return info


def machine_line(m: dict) -> str:
    """The start of the report's "Machine:" line, up to proxyd's commit."""
    return (f"Machine: {m['nproc']} CPUs ({m.get('cpu', '?')}), Linux {m['kernel']}, {m['date']}; "
            f"proxyd {m.get('commit', '?')}")


NOISY_SPREAD = 0.25  # samples spread (max − min) / max more than this are named in the load line


def load_line(m: dict, noisy: list[str], during: str = "") -> str:
    """The report's line on other work on the machine: busy CPUs before the run, `during` (a
    sentence on the run itself, if any), the load average, and the `noisy` samples."""
    busy = m.get("busy_cpus_before")
    text = (f"Other work on the machine just before the run: {busy:.2f} of {m['nproc']} CPUs busy. "
            if busy is not None else "")
    text += during
    text += f"Load average at start {m.get('loadavg_start', '?')}, at end {m.get('loadavg_end', '?')}"
    if noisy:
        text += (f"; samples spread (max−min)/max over {NOISY_SPREAD:.0%}: {', '.join(noisy)} — the machine was "
                 f"busy or noisy, rerun for firmer figures")
    return text + "."


def proxyd_line(info: dict, rss_label: str, rss_key: str, rest: str) -> str:
    """The report's line on proxyd: alive, descriptors, threads, RSS (`rss_key` of the proxyd
    report, in MiB), then `rest`."""
    rss = info.get(rss_key)
    rss_text = f"{rss / (1 << 20):.0f} MiB" if rss else "?"
    return (f"proxyd: {'alive throughout' if info['alive_after_runs'] else 'EXITED during the run'}; "
            f"{info.get('fds_start', '?')} descriptors before the runs, {info.get('fds_end', '?')} after; "
            f"{info.get('threads', '?')} threads; {rss_label} {rss_text}; " + rest)


def verdict(ok: bool | None) -> str:
    """A target's state in the report."""
    return "not measured" if ok is None else ("met" if ok else "MISSED")


def observations(failures: list[str], notes: list[str]) -> list[str]:
    """The report's closing "Observations:" list (failures first), or nothing."""
    if not failures and not notes:
        return []
    return ["", "Observations:", *(f"- {note}" for note in failures + notes)]


def control_request(path: Path, request: dict, timeout: float = 10.0) -> dict:
    """One request on proxyd's control socket (one JSON object, then a half-close), its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"version": 1} | request).encode())
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return json.loads(reply)
