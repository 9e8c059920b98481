"""Helpers for the soak (test_soak.py; docs/reliability.md, "Soak"): proxyd's descriptors, RSS
and threads sampled from /proc, readers checked as they read (no message kept in memory), a
TCPStore client driven in rounds on a thread of its own, and hostile connections that must be
closed by proxyd within a deadline."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from brokerkit import Reader, ZmtpPeer
from relaykit import NsProcess, Repeating, _readable, msg_validate, u8, u64, wire_str, SET

KiB = 1 << 10


# --------------------------------------------------------------------------------------------
# proxyd's resources


@dataclass
class Sample:
    at: float  # seconds since the sampler started
    fds: int
    rss_kib: int
    threads: int


def sample_process(pid: int, at: float) -> Sample:
    """Open descriptors (/proc/PID/fd), VmRSS and Threads (/proc/PID/status) of `pid`."""
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return Sample(at, len(os.listdir(f"/proc/{pid}/fd")), fields["VmRSS"], fields["Threads"])


class Sampler(Repeating):
    """Samples `pid` every `every` seconds on a thread of its own until `stop`."""

    def __init__(self, pid: int, every: float = 1.0):
        super().__init__(every, name="sampler")
        self.pid = pid
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.start()

    def step(self) -> bool:
        try:
            self.samples.append(sample_process(self.pid, time.monotonic() - self.started))
        except (OSError, KeyError):
            return False  # proxyd is gone: the test says so
        return True

    def stop(self) -> list[Sample]:
        self.halt(timeout=5)
        return self.samples


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return 60.0 * sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def describe(samples: list[Sample], name: str) -> str:
    values = [getattr(s, name) for s in samples]
    return f"{name}: first {values[0]}, last {values[-1]}, min {min(values)}, max {max(values)}"


# --------------------------------------------------------------------------------------------
# Readers that read: every sequence number once and in order, checked as the lines arrive


def chain(digests: list[list[str]]) -> str:
    """One sha256 over the frames' digests of a run of messages, in order."""
    h = hashlib.sha256()
    for d in digests:
        h.update("".join(d).encode())
    return h.hexdigest()


class ReaderCheck:
    """Consumes a Reader's output on a thread of its own once its READY was taken: counts the
    messages, notes every sequence number that is not the next one expected (from `first_seq`),
    and keeps `chain` of their digests; nothing else is kept (a long soak would fill memory)."""

    def __init__(self, reader: Reader, first_seq: int):
        self.reader = reader
        self.next_seq = first_seq
        self.count = 0
        self.anomalies: list[str] = []
        self.ended: str | None = None
        self.hash = hashlib.sha256()
        reader.proc.output = collections.deque(maxlen=20)  # the pump keeps every line otherwise
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"check-{reader.name}")
        self.thread.start()

    def _run(self) -> None:
        while True:
            line = self.reader.proc.lines.get()
            if line is None:
                self.ended = f"{self.reader.name} ended: {self.reader.proc.describe()}"
                return
            m = json.loads(line)
            if m.get("type") != "msg":
                self.anomalies.append(f"unexpected line {line[:200]}")
                continue
            if m["seq"] != self.next_seq and len(self.anomalies) < 20:
                self.anomalies.append(f"seq {m['seq']} where {self.next_seq} was expected")
            self.next_seq = (m["seq"] if m["seq"] is not None else self.next_seq) + 1
            self.hash.update("".join(m["sha"]).encode())
            self.count += 1

    def wait_until(self, last_seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.next_seq <= last_seq and time.monotonic() < deadline and self.ended is None:
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# A TCPStore client in rounds


class StoreRounds(Repeating):
    """Drives a long-lived torch client (Peers.client_loop) through rounds, `pause` seconds
    apart, on a thread of its own; keeps how many rounds ran and the failed ones."""

    def __init__(self, client: NsProcess, pause: float):
        super().__init__(pause, name=f"rounds-{client.name}")
        self.client = client
        self.rounds = 0
        self.failures: list[dict] = []
        self.start()

    def step(self) -> None:
        try:
            result = self.client.request("round", timeout=30)
        except AssertionError as exc:
            result = {"ok": False, "error": str(exc)[:300]}
        self.rounds += 1
        if result.get("ok") is not True:
            self.failures.append(result)

    def stop(self) -> None:
        self.halt(timeout=40)


# --------------------------------------------------------------------------------------------
# Hostile connections: sent their bytes, then watched until proxyd closes them


def garbage_to_broker(topo, ns: str, port: int, host: str) -> socket.socket:
    """Not a ZMTP greeting: an HTTP request."""
    s = topo.connect(ns, host, port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: engine\r\n\r\n")
    return s


def bad_greeting_to_broker(topo, ns: str, port: int, host: str) -> socket.socket:
    """A greeting's signature, then ZMTP major version 9 with an unknown mechanism."""
    s = topo.connect(ns, host, port)
    s.sendall(b"\xff" + b"\x00" * 7 + b"\x01\x7f\x09\x00" + b"NOPE".ljust(20, b"\x00") + b"\x00" * 32)
    return s


def oversized_frame_to_broker(topo, ns: str, port: int, host: str) -> socket.socket:
    """A valid handshake, then a frame declaring 2^63 - 1 bytes and nothing more."""
    p = ZmtpPeer(topo, ns, port, host=host).open()
    p.sendall(bytes([0x02]) + struct.pack(">Q", (1 << 63) - 1))
    return p.sock


def garbage_to_relay(topo, ns: str, port: int, host: str) -> socket.socket:
    """Bytes that are not VALIDATE."""
    s = topo.connect(ns, host, port)
    s.sendall(bytes.fromhex("00efbeadde") + os.urandom(27))
    return s


def oversized_to_relay(topo, ns: str, port: int, host: str) -> socket.socket:
    """VALIDATE, then a SET declaring a 2^62-byte value (only the length is sent)."""
    s = topo.connect(ns, host, port)
    s.sendall(msg_validate() + u8(SET) + wire_str(b"/soak-big") + u64(1 << 62))
    return s


def silent(topo, ns: str, port: int, host: str) -> socket.socket:
    """A connection that sends nothing (closed by the guard's handshake_timeout)."""
    return topo.connect(ns, host, port)


@dataclass
class Pending:
    kind: str
    sock: socket.socket
    opened: float
    deadline: float


@dataclass
class Watch:
    """Connections proxyd must close, each before its deadline: `poll` moves the closed ones to
    `closed[kind]` (with the longest time it took) and the overdue ones to `overdue`."""
    pending: list[Pending] = field(default_factory=list)
    closed: dict[str, int] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)
    overdue: list[str] = field(default_factory=list)

    def add(self, kind: str, sock: socket.socket, within: float) -> None:
        now = time.monotonic()
        self.pending.append(Pending(kind, sock, now, now + within))

    def poll(self) -> None:
        now = time.monotonic()
        still = []
        for p in self.pending:
            if closed_by_peer(p.sock):
                self.closed[p.kind] = self.closed.get(p.kind, 0) + 1
                self.slowest[p.kind] = max(self.slowest.get(p.kind, 0.0), round(now - p.opened, 2))
                p.sock.close()
            elif now > p.deadline:
                self.overdue.append(f"{p.kind} still open after {now - p.opened:.1f} s")
                p.sock.close()
            else:
                still.append(p)
        self.pending = still

    def close_all(self) -> None:
        for p in self.pending:
            p.sock.close()
        self.pending = []


def closed_by_peer(s: socket.socket) -> bool:
    """True once the peer closed `s` (EOF or reset); whatever it sent first is discarded."""
    while _readable(s, 0):
        try:
            data = s.recv(1 << 20, socket.MSG_DONTWAIT)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return True
        except BlockingIOError:
            return False
        if not data:
            return True
    return False
