"""Fixtures for Ringfence's network-namespace integration tests.

Each test gets its own topology of three network namespaces, made with `ip netns add`:

    host     br0 10.77.0.1/24, fd77::1/64   proxyd, echo servers, nftables
    peer_ok  eth0 10.77.0.2/24, fd77::2/64  (veth to br0)
    peer_bad eth0 10.77.0.3/24, fd77::3/64  (veth to br0)
    peer_ok2 eth0 10.77.0.4/24, fd77::4/64  (veth to br0; only if the test calls Topology.add_peer_ok2())

Nothing is created in the namespace the tests run in: the veth pairs are made inside `host`
with their peer ends placed straight into the peer namespaces, so traffic never leaves them.

Sockets "in" a namespace are made by the test process itself: `setns(2)` into the namespace on
the calling thread, create the socket (a socket belongs to the namespace it was created in for
its whole life), and switch back at once.

Run with Debian's interpreter, as root: `/usr/bin/python3 -m pytest Tests/integration`.
Without root or network namespaces the tests are skipped, unless RINGFENCE_REQUIRE_NETNS=1,
in which case they fail. RINGFENCE_BIN_DIR points at the directory with proxyd and proxyctl
(default: .build/debug in the repository).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("RINGFENCE_BIN_DIR") or REPO_ROOT / ".build" / "debug")
PROXYD = BIN_DIR / "proxyd"
PROXYCTL = BIN_DIR / "proxyctl"
EXAMPLE_POLICY = REPO_ROOT / "policy.example.toml"

# Namespace names: "rfit" + pid + per-test counter + role. Unique per run, and short enough
# for anything that derives names from them.
NS_PREFIX = "rfit"
_counter = itertools.count(1)
_sockets = itertools.count(1)

HOST_V4, OK_V4, BAD_V4 = "10.77.0.1", "10.77.0.2", "10.77.0.3"
HOST_V6, OK_V6, BAD_V6 = "fd77::1", "fd77::2", "fd77::3"
# The optional third peer namespace (`Topology.add_peer_ok2`), allowed like peer_ok where a test says so.
OK2_V4, OK2_V6 = "10.77.0.4", "fd77::4"

CONNECT_TIMEOUT = 2.0
LOG_TIMEOUT = 10.0
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


# --------------------------------------------------------------------------------------------
# Small process helpers


def run(*args: str, check: bool = True, input: str | None = None, timeout: float = 15.0) -> subprocess.CompletedProcess:
    """Runs a command with a bounded wait, capturing text output."""
    proc = subprocess.run(
        [str(a) for a in args], input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed (rc={proc.returncode}): {' '.join(map(str, args))}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def netns_pids(name: str) -> list[int]:
    proc = run("ip", "netns", "pids", name, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit() and int(p) != os.getpid()]


def kill_netns_processes(name: str) -> None:
    """Ends the processes that live in namespace `name` (only ever one of ours), by pid:
    SIGTERM, then SIGKILL for those still there after 3 s."""
    pids = netns_pids(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _pid_alive(p) and not _is_zombie(p)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def netns_delete(name: str) -> None:
    if netns_exists(name):
        kill_netns_processes(name)
        run("ip", "netns", "del", name, check=False)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_namespaces() -> None:
    """Deletes test namespaces left behind by an earlier run whose pytest process is gone
    (e.g. killed with SIGKILL, so no teardown ran)."""
    netns_dir = Path("/run/netns")
    if not netns_dir.is_dir():
        return
    for entry in netns_dir.iterdir():
        m = re.fullmatch(NS_PREFIX + r"(\d+)t\d+[a-z]+", entry.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            netns_delete(entry.name)


def require_netns_or_skip(reason: str):
    """Fails (RINGFENCE_REQUIRE_NETNS=1) or skips visibly with `reason`."""
    if os.environ.get("RINGFENCE_REQUIRE_NETNS") == "1":
        pytest.fail(f"network namespaces are required (RINGFENCE_REQUIRE_NETNS=1) but unavailable: {reason}",
                    pytrace=False)
    pytest.skip(f"needs root and network namespaces: {reason}")


def check_binaries() -> None:
    for binary in (PROXYD, PROXYCTL):
        if not os.access(binary, os.X_OK):
            pytest.fail(
                f"{binary} not found or not executable: run `swift build` first, "
                f"or set RINGFENCE_BIN_DIR", pytrace=False)


# --------------------------------------------------------------------------------------------
# Entering a namespace from this process


@contextlib.contextmanager
def in_netns(name: str):
    """Moves the calling thread into network namespace `name` for the duration of the block.

    Use it on the thread that calls it only (setns changes the calling thread), and only to
    create sockets: a socket stays in the namespace it was created in.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {name}: {os.strerror(err)}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(original, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                # Carrying on in the wrong namespace would make every later result meaningless.
                os.write(2, f"FATAL: could not return to the original network namespace: {os.strerror(err)}\n".encode())
                os._exit(70)
    finally:
        os.close(original)


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def new_socket(ns: str, family: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    with in_netns(ns):
        return socket.socket(family, kind)


# --------------------------------------------------------------------------------------------
# Echo server (runs in `host`, served by threads)


class EchoServer:
    """A TCP echo server on one port, dual-stack ([::] with IPV6_V6ONLY off)."""

    def __init__(self, ns: str, port: int):
        self.port = port
        self.listener = new_socket(ns, socket.AF_INET6)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.listener.bind(("::", port))
        self.listener.listen(64)
        self.stopping = threading.Event()
        self.connections: list[socket.socket] = []
        self.accepted: list[str] = []  # peer addresses, for diagnostics
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept_loop, name=f"echo-{port}", daemon=True)
        t.start()
        self.threads.append(t)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.2)
            if not ready:
                continue
            try:
                conn, addr = self.listener.accept()
            except OSError:
                continue
            conn.settimeout(0.2)
            with self.lock:
                self.connections.append(conn)
                self.accepted.append(addr[0])
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            with self.lock:
                self.threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        while not self.stopping.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            try:
                conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.stopping.set()
        with self.lock:
            threads = list(self.threads)
        for t in threads:
            t.join(timeout=2)
        with self.lock:
            for conn in self.connections:
                conn.close()
        self.listener.close()


# --------------------------------------------------------------------------------------------
# proxyd


class Proxyd:
    """A proxyd running in the host namespace, its stderr going to a log file."""

    def __init__(self, ns: str, policy: Path, log: Path, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, wrapper: tuple[str, ...] = ()):
        self.policy = policy
        self.log_path = log
        self._log = open(log, "wb")
        # A control socket of its own (short: sun_path holds 107 bytes), so that daemons of
        # different tests never collide on the default /run/ringfence/control.sock.
        if "--control-socket" in extra_args:
            self.control_socket = extra_args[extra_args.index("--control-socket") + 1]
        else:
            self.control_socket = f"/tmp/rfit-{os.getpid()}-{next(_sockets)}.sock"
            extra_args = ("--control-socket", self.control_socket, *extra_args)
        # `ip netns exec` execs proxyd in place (through `wrapper`, a command that execs its
        # arguments, such as setpriv): the Popen pid is proxyd's.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *wrapper, str(PROXYD), "--policy", str(policy), "--log-level", "debug", *extra_args],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=None if env is None else dict(os.environ, **env),
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_size(self) -> int:
        return len(self.log())

    def wait_for_log(self, pattern: str, since: int = 0, timeout: float = LOG_TIMEOUT) -> str:
        """Waits until `pattern` (a regex) appears in the log after offset `since`; returns the
        log from there. Fails early if proxyd exits."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()[since:]
            if re.search(pattern, text):
                return text
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"proxyd exited (rc={self.proc.returncode}) before logging /{pattern}/:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"proxyd did not log /{pattern}/ within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def wait_running(self) -> None:
        self.wait_for_log(r'msg=running\b|"msg":"running"')

    def reload(self) -> str:
        """Sends SIGHUP and waits for the outcome; returns the log written by the reload."""
        since = self.log_size()
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_for_log(r'msg="(policy reloaded|reload refused)', since=since)

    def terminate(self, timeout: float = 10.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"proxyd did not exit within {timeout}s of SIGTERM:\n{self.log()}")

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"proxyd did not exit within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """Teardown: make sure the process is gone, whatever state it is in."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        # A daemon killed outright leaves its socket file; it is ours to remove.
        with contextlib.suppress(OSError):
            os.unlink(self.control_socket)


# --------------------------------------------------------------------------------------------
# The topology


class Topology:
    def __init__(self, tmp_path: Path):
        tag = f"{NS_PREFIX}{os.getpid()}t{next(_counter)}"
        self.host = f"{tag}h"
        self.peer_ok = f"{tag}ok"
        self.peer_bad = f"{tag}bad"
        self.namespaces: list[str] = []
        self.tmp = tmp_path
        self.servers: list[EchoServer] = []
        self.daemons: list[Proxyd] = []
        self.sockets: list[socket.socket] = []
        self.policy_path = tmp_path / "policy.toml"
        self.peer_ok2: str | None = None  # made on demand by add_peer_ok2()

    # -- setup / teardown ---------------------------------------------------------------------

    def add_netns(self, name: str) -> None:
        proc = run("ip", "netns", "add", name, check=False)
        if proc.returncode != 0:
            raise NetnsUnavailable(f"`ip netns add {name}` failed: {proc.stderr.strip()}")
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")

    def build(self) -> None:
        self.add_netns(self.host)
        self.add_netns(self.peer_ok)
        self.add_netns(self.peer_bad)
        h = self.host
        self.ip(h, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.ip(h, "addr", "add", f"{HOST_V4}/24", "dev", "br0")
        self.ip(h, "addr", "add", f"{HOST_V6}/64", "dev", "br0", "nodad")
        self.ip(h, "link", "set", "br0", "up")
        for veth, peer, v4, v6 in (("vh_ok", self.peer_ok, OK_V4, OK_V6),
                                   ("vh_bad", self.peer_bad, BAD_V4, BAD_V6)):
            self.ip(h, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", peer)
            self.ip(h, "link", "set", veth, "master", "br0")
            self.ip(h, "link", "set", veth, "up")
            self.ip(peer, "addr", "add", f"{v4}/24", "dev", "eth0")
            self.ip(peer, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
            self.ip(peer, "link", "set", "eth0", "up")

    def add_peer_ok2(self) -> str:
        """Adds a third peer namespace, TAG + "oktwo" (letters only, so a stale one is swept like
        the others), with eth0 = 10.77.0.4/24, fd77::4/64 on host's br0, exactly like peer_ok;
        sets and returns `self.peer_ok2`. The teardown deletes it with the others."""
        assert self.peer_ok2 is None, "peer_ok2 exists already"
        name = self.host[:-1] + "oktwo"  # self.host is TAG + "h"
        self.add_netns(name)
        h = self.host
        self.ip(h, "link", "add", "vh_oktwo", "type", "veth", "peer", "name", "eth0", "netns", name)
        self.ip(h, "link", "set", "vh_oktwo", "master", "br0")
        self.ip(h, "link", "set", "vh_oktwo", "up")
        self.ip(name, "addr", "add", f"{OK2_V4}/24", "dev", "eth0")
        self.ip(name, "addr", "add", f"{OK2_V6}/64", "dev", "eth0", "nodad")
        self.ip(name, "link", "set", "eth0", "up")
        self.peer_ok2 = name
        return name

    def teardown(self) -> list[str]:
        problems: list[str] = []
        for d in self.daemons:
            try:
                d.kill()
            except Exception as exc:  # keep tearing down
                problems.append(f"proxyd: {exc}")
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.close()
        for srv in self.servers:
            try:
                srv.close()
            except Exception as exc:
                problems.append(f"echo server: {exc}")
        for ns in reversed(self.namespaces):
            # Anything still alive in the namespace was started by this test (e.g. a process
            # a test spawned itself): end it so that nothing outlives the namespace.
            kill_netns_processes(ns)
            proc = run("ip", "netns", "del", ns, check=False)
            if proc.returncode != 0 and netns_exists(ns):
                problems.append(f"ip netns del {ns}: {proc.stderr.strip()}")
        return problems

    # -- commands -----------------------------------------------------------------------------

    def ip(self, ns: str, *args: str) -> None:
        run("ip", "-n", ns, *args)

    def exec(self, ns: str, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", ns, *args, check=check, input=input)

    def nft(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """`nft ARGS` in the host namespace."""
        return self.exec(self.host, "nft", *args, check=check, input=input)

    def table_listing(self, table: str = "ringfence", family: str = "inet") -> str | None:
        """`nft list table FAMILY TABLE` in host, or None when the table does not exist."""
        proc = self.nft("list", "table", family, table, check=False)
        if proc.returncode != 0:
            if "No such file or directory" in proc.stderr:
                return None
            raise AssertionError(f"nft list table {family} {table} failed: {proc.stderr}")
        return proc.stdout

    # -- policy and daemon ----------------------------------------------------------------------

    def write_policy(self, text: str) -> Path:
        # Write then rename so that proxyd never reads a half-written file.
        tmp = self.policy_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.rename(self.policy_path)
        return self.policy_path

    def start_proxyd(self, policy_text: str, wait: bool = True, extra_args: tuple[str, ...] = (),
                     env: dict[str, str] | None = None, wrapper: tuple[str, ...] = ()) -> Proxyd:
        self.write_policy(policy_text)
        d = Proxyd(self.host, self.policy_path, self.tmp / f"proxyd{len(self.daemons)}.log", extra_args, env, wrapper)
        self.daemons.append(d)
        if wait:
            d.wait_running()
        return d

    # -- traffic --------------------------------------------------------------------------------

    def echo_server(self, port: int) -> EchoServer:
        srv = EchoServer(self.host, port)
        self.servers.append(srv)
        return srv

    def connect(self, ns: str, address: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        """A TCP connection from namespace `ns`; raises what connect raises."""
        s = new_socket(ns, family_of(address))
        self.sockets.append(s)
        s.settimeout(timeout)
        s.connect((address, port))
        return s

    def connect_outcome(self, ns: str, address: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str:
        """'connected', 'refused' or 'timeout' (anything else raises). The socket is closed in
        every case: one left in SYN-SENT after a timeout would connect at the SYN's retry."""
        s = new_socket(ns, family_of(address))
        s.settimeout(timeout)
        try:
            s.connect((address, port))
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "timeout"
        finally:
            s.close()
        return "connected"

    def echo_roundtrip(self, ns: str, address: str, port: int, payload: bytes | None = None) -> bytes:
        """Connects from `ns`, sends a payload and returns what came back (must be the payload)."""
        payload = payload or f"hello from {ns} to [{address}]:{port}".encode()
        s = self.connect(ns, address, port)
        try:
            s.sendall(payload)
            return recv_exactly(s, len(payload))
        finally:
            s.close()


def recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


class NetnsUnavailable(Exception):
    pass


def policy_toml(*, allow: list[str] | None = None, ports: list[int] | None = None, deny: str | None = None,
                remove_on_exit: bool | None = None, ok_peers: list[str] | None = None, extra: str = "") -> str:
    """A kind = "firewall" policy guarding `ports` (default 29500) for `allow` (default @ok)."""
    ports = ports or [29500]
    allow = ["@ok"] if allow is None else allow
    ok_peers = [OK_V4, OK_V6] if ok_peers is None else ok_peers
    fw = []
    if deny is not None:
        fw.append(f'deny = "{deny}"')
    if remove_on_exit is not None:
        fw.append(f"remove_on_exit = {'true' if remove_on_exit else 'false'}")
    q = lambda items: "[" + ", ".join(f'"{i}"' for i in items) + "]"  # noqa: E731
    port_line = f"port = {ports[0]}" if len(ports) == 1 else "ports = [" + ", ".join(map(str, ports)) + "]"
    return (
        "[firewall]\n" + "".join(line + "\n" for line in fw)
        + "\n[peers]\n" + f"ok = {q(ok_peers)}\n"
        + "\n[[guard]]\n" + 'name = "store"\nkind = "firewall"\n' + port_line + "\n" + f"allow = {q(allow)}\n"
        + extra
    )


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def netns_capable():
    """The root/netns gate, checked once; stale namespaces of dead runs are swept."""
    if os.geteuid() != 0:
        require_netns_or_skip("not running as root")
    check_binaries()
    sweep_stale_namespaces()
    probe = f"{NS_PREFIX}{os.getpid()}t0probe"
    proc = run("ip", "netns", "add", probe, check=False)
    if proc.returncode != 0:
        require_netns_or_skip(f"`ip netns add` failed: {proc.stderr.strip()}")
    netns_delete(probe)
    return True


@pytest.fixture
def topo(netns_capable, tmp_path):
    """A fresh host / peer_ok / peer_bad topology, torn down whatever happens."""
    t = Topology(tmp_path)
    try:
        try:
            t.build()
        except NetnsUnavailable as exc:
            require_netns_or_skip(str(exc))
        yield t
    finally:
        problems = t.teardown()
        assert not problems, "teardown problems: " + "; ".join(problems)


@pytest.fixture
def scratch_netns(netns_capable):
    """One empty namespace (lo up), deleted afterwards."""
    name = f"{NS_PREFIX}{os.getpid()}t{next(_counter)}scratch"
    proc = run("ip", "netns", "add", name, check=False)
    if proc.returncode != 0:
        require_netns_or_skip(f"`ip netns add {name}` failed: {proc.stderr.strip()}")
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        netns_delete(name)
        assert not netns_exists(name), f"namespace {name} was not deleted"
