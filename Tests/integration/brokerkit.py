"""Helpers for the broker (kind = "zmq-xpub") integration tests: broker policies, the vLLM-style
writer and reader processes (libzmq, run inside namespaces), and ZMTP spoken by hand over raw
TCP sockets (greeting, READY, frames, both subscription forms).

The topology is conftest's: the engine's XPUB (the writer) is bound in `host` on 10.77.0.1,
subscribers connect to 10.77.0.1:PORT from peer namespaces and the kernel redirects them to the
broker's listen port (PORT + 10000 unless set).
"""

from __future__ import annotations

import json
import queue
import socket
import struct
import time
from dataclasses import dataclass

from conftest import HOST_V4, OK_V4, OK_V6, Proxyd, Topology, family_of, new_socket
from relaykit import OK2_V4, OK2_V6, NsProcess, Peers, _readable, _toml_value, wait_event

GUARD = "bus"
MiB = 1 << 20
# Ephemeral ports in `host` (a per-namespace sysctl): the writer's port-0 bind lands here, so the
# default listen_port (port + 10000) always exists and never collides with an ephemeral port.
HOST_PORT_RANGE = (40000, 44999)


# --------------------------------------------------------------------------------------------
# Policies and proxyd


def narrow_host_port_range(topo: Topology) -> None:
    lo, hi = HOST_PORT_RANGE
    topo.exec(topo.host, "sysctl", "-qw", f"net.ipv4.ip_local_port_range={lo} {hi}")


def broker_policy(port: int, *, allow: list[str] | None = None, ok_peers: list[str] | None = None,
                  **settings) -> str:
    """A policy with one kind = "zmq-xpub" guard named "bus" on `port` for `allow` (default @ok =
    peer_ok's and the fourth namespace's addresses). Keyword arguments become the guard's
    settings, e.g. hwm_messages=50, hwm_bytes="64MiB", handshake_timeout="2s"."""
    allow = ["@ok"] if allow is None else allow
    ok_peers = [OK_V4, OK_V6, OK2_V4, OK2_V6] if ok_peers is None else ok_peers
    lines = [
        "[peers]",
        f"ok = {_toml_value(ok_peers)}",
        "",
        "[[guard]]",
        f'name = "{GUARD}"',
        'kind = "zmq-xpub"',
        f"port = {port}",
        f"allow = {_toml_value(allow)}",
    ]
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def start_broker(topo: Topology, policy: str, listen_port: int) -> Proxyd:
    """Starts proxyd and waits for "running" and `msg="broker listening" guard=bus port=LISTEN`."""
    d = topo.start_proxyd(policy)
    wait_event(d, "broker listening", guard=GUARD, port=str(listen_port))
    return d


# --------------------------------------------------------------------------------------------
# The writer (engine) and readers: libzmq in processes inside namespaces


class Writer:
    """peers/broker_writer.py: vLLM's writer XPUB (XPUB_VERBOSE), bound on HOST:PORT (0 =
    ephemeral, read back from LAST_ENDPOINT), in namespace `ns`."""

    def __init__(self, peers: Peers, ns: str, host: str = HOST_V4, port: int = 0, name: str = "writer",
                 nodrop: bool = False):
        args = [host, port] + (["--nodrop"] if nodrop else [])
        self.proc: NsProcess = peers.start(ns, "broker_writer.py", *args, name=name)
        hello = self.proc.read_json(15)
        assert "port" in hello, f"the writer did not bind: {hello}: {self.proc.describe()}"
        self.port: int = hello["port"]

    def request(self, op: str, timeout: float = 15.0, **fields) -> dict:
        self.proc.proc.stdin.write(json.dumps(dict(op=op, **fields)) + "\n")
        self.proc.proc.stdin.flush()
        return self.proc.read_json(timeout)

    def wait_subs(self, n: int, within: float) -> list[bytes]:
        """vLLM's `wait_until_ready` count, bounded: the first `n` subscription messages the XPUB
        received (b"\\x01topic" / b"\\x00topic"); fails naming what did arrive within `within` s."""
        r = self.request("subs", timeout=within + 10, n=n, within=within)
        got = [bytes.fromhex(s) for s in r["subs"]]
        assert "error" not in r, f"the writer got {len(got)} of {n} subscriptions within {within}s: {got}"
        return got

    def drain(self, wait: float) -> list[bytes]:
        """Subscription messages received so far and within `wait` seconds more."""
        r = self.request("drain", timeout=wait + 10, wait=wait)
        return [bytes.fromhex(s) for s in r["subs"]]

    def ready(self) -> None:
        assert self.request("ready") == {"ok": True}

    def send(self, *frames: bytes) -> None:
        assert self.request("send", frames=[f.hex() for f in frames]) == {"ok": True}

    def stream(self, count: int, sizes: list[int], interval: float = 0.0, timeout: float = 60.0) -> "Sent":
        """`count` vLLM-style messages with out-of-band frames of `sizes` bytes, one every
        `interval` seconds (0: as fast as the writer can)."""
        r = self.request("stream", timeout=timeout + count * interval, count=count, sizes=sizes, interval=interval)
        return Sent(r["first_seq"], r["digests"], r["elapsed"], r["longest_send"])

    def stream_bg(self, sizes: list[int], interval: float, max: int = 10 ** 9) -> None:
        assert self.request("stream_bg", sizes=sizes, interval=interval, max=max)["ok"] is True

    def stop_bg(self) -> "Sent":
        r = self.request("stop_bg")
        assert "error" not in r, r
        return Sent(r["first_seq"], r["digests"], r["elapsed"], 0.0)

    def kill(self) -> None:
        """SIGKILL, as an engine crash: no ZMTP goodbye, the kernel closes its sockets."""
        self.proc.proc.kill()
        self.proc.proc.wait(timeout=5)


@dataclass
class Sent:
    """Messages a writer sent: sequence numbers first_seq.., the sha256 of every frame of each."""
    first_seq: int
    digests: list[list[str]]
    elapsed: float
    longest_send: float

    @property
    def seqs(self) -> list[int]:
        return list(range(self.first_seq, self.first_seq + len(self.digests)))


class Reader:
    """peers/broker_reader.py: vLLM's remote reader (libzmq SUB, subscribe "" unless `topics`)
    connected from namespace `ns` to HOST:PORT, reporting each message it receives."""

    def __init__(self, peers: Peers, ns: str, port: int, host: str = HOST_V4, topics: list[bytes] | None = None,
                 name: str = "reader", delay: float = 0.0, rcvhwm: int | None = None):
        args = [host, port]
        for t in topics or []:
            args += ["--topic", t.hex()]
        if delay:
            args += ["--delay", delay]
        if rcvhwm is not None:
            args += ["--rcvhwm", rcvhwm]
        self.name = name
        self.proc: NsProcess = peers.start(ns, "broker_reader.py", *args, name=name)
        self.messages: list[dict] = []
        self.taken = 0
        first = self.proc.read_json(15)
        assert first == {"type": "connected"}, f"{name}: {first}: {self.proc.describe()}"

    def _read(self, timeout: float) -> dict | None:
        """The reader's next JSON line within `timeout` seconds (messages are also recorded), or
        None if none came; fails if the reader ended or could not decode a message."""
        try:
            line = self.proc.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if line is None:
            raise AssertionError(f"{self.name} ended: {self.proc.describe()}")
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"{self.name} printed {line!r}: {self.proc.describe()}")
        if obj.get("type") == "error":
            raise AssertionError(f"{self.name} could not decode message {obj['n']}: {obj['error']}")
        if obj.get("type") == "msg":
            self.messages.append(obj)
        return obj

    def wait_count(self, count: int, timeout: float) -> list[dict]:
        """Waits until `count` messages in all have arrived; fails with what did."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name} received {len(self.messages)} of {count} messages within "
                                     f"{timeout}s; last: {self.messages[-3:]}")
            self._read(left)
        return self.messages[:count]

    def take(self, n: int, timeout: float) -> list[dict]:
        """The next `n` messages not taken yet."""
        self.wait_count(self.taken + n, timeout)
        got = self.messages[self.taken:self.taken + n]
        self.taken += n
        return got

    def expect_ready(self, timeout: float) -> None:
        """vLLM's `assert recv() == b"READY"`, bounded."""
        (m,) = self.take(1, timeout)
        assert m["frames"] == 1 and m["f0"] == b"READY".hex(), f"{self.name} expected READY, got {m}"

    def expect_stream(self, sent: Sent, timeout: float) -> None:
        """The next messages are exactly `sent`: every one, in order, every frame intact."""
        deadline = time.monotonic() + timeout
        for seq, digests in zip(sent.seqs, sent.digests):
            (m,) = self.take(1, max(0.0, deadline - time.monotonic()))
            assert m["seq"] == seq, f"{self.name}: expected seq {seq}, got {m['seq']} (a gap: a message was lost)"
            assert m["sha"] == digests, f"{self.name}: message seq={seq} differs: {m['sha']} vs {digests}"

    def nothing_more(self, wait: float) -> list[dict]:
        """Messages that arrive within `wait` seconds beyond those taken (expected: none)."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            self._read(left)
        return self.messages[self.taken:]

    def request(self, op: str, topic: bytes, timeout: float = 10.0) -> None:
        """Asks the reader to subscribe / unsubscribe `topic` (what its SUB then sends is
        libzmq's business: SUBSCRIBE / CANCEL commands to a ZMTP 3.1 peer)."""
        self.proc.proc.stdin.write(json.dumps({"op": op, "topic": topic.hex()}) + "\n")
        self.proc.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._read(left)
            if line is not None and line.get("type") == "reply":
                assert line.get("ok") is True, line
                return
        raise AssertionError(f"{self.name} did not answer {op} within {timeout}s: {self.proc.describe()}")


# --------------------------------------------------------------------------------------------
# ZMTP by hand (docs/zmtp.md §1-§4)


def greeting(minor: int = 1, major: int = 3, mechanism: bytes = b"NULL", as_server: int = 0) -> bytes:
    """The 64-byte greeting, padding as libzmq sends it."""
    return (b"\xff" + b"\x00" * 7 + b"\x01" + b"\x7f" + bytes([major, minor]) + mechanism.ljust(20, b"\x00")
            + bytes([as_server]) + b"\x00" * 31)


def frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    flags = (0x01 if more else 0) | (0x04 if command else 0)
    if len(body) <= 255:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body


def command(name: bytes, data: bytes = b"") -> bytes:
    return frame(bytes([len(name)]) + name + data, command=True)


def ready(socket_type: bytes = b"SUB") -> bytes:
    prop = b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    return command(b"READY", prop)


def subscribe_cmd(topic: bytes) -> bytes:
    """ZMTP 3.1 SUBSCRIBE command."""
    return command(b"SUBSCRIBE", topic)


def cancel_cmd(topic: bytes) -> bytes:
    return command(b"CANCEL", topic)


def subscribe_msg(topic: bytes) -> bytes:
    """ZMTP 3.0 subscription message `00 <len> 01 topic`."""
    return frame(b"\x01" + topic)


def cancel_msg(topic: bytes) -> bytes:
    return frame(b"\x00" + topic)


class ZmtpPeer:
    """A raw TCP connection from `ns` to HOST:PORT speaking ZMTP by hand: `open()` sends our
    greeting (minor `minor`) and READY (`socket_type`) and reads the broker's; frames are then
    read one at a time."""

    def __init__(self, topo: Topology, ns: str, port: int, host: str = HOST_V4, timeout: float = 3.0,
                 rcvbuf: int | None = None):
        self.sock = new_socket(ns, family_of(host))
        topo.sockets.append(self.sock)
        if rcvbuf is not None:  # before connect, so that the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.peer_greeting = b""
        self.peer_ready = b""

    @classmethod
    def accepted(cls, sock: socket.socket, timeout: float = 3.0) -> "ZmtpPeer":
        """The same over a connection our listener accepted (a hand-made engine facing the broker)."""
        peer = cls.__new__(cls)
        peer.sock, peer.buf, peer.peer_greeting, peer.peer_ready = sock, b"", b"", b""
        sock.settimeout(timeout)
        return peer

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {len(self.buf)} of {n} bytes within {timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError(f"EOF after {len(self.buf)} buffered bytes (wanted {n})")
            self.buf += chunk

    def _take(self, n: int, timeout: float) -> bytes:
        self._fill(n, timeout)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def open(self, minor: int = 1, socket_type: bytes = b"SUB", timeout: float = 3.0) -> "ZmtpPeer":
        self.sendall(greeting(minor) + ready(socket_type))
        self.peer_greeting = self._take(64, timeout)
        assert self.peer_greeting[0] == 0xFF and self.peer_greeting[9] & 1 and self.peer_greeting[10] == 3, \
            self.peer_greeting.hex()
        flags, body = self.read_frame(timeout)
        assert flags & 0x04 and body.startswith(b"\x05READY"), (flags, body)
        self.peer_ready = body
        return self

    def read_frame(self, timeout: float) -> tuple[int, bytes]:
        flags = self._take(1, timeout)[0]
        if flags & 0x02:
            size = struct.unpack(">Q", self._take(8, timeout))[0]
        else:
            size = self._take(1, timeout)[0]
        return flags, self._take(size, timeout)

    def read_message(self, timeout: float) -> list[bytes]:
        """The next data message's frames (commands in between are skipped)."""
        frames = []
        while True:
            flags, body = self.read_frame(timeout)
            if flags & 0x04:
                continue
            frames.append(body)
            if not flags & 0x01:
                return frames

    def quiet_for(self, wait: float) -> bool:
        """True when nothing at all (no byte, no EOF) arrives within `wait` seconds."""
        if self.buf:
            return False
        return not _readable(self.sock, wait)

    def close(self) -> None:
        self.sock.close()


def expect_refused_at_accept(topo: Topology, ns: str, port: int, host: str = HOST_V4, within: float = 3.0) -> None:
    """A connection the broker refuses at accept (admission): reset, either before connect()
    returns or right after, without a single byte (no greeting) first."""
    try:
        conn = ZmtpPeer(topo, ns, port, host=host)
    except ConnectionResetError:
        return
    got = b""
    deadline = time.monotonic() + within
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"still open after {within}s (received {got[:80]!r})"
            if not _readable(conn.sock, left):
                continue
            chunk = conn.sock.recv(65536)
            assert chunk, f"closed with EOF, not reset (received {got[:80]!r})"
            got += chunk
    except ConnectionResetError:
        assert got == b"", f"a refused connection received {got[:80]!r} before the reset"
    finally:
        conn.close()
