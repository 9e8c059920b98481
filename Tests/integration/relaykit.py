"""Helpers for the relay (kind = "tcp") integration tests: relay policies, an extra allowed
peer namespace, processes run inside namespaces (real PyTorch peers), proxyd's logfmt events,
TCPStore wire messages, and small purpose-built servers (endless stream, half-close).

The fixtures here are imported by the test modules that use them (`from relaykit import ...`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import HOST_V4, OK_V4, OK_V6, Proxyd, Topology, new_socket

PEERS_DIR = Path(__file__).resolve().parent / "peers"
STORE_PORT = 29500
RELAY_PORT = 39500
OK2_V4, OK2_V6 = "10.77.0.4", "fd77::4"

# Environment for the torch subprocesses: quiet C++ logs, no stack traces in them.
TORCH_ENV = {"TORCH_CPP_LOG_LEVEL": "ERROR", "TORCH_SHOW_CPP_STACKTRACES": "0", "OMP_NUM_THREADS": "1"}


# --------------------------------------------------------------------------------------------
# Policies


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value) + '"'


def relay_policy(*, protocol: str = "tcpstore", allow: list[str] | None = None,
                 ok_peers: list[str] | None = None, port: int = STORE_PORT, **settings) -> str:
    """A policy with one kind = "tcp" guard named "store" on `port` (default 29500, relay on
    39500) for `allow` (default @ok = peer_ok's two addresses). Keyword arguments become the
    guard's settings, e.g. partial_timeout="2s", buffer_bytes="1MiB", max_keys=16384."""
    allow = ["@ok"] if allow is None else allow
    ok_peers = [OK_V4, OK_V6] if ok_peers is None else ok_peers
    lines = [
        "[peers]",
        f"ok = {_toml_value(ok_peers)}",
        "",
        "[[guard]]",
        'name = "store"',
        'kind = "tcp"',
        f"port = {port}",
        f"allow = {_toml_value(allow)}",
        f"protocol = {_toml_value(protocol)}",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def start_relay(topo: Topology, policy: str, listen_port: int = RELAY_PORT) -> Proxyd:
    """Starts proxyd with `policy` and waits for both "running" and the relay's
    `msg="relay listening" guard=store port=LISTEN_PORT`."""
    d = topo.start_proxyd(policy)
    wait_event(d, "relay listening", guard="store", port=str(listen_port))
    return d


# --------------------------------------------------------------------------------------------
# A fourth namespace, allowed like peer_ok


def add_peer(topo: Topology, role: str, v4: str, v6: str) -> str:
    """Adds namespace TAG+ROLE (letters only, so stale ones are swept like the others) with
    eth0 = V4/24, V6/64 on host's br0, exactly like peer_ok; the topology deletes it."""
    assert role.isalpha(), role
    name = topo.host[:-1] + role  # topo.host is TAG + "h"
    topo.add_netns(name)
    veth = "vh_" + role[:8]
    h = topo.host
    topo.ip(h, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
    topo.ip(h, "link", "set", veth, "master", "br0")
    topo.ip(h, "link", "set", veth, "up")
    topo.ip(name, "addr", "add", f"{v4}/24", "dev", "eth0")
    topo.ip(name, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
    topo.ip(name, "link", "set", "eth0", "up")
    return name


# --------------------------------------------------------------------------------------------
# PyTorch


_torch_probe: tuple[bool, str] | None = None


def torch_or_skip() -> str:
    """The interpreter that runs the peers (pytest's own, `sys.executable`) if it imports
    torch.distributed; otherwise fails (RINGFENCE_REQUIRE_NETNS=1) or skips with the reason."""
    global _torch_probe
    if _torch_probe is None:
        try:
            proc = subprocess.run([sys.executable, "-c", "import torch.distributed as d; assert d.is_available()"],
                                  capture_output=True, text=True, timeout=120)
            lines = proc.stderr.strip().splitlines()
            _torch_probe = (proc.returncode == 0, lines[-1] if lines else f"rc={proc.returncode}")
        except subprocess.TimeoutExpired:
            _torch_probe = (False, "importing torch took over 120 s")
    ok, why = _torch_probe
    if not ok:
        reason = (f"PyTorch is not importable by {sys.executable} ({why}); "
                  f"run pytest with the venv that has torch==2.13.0+cpu (.venv/bin/python -m pytest)")
        if os.environ.get("RINGFENCE_REQUIRE_NETNS") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return sys.executable


@pytest.fixture(scope="session")
def torch_python(netns_capable) -> str:
    return torch_or_skip()


class Repeating:
    """Runs `step()` every `pause` seconds on a thread of its own until `halt()`, or until a step
    returns False: the kits' samplers, probes and knockers. A subclass sets its own state, then
    calls `start()` at the end of its `__init__`."""

    def __init__(self, pause: float, name: str | None = None):
        self.pause = pause
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def step(self) -> bool | None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self.stopping.is_set():
            if self.step() is False:
                return
            self.stopping.wait(self.pause)

    def halt(self, timeout: float) -> None:
        self.stopping.set()
        self.thread.join(timeout=timeout)


class NsProcess:
    """A Python peer script run inside a namespace (`ip netns exec NS python SCRIPT ARGS`), with
    line-oriented stdin/stdout; stderr goes to a file for diagnostics."""

    def __init__(self, ns: str, script: str, *args: str, env: dict[str, str] | None = None,
                 log_dir: Path, name: str):
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        full_env = dict(os.environ, **TORCH_ENV, **(env or {}))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(PEERS_DIR / script), *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=full_env,
            text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True, name=f"pump-{name}").start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")[-3000:]
        return ""

    def describe(self) -> str:
        return (f"{self.name} (rc={self.proc.poll()}): stdout={''.join(self.output)!r}\n"
                f"stderr tail:\n{self.stderr()}")

    def readline(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from {self.name} within {timeout}s: {self.describe()}")
        if line is None:
            self.proc.wait(timeout=5)
            raise AssertionError(f"{self.name} ended: {self.describe()}")
        return line

    def read_json(self, timeout: float) -> dict:
        line = self.readline(timeout)
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"{self.name} printed {line!r}, not JSON: {self.describe()}")

    def request(self, line: str, timeout: float = 10.0) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read_json(timeout)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s: {self.describe()}")

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        self._stderr.close()


class Peers:
    """Starts peer processes for one test and stops them all (before the topology goes)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: list[NsProcess] = []

    def start(self, ns: str, script: str, *args, env: dict[str, str] | None = None, name: str | None = None) -> NsProcess:
        name = name or f"{Path(script).stem}{len(self.procs)}"
        p = NsProcess(ns, script, *args, env=env, log_dir=self.log_dir, name=name)
        self.procs.append(p)
        return p

    def store_server(self, ns: str, port: int = STORE_PORT, world_size: int = 1, timeout: float = 30.0) -> NsProcess:
        """A real TCPStore server (libuv backend, all addresses, dual stack) in `ns`; returns once
        it printed "ready"."""
        p = self.start(ns, "tcpstore_server.py", "0.0.0.0", port, world_size, name="tcpstore_server")
        line = p.readline(timeout)
        assert line == "ready", f"TCPStore server did not start: {line!r}: {p.describe()}"
        return p

    def client_loop(self, ns: str, host: str, port: int = STORE_PORT, tag: str = "steady", timeout: float = 5.0) -> NsProcess:
        """A long-lived, well-behaved TCPStore client; each `request("round")` runs one round of
        set/get/add/check/wait/multi_get/compare_set on its one connection."""
        p = self.start(ns, "tcpstore_client.py", host, port, "--loop", "--tag", tag, "--timeout", timeout,
                       name=f"client_loop_{tag}")
        hello = p.read_json(timeout + 30)
        assert hello.get("connected") is True, f"long-lived client could not connect: {hello}: {p.describe()}"
        return p

    def client_once(self, ns: str, host: str, port: int = STORE_PORT, tag: str = "once", timeout: float = 5.0,
                    wait_timeout: float = 45.0) -> tuple[dict, float, NsProcess]:
        """Runs one client round in a fresh process; returns (its JSON, wall time, process)."""
        started = time.monotonic()
        p = self.start(ns, "tcpstore_client.py", host, port, "--tag", tag, "--timeout", timeout,
                       name=f"client_{tag}_{len(self.procs)}")
        result = p.read_json(wait_timeout)
        p.wait(10)
        return result, time.monotonic() - started, p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def peers(topo, tmp_path):
    """Peer processes of one test, stopped before the topology is torn down."""
    ps = Peers(tmp_path)
    try:
        yield ps
    finally:
        ps.stop_all()


# --------------------------------------------------------------------------------------------
# proxyd's log: logfmt events

_LOGFMT = re.compile(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line: str) -> dict[str, str]:
    fields = {}
    for key, value in _LOGFMT.findall(line):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[key] = value
    return fields


def events(d: Proxyd, msg: str, since: int = 0, **match: str) -> list[dict[str, str]]:
    """proxyd's log lines after offset `since` whose msg is `msg` and whose keys have the
    given values."""
    found = []
    for line in d.log()[since:].splitlines():
        fields = parse_logfmt(line)
        if fields.get("msg") == msg and all(fields.get(k) == v for k, v in match.items()):
            found.append(fields)
    return found


def wait_event(d: Proxyd, msg: str, since: int = 0, timeout: float = 10.0, **match: str) -> dict[str, str]:
    """Waits for a log event (see `events`); fails with the log if it does not come or proxyd
    exits."""
    deadline = time.monotonic() + timeout
    while True:
        found = events(d, msg, since, **match)
        if found:
            return found[0]
        if d.proc.poll() is not None:
            raise AssertionError(f"proxyd exited (rc={d.proc.returncode}) before logging msg={msg!r} {match}:\n{d.log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"proxyd did not log msg={msg!r} {match} within {timeout}s; log since the action:\n"
                                 f"{d.log()[since:][-6000:]}")
        time.sleep(0.05)


def assert_alive(d: Proxyd) -> None:
    assert d.proc.poll() is None, f"proxyd exited (rc={d.proc.returncode}):\n{d.log()[-6000:]}"


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def proxyd_pid(d: Proxyd) -> int:
    """proxyd's own pid: `ip netns exec` execs it in place, so it is the Popen pid (checked)."""
    pid = d.proc.pid
    exe = os.readlink(f"/proc/{pid}/exe")
    assert os.path.basename(exe) == "proxyd", f"pid {pid} is {exe}, not proxyd"
    return pid


# --------------------------------------------------------------------------------------------
# Sockets


def _readable(s: socket.socket, timeout: float) -> bool:
    """poll(2), not select(2): the flood test holds hundreds of descriptors."""
    p = select.poll()
    p.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(p.poll(max(0, int(timeout * 1000))))


def wait_closed(s: socket.socket, timeout: float) -> tuple[str, float]:
    """Waits until the peer closes `s` (EOF or reset), discarding anything it sends first.
    Returns ("eof" | "reset", seconds waited); fails if it is still open after `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"connection still open after {timeout}s")
        if not _readable(s, left):
            continue
        try:
            data = s.recv(65536, socket.MSG_DONTWAIT)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return "reset", time.monotonic() - started
        except BlockingIOError:
            continue
        if not data:
            return "eof", time.monotonic() - started


def is_closed_now(s: socket.socket) -> bool:
    """True when the peer has already closed `s` (EOF or reset pending); False when it is open
    with nothing to read."""
    if not _readable(s, 0):
        return False
    try:
        data = s.recv(65536, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return True
    except BlockingIOError:
        return False
    return data == b""


def send_ignoring_reset(s: socket.socket, data: bytes) -> bool:
    """sendall that tolerates the relay having closed already; True if everything was sent."""
    try:
        s.sendall(data)
        return True
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return False


def ss_established(topo: Topology, ns: str, sport: int) -> list[str]:
    """Remote addresses of established TCP sockets in `ns` with local port `sport`."""
    out = topo.exec(ns, "ss", "-Htn", "state", "established", f"( sport = :{sport} )").stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# TCPStore wire format (torch 2.x): little-endian, u8 command, u64 lengths, u32 magic


VALIDATE, SET, GET, ADD, CHECK, WAIT, MULTI_GET, PING = 0, 1, 3, 4, 5, 6, 10, 13
MAGIC = 0x3C85F7CE


def u8(n: int) -> bytes:
    return struct.pack("<B", n)


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def wire_str(b: bytes) -> bytes:
    return u64(len(b)) + b


def msg_validate(magic: int = MAGIC) -> bytes:
    return u8(VALIDATE) + u32(magic)


def msg_set(key: bytes, value: bytes) -> bytes:
    return u8(SET) + wire_str(key) + wire_str(value)


def msg_get(key: bytes) -> bytes:
    return u8(GET) + wire_str(key)


def msg_ping(nonce: int) -> bytes:
    return u8(PING) + u32(nonce)


# --------------------------------------------------------------------------------------------
# Purpose-built upstream servers (in `host`, dual stack, one thread per connection)


class _Listener:
    def __init__(self, ns: str, port: int):
        self.listener = new_socket(ns, socket.AF_INET6)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.listener.bind(("::", port))
        self.listener.listen(16)
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.1)
            if not ready:
                continue
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._guarded, args=(conn,), daemon=True).start()

    def _guarded(self, conn: socket.socket) -> None:
        try:
            self.serve(conn)
        except Exception as exc:  # reported by the test
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        self.listener.close()


def pattern_block(size: int) -> bytes:
    """A counting pattern: byte i of the stream is i % 251 (a prime, so any misplaced or
    repeated chunk shows)."""
    reps = size // 251 + 2
    return bytes(range(251)) * reps


class StreamServer(_Listener):
    """Sends `total` bytes of the counting pattern to every connection, as fast as the
    connection takes them; `sent` counts what send() accepted so far."""

    def __init__(self, ns: str, port: int, total: int):
        self.total = total
        self.sent = 0
        self.done = threading.Event()
        self.block = pattern_block(1 << 20)
        super().__init__(ns, port)

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        chunk = 1 << 20
        while self.sent < self.total and not self.stopping.is_set():
            off = self.sent % 251
            n = min(chunk, self.total - self.sent)
            try:
                k = conn.send(self.block[off:off + n])
            except socket.timeout:
                continue
            except OSError:
                return
            self.sent += k
        conn.shutdown(socket.SHUT_WR)
        self.done.set()


class ClosingEchoServer(_Listener):
    """Echoes, and closes its side as soon as the client's side is closed (unlike conftest's
    EchoServer, which keeps half-closed connections open until teardown)."""

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)


class HalfCloseServer(_Listener):
    """Reads until EOF, then answers with b"got N bytes sha256 HEX" and closes."""

    def __init__(self, ns: str, port: int):
        self.saw_eof = threading.Event()
        super().__init__(ns, port)

    def serve(self, conn: socket.socket) -> None:
        import hashlib

        conn.settimeout(10)
        h = hashlib.sha256()
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            h.update(data)
            n += len(data)
        self.saw_eof.set()
        conn.sendall(f"got {n} bytes sha256 {h.hexdigest()}".encode())
        conn.close()


def strike(topo, ns: str) -> None:
    """A connection that sends garbage instead of VALIDATE: a protocol violation, one strike."""
    s = topo.connect(ns, HOST_V4, STORE_PORT, timeout=3)
    try:
        s.sendall(bytes.fromhex("00efbeadde"))
        s.settimeout(3)
        try:
            s.recv(100)
        except OSError:
            pass
    finally:
        s.close()
