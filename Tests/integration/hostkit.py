"""Helpers for the host guard (kind = "host") tests: host-guard policies (alone or beside named
guards), UDP echo servers and probes, a tiny HTTP server for a public port, the host's listening
sockets as `ss` sees them, a gloo world of three held open, and the operator commands
(`proxyctl audit`, `explain`, `kick`, `bans`, `unban`) with their JSON replies.

The topology is conftest's, plus the third peer namespace `peer_ok2` (10.77.0.4, fd77::4) made by
`Topology.add_peer_ok2()`. Servers made here are registered on the topology, which closes them.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import socketserver

from conftest import (BAD_V4, BAD_V6, HOST_V4, HOST_V6, OK2_V4, OK2_V6, OK_V4, OK_V6, PROXYCTL, EchoServer, Proxyd,
                      Topology, check_binaries, family_of, in_netns, new_socket, recv_exactly)
from controlkit import proxyctl
from relaykit import NsProcess, Peers, _toml_value

HOST_GUARD = "host"
HTTP_PORT = 8000  # the public port of most policies here: HTTP over TCP, and a UDP echo too
STORE_PORT = 29500  # the gloo world's TCPStore (MASTER_PORT)
WORKERS = [OK_V4, OK_V6, OK2_V4, OK2_V6]
PROBE_TIMEOUT = 1.0

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# --------------------------------------------------------------------------------------------
# Policies


def guard_toml(name: str, kind: str, **keys) -> str:
    """One [[guard]] table: name, kind, then `keys` in order (values as TOML)."""
    lines = ["[[guard]]", f'name = "{name}"', f'kind = "{kind}"']
    lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items() if value is not None]
    return "\n".join(lines) + "\n"


def host_guard(*, name: str = HOST_GUARD, public: list[int] | None = None, allow: list[str] | None = None,
               mode: str | None = None) -> str:
    """The kind = "host" guard: `public` (default [8000]), `allow` (default @workers), and
    `mode` only when given (the default is enforce)."""
    return guard_toml(name, "host", public=[HTTP_PORT] if public is None else public,
                      allow=["@workers"] if allow is None else allow, mode=mode)


def host_policy(*, public: list[int] | None = None, allow: list[str] | None = None,
                workers: list[str] | None = None, mode: str | None = None, deny: str | None = None,
                groups: dict[str, list[str]] | None = None, before: str = "", after: str = "") -> str:
    """[firewall] (deny, when given), [peers] workers = WORKERS (default: peer_ok's and
    peer_ok2's addresses) and any other `groups`, guards `before`, the host guard, guards
    `after`."""
    workers = WORKERS if workers is None else workers
    out = ""
    if deny is not None:
        out += f'[firewall]\ndeny = "{deny}"\n\n'
    out += "[peers]\n" + f"workers = {_toml_value(workers)}\n"
    for group, members in (groups or {}).items():
        out += f"{group} = {_toml_value(members)}\n"
    out += "\n"
    if before:
        out += before + "\n"
    out += host_guard(public=public, allow=allow, mode=mode)
    if after:
        out += "\n" + after
    return out


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """(line, column), both from 1, of the `occurrence`-th `needle` in `text`."""
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return line, col


DIAGNOSTIC = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<key>[\w\[\].\- ]+): (?P<msg>.+)$")


def diagnostics(stderr: str, path: str) -> list[tuple[int, int, str, str]]:
    """The FILE:LINE:COL: KEY: message lines of `stderr` about `path`, as (line, col, key, msg)."""
    found = []
    for line in stderr.splitlines():
        m = DIAGNOSTIC.match(line)
        if m and m["file"] == path:
            found.append((int(m["line"]), int(m["col"]), m["key"], m["msg"]))
    return found


# --------------------------------------------------------------------------------------------
# Servers (dual stack, threads; registered on the topology, which closes them)


class UdpEchoServer:
    """A UDP echo server on one port in namespace `ns` ([::] with IPV6_V6ONLY off; port 0 =
    ephemeral, see `port`). `senders` records each datagram's source address."""

    def __init__(self, ns: str, port: int):
        self.sock = new_socket(ns, socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind(("::", port))
        self.port = self.sock.getsockname()[1]
        self.senders: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"udp-echo-{self.port}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            try:
                data, addr = self.sock.recvfrom(65536)
                self.senders.append(addr[0])
                self.sock.sendto(data, addr)
            except OSError:
                continue

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()


class HttpServer:
    """A tiny HTTP server (GET answers 200 with a fixed body) on `port` in namespace `ns`, dual
    stack."""

    BODY = b"ringfence public port\n"

    def __init__(self, ns: str, port: int):
        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True
            allow_reuse_address = True

            def server_bind(self):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                # TCPServer's bind only: HTTPServer's would look the host name up (getfqdn).
                socketserver.TCPServer.server_bind(self)
                self.server_name, self.server_port = "host", port

        # The listening socket is made in the constructor, so inside the namespace; accepted
        # sockets belong to the listener's namespace whatever thread accepts them.
        with in_netns(ns):
            self.server = Server(("::", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name=f"http-{port}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=2)


def udp_echo(topo: Topology, ns: str, port: int) -> UdpEchoServer:
    srv = UdpEchoServer(ns, port)
    topo.servers.append(srv)
    return srv


def http_server(topo: Topology, ns: str, port: int = HTTP_PORT) -> HttpServer:
    srv = HttpServer(ns, port)
    topo.servers.append(srv)
    return srv


def tcp_echo(topo: Topology, ns: str, port: int) -> EchoServer:
    """conftest's EchoServer in any namespace (port 0: ephemeral; the real port is set on it)."""
    srv = EchoServer(ns, port)
    srv.port = srv.listener.getsockname()[1]
    topo.servers.append(srv)
    return srv


# --------------------------------------------------------------------------------------------
# Probes


def udp_outcome(topo: Topology, ns: str, address: str, port: int, payload: bytes | None = None,
                timeout: float = PROBE_TIMEOUT) -> str:
    """One datagram from `ns` to ADDRESS:PORT on a connected UDP socket: "reply" (the echo came
    back, and it is the payload), "refused" (an ICMP port unreachable was reported), or
    "timeout"."""
    payload = payload or f"udp from {ns} to [{address}]:{port}".encode()
    s = new_socket(ns, family_of(address), socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect((address, port))
        s.send(payload)
        try:
            data = s.recv(65536)
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "timeout"
        assert data == payload, f"UDP echo from [{address}]:{port} returned {data!r}, not {payload!r}"
        return "reply"
    finally:
        s.close()


def tcp_outcome(topo: Topology, ns: str, address: str, port: int, timeout: float = PROBE_TIMEOUT) -> str:
    """A TCP echo round trip from `ns`: "echo", "refused" (reset at connect), "reset" (reset
    or EOF after connecting) or "timeout"."""
    s = new_socket(ns, family_of(address))
    try:
        s.settimeout(timeout)
        try:
            s.connect((address, port))
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "timeout"
        payload = f"tcp from {ns} to [{address}]:{port}".encode()
        try:
            s.sendall(payload)
            got = recv_exactly(s, len(payload))
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, (socket.timeout, TimeoutError)):
                return "timeout"
            return "reset"
        assert got == payload, got
        return "echo"
    finally:
        s.close()


def http_get(topo: Topology, ns: str, address: str, port: int = HTTP_PORT, timeout: float = 2.0) -> bytes:
    """GET / from `ns`; returns the body of a 200 reply (anything else raises)."""
    s = topo.connect(ns, address, port, timeout=timeout)
    try:
        s.sendall(b"GET / HTTP/1.0\r\nHost: host\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    finally:
        s.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), reply[:200]
    return body


def echo_on(s: socket.socket, data: bytes, timeout: float = 2.0) -> bytes:
    s.settimeout(timeout)
    s.sendall(data)
    return recv_exactly(s, len(data))


def still_echoes(s: socket.socket, data: bytes = b"still there?", timeout: float = 2.0) -> bool:
    """True if `s` echoes `data`; False on reset, EOF or no answer within `timeout`."""
    try:
        return echo_on(s, data, timeout) == data
    except (ConnectionError, OSError):
        return False


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """Polls `predicate` until it returns something truthy (returned); fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)


def ping(topo: Topology, ns: str, address: str) -> bool:
    """One echo request from `ns` (1 s deadline); True if answered."""
    return topo.exec(ns, "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0


# --------------------------------------------------------------------------------------------
# What listens in a namespace


def listeners(topo: Topology, ns: str, proto: str) -> list[tuple[str, int, str]]:
    """Listening TCP (`proto` = "tcp") or bound UDP ("udp") sockets of `ns` as `ss` shows them:
    (local address, port, process column)."""
    flag = "-Hltnp" if proto == "tcp" else "-Hlunp"
    out = topo.exec(ns, "ss", flag).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        local = fields[3]
        addr, _, port = local.rpartition(":")
        found.append((addr.strip("[]"), int(port), " ".join(fields[5:])))
    return found


def families_to_probe(bound: str) -> list[str]:
    """The host addresses a peer can reach a socket bound to `bound` on ("*" = dual stack)."""
    if bound in ("*", "::ffff:0.0.0.0"):
        return [HOST_V4, HOST_V6]
    if bound == "0.0.0.0" or bound == HOST_V4:
        return [HOST_V4]
    if bound in ("::", HOST_V6):
        return [HOST_V6]
    return []  # loopback or another address: not reachable from the bridge


# --------------------------------------------------------------------------------------------
# A gloo world of three, held open (peers/ddp_rank.py with RINGFENCE_HOLD=1)


class GlooWorld:
    """Rank 0 in `host` (MASTER_ADDR = 10.77.0.1, its TCPStore on `store_port`), ranks 1 and 2 in
    the two allowed peers; gloo picks its own ephemeral ports. `formed()` waits for every rank's
    first all_reduce (1+2+3 = 6); `finish()` lets them barrier, all_reduce again (10+20+30 = 60)
    and destroy the group."""

    def __init__(self, peers: Peers, topo: Topology, ok2: str, store_port: int = STORE_PORT):
        common = {"WORLD_SIZE": "3", "MASTER_ADDR": HOST_V4, "MASTER_PORT": str(store_port)}
        self.ranks: list[NsProcess] = []
        for rank, ns, ifname in ((0, topo.host, "br0"), (1, topo.peer_ok, "eth0"), (2, ok2, "eth0")):
            env = dict(common, RANK=str(rank), GLOO_SOCKET_IFNAME=ifname, RINGFENCE_HOLD="1")
            self.ranks.append(peers.start(ns, "ddp_rank.py", env=env, name=f"rank{rank}"))
        self.pids: dict[int, int] = {}

    def formed(self, within: float = 60.0, context=lambda: "") -> None:
        deadline = time.monotonic() + within
        for rank, p in enumerate(self.ranks):
            result = p.read_json(max(1.0, deadline - time.monotonic()))
            assert result["ok"] is True and result["rank"] == rank, f"{result}\n{p.describe()}\n{context()}"
            assert result["sum"] == 6.0, result
            self.pids[rank] = result["pid"]

    def finish(self, within: float = 60.0, context=lambda: "") -> None:
        for p in self.ranks:
            p.proc.stdin.write("finish\n")
            p.proc.stdin.flush()
        deadline = time.monotonic() + within
        for p in self.ranks:
            result = p.read_json(max(1.0, deadline - time.monotonic()))
            assert result["ok"] is True and result.get("stage") == "done", f"{result}\n{p.describe()}\n{context()}"
            assert result["sum"] == 60.0, result
        for p in self.ranks:
            assert p.wait(max(1.0, deadline - time.monotonic())) == 0, p.describe()


# --------------------------------------------------------------------------------------------
# proxyctl: the operator commands


def proxyctl_nodaemon(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """`proxyctl ARGS` with no control socket (for check, and explain --policy)."""
    check_binaries()
    return subprocess.run([str(PROXYCTL), *args], capture_output=True, text=True, timeout=timeout)


def ok_reply(d: Proxyd, *args: str) -> dict:
    """The JSON reply of `proxyctl ARGS --json`, which must be ok (exit 0)."""
    return _ok_json(proxyctl(d, *args, "--json"), args)


def _ok_json(proc: subprocess.CompletedProcess, args) -> dict:
    """The reply a proxyctl run printed as JSON; it must be ok, version 1, and exit 0."""
    try:
        reply = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"proxyctl {args} printed no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert proc.returncode == 0 and reply.get("ok") is True, f"proxyctl {args}: rc={proc.returncode}: {reply}\n{proc.stderr}"
    assert reply.get("version") == 1, reply
    return reply


def audit(d: Proxyd) -> list[dict]:
    return ok_reply(d, "audit")["audit"]


def audit_keys(entries: list[dict], mode: str | None = None) -> dict[tuple[str, str, int], dict]:
    """Entries by (source, protocol, port), of guard host and of `mode` if given."""
    return {(e["source"], e["protocol"], e["port"]): e for e in entries
            if e["guard"] == HOST_GUARD and (mode is None or e["mode"] == mode)}


def wait_audit(d: Proxyd, want: set[tuple[str, str, int]], mode: str, timeout: float = 10.0,
               min_count: dict | None = None) -> list[dict]:
    """Polls `proxyctl audit --json` until every (source, protocol, port) of `want` is listed for
    guard host in `mode` (with at least `min_count[key]` attempts where given); returns the list."""
    min_count = min_count or {}
    last: list[dict] = []

    def ready():
        nonlocal last
        last = audit(d)
        got = audit_keys(last, mode)
        return all(k in got and got[k]["count"] >= min_count.get(k, 1) for k in want)

    try:
        wait_until(ready, timeout, "audit entries")
    except AssertionError:
        raise AssertionError(f"`proxyctl audit` did not list {sorted(want)} (mode {mode}, counts {min_count}) "
                             f"within {timeout}s; last reply: {json.dumps(last, indent=1)}\n"
                             f"proxyd log:\n{d.log()[-3000:]}")
    return last


def explain(d: Proxyd | None, address: str, port: int, udp: bool = False, policy: Path | None = None) -> dict:
    """`proxyctl explain ADDRESS PORT [--udp] --json`, against daemon `d`, or with `--policy
    FILE` and no daemon; returns the "explain" object (the reply must be ok)."""
    args = ["explain", address, str(port), *(["--udp"] if udp else []), "--json"]
    if policy is not None:
        proc = proxyctl_nodaemon(*args, "--policy", str(policy))
    else:
        proc = proxyctl(d, *args)
    out = _ok_json(proc, args)["explain"]
    assert (out["address"], out["port"], out["protocol"]) == (address, port, "udp" if udp else "tcp"), out
    return out


def kick(d: Proxyd, peer: str, *options: str) -> dict:
    """`proxyctl kick PEER OPTIONS --json`: the "kick" object of an ok reply."""
    return ok_reply(d, "kick", peer, *options)["kick"]


def bans(d: Proxyd) -> list[dict]:
    return ok_reply(d, "bans")["bans"]


def unban(d: Proxyd, peer: str) -> dict:
    return ok_reply(d, "unban", peer)["unban"]


def error_reply(d: Proxyd, *args: str) -> dict:
    """The JSON error of `proxyctl ARGS --json`, which must fail with exit 1."""
    proc = proxyctl(d, *args, "--json")
    assert proc.returncode == 1, f"proxyctl {args}: expected exit 1, got {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    reply = json.loads(proc.stdout)
    assert reply.get("ok") is False and "code" in reply["error"] and "message" in reply["error"], reply
    return reply["error"]


def fence_listing(topo: Topology) -> str | None:
    """`nft list table inet ringfence` with the countdowns of timed set elements (bans) and
    counter values taken out, which change by themselves between two listings."""
    text = topo.table_listing()
    if text is None:
        return None
    text = re.sub(r"\s+expires \S+", "", text)
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", text)
    return text


def peer_port(s: socket.socket) -> int:
    """The local (peer-side) port of a connection made from a peer namespace."""
    return s.getsockname()[1]


@contextlib.contextmanager
def echoing_in_background(s: socket.socket, interval: float = 0.02):
    """Echoes on `s` every `interval` seconds in a thread for the duration of the block; yields
    a dict with "rounds" and "failures" (which the caller asserts on)."""
    state = {"rounds": 0, "failures": []}
    stop = threading.Event()

    def loop():
        n = 0
        while not stop.is_set():
            payload = b"round %d" % n
            try:
                got = echo_on(s, payload, timeout=2.0)
                if got != payload:
                    state["failures"].append(f"round {n}: {got!r}")
            except (ConnectionError, OSError) as exc:
                state["failures"].append(f"round {n}: {type(exc).__name__}: {exc}")
                return
            n += 1
            state["rounds"] = n
            time.sleep(interval)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield state
    finally:
        stop.set()
        t.join(timeout=5)


NS_ROLES = {OK_V4: "peer_ok", OK_V6: "peer_ok", OK2_V4: "peer_ok2", OK2_V6: "peer_ok2",
            BAD_V4: "peer_bad", BAD_V6: "peer_bad"}


def ns_of(topo: Topology, address: str) -> str:
    """The namespace that owns `address`."""
    name = getattr(topo, NS_ROLES[address])
    assert name, f"no namespace for {address} (peer_ok2 not made?)"
    return name
