#!/usr/bin/env python3
"""The processes of the broker benchmark (libzmq through pyzmq), inside the network namespaces.

bench_broker.py starts them with `ip netns exec NS PYTHON bench_agent.py MODE ...` and talks to
them with one JSON object per line on stdin/stdout. Every mode exits when its stdin closes, so
nothing outlives an orchestrator that died; every loop is bounded in count and in time.

  publisher --host IP --xpub NAME=PORT[,NAME=PORT..] --ack-port P [--nodrop NAME[,NAME..]]
      The engine side (host namespace): one XPUB per path, each bound on tcp://IP:PORT with
      XPUB_VERBOSE as vLLM binds its remote socket (default SNDHWM 1000, lossy as vLLM's; the
      XPUBs named in --nodrop get XPUB_NODROP, so that a full pipe blocks the send instead of
      dropping), and one PULL on IP:ACK_PORT where the readers report progress. Requests:
        {"op": "run", "xpub": NAME, "run": ID, "count": N, "size": S, "window": W, "readers": R,
         "rate": 0 | msgs_per_s, "warm_timeout": S, "timeout": S,
         ["sizes": [S, ..]], ["warm": false], ["losses_ok": true]}
            Warm-up: a small warm-up message every 2 ms until all R readers have acknowledged
            one (so every subscription is in place), then N data messages, never more than W
            ahead of the slowest reader's acknowledged count (end-to-end flow control, the
            same on every path; W = 0: none, flat out), paced at `rate` if given. `sizes`
            cycles through several message sizes instead of S; `warm: false` skips the warm-up
            (a "ready" request of the same run did it). Waits for every reader's final
            acknowledgement, sending an end marker every 10 ms meanwhile (a reader that lost
            messages stops at it; with `losses_ok` that is an answer, not an error). Answers
            {"ok": true, "send_seconds", "warm_seconds", "short": {reader: received}, ...}.
        {"op": "ready", "xpub": NAME, "run": ID, "readers": R, "timeout": S}
            vLLM's start: waits for R subscription messages (XPUB_VERBOSE) on that XPUB, sends
            one READY (a warm-up message) and waits for every reader to acknowledge it.
            Answers {"ok", "subscriptions", "seconds"}. Send {"op": "drain"} before the readers
            connect, so that the count starts from zero.
        {"op": "drain"}   the subscription messages queued on every XPUB, counted and discarded
        {"op": "trim"}    malloc_trim(0), so RSS says what is live; answers {"rss": bytes}

  reader --id N --ack HOST:PORT
      A remote reader (peer namespace): per run, a fresh SUB subscribed to "" connects to the
      endpoint, receives until N data messages of this run arrived (or the time bound),
      acknowledges every `ack_every`, then closes. Requests:
        {"op": "run", "endpoint": E, "run": ID, "count": N, "ack_every": A, "latency": bool,
         "large": bool, "timeout": S}
      Answers {"ok": bool, "received", "gaps", "first_ns", "mid_ns" (message N/2), "last_ns", "bytes",
      ["lat_ns"]}.
      Timestamps are time.monotonic_ns() (CLOCK_MONOTONIC, one clock for all namespaces).

  idle
      The attacker: {"op": "attach", "endpoint": E, "count": N, "reconnect": bool, ["rcvbuf": B]}
      opens N SUB sockets subscribed to "" that never read (RCVHWM 1, so this process stays
      small; SO_RCVBUF B if given, so that the kernel holds little for them either);
      {"op": "detach"} closes them all.

  zmqproxy --xsub-connect E --xpub-bind E [--nodrop]
      libzmq's own zmq_proxy: an XSUB connected to the publisher, an XPUB bound for the
      subscribers (with XPUB_NODROP if --nodrop), `zmq.proxy(xpub, xsub)` until stdin closes.
      Prints {"ready": true, "pid": P}.

Message format. Frame 0 starts with a 28-byte header: b"RFBB", kind (1 data, 2 warm-up, 3 end), run
id, sequence number, send time (monotonic ns). 64 B messages are that one frame, zero-padded
to 64 bytes. Larger messages are like vLLM's: a small first frame (the header padded to 64
bytes, where vLLM has its pickle) and one body frame of SIZE bytes, a fresh buffer per message
(vLLM pickles new tensors each time), sent with copy=False.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import struct
import sys
import threading
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Benchmarks/, for agentkit.py
from agentkit import emit, serve  # noqa: E402

HEADER = struct.Struct("<4sB3xIQQ")  # magic, kind, run, seq, send time
MAGIC = b"RFBB"
DATA, WARM, END = 1, 2, 3
ACK = struct.Struct("<BxxxIIQ")  # kind (1 warm seen, 2 progress), reader id, run, received
ACK_WARM, ACK_PROGRESS, ACK_ENDED = 1, 2, 3
FRAME0_BYTES = 64
SMALL_LIMIT = 1024  # up to this size a message is one frame


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 65536))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------------------------
# Publisher


class Publisher:
    def __init__(self, host: str, xpubs: dict[str, int], ack_port: int, nodrop: set[str]):
        self.ctx = zmq.Context()
        self.ctx.max_sockets = 8192
        self.xpubs: dict[str, zmq.Socket] = {}
        for name, port in xpubs.items():
            s = self.ctx.socket(zmq.XPUB)
            s.setsockopt(zmq.XPUB_VERBOSE, 1)
            if name in nodrop:
                s.setsockopt(zmq.XPUB_NODROP, 1)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDTIMEO, 5000)
            s.bind(f"tcp://{host}:{port}")
            self.xpubs[name] = s
        self.acks = self.ctx.socket(zmq.PULL)
        self.acks.setsockopt(zmq.LINGER, 0)
        self.acks.bind(f"tcp://{host}:{ack_port}")
        self.templates: dict[int, bytes] = {}
        self.ended: dict = {}
        self.subs_total = 0
        self.ready_readers: dict[int, set] = {}  # run -> readers that acknowledged its READY

    def template(self, size: int) -> bytes:
        if size not in self.templates:
            self.templates[size] = os.urandom(size)
        return self.templates[size]

    def drain(self) -> dict:
        counts = {}
        for name, s in self.xpubs.items():
            n = 0
            while n < 1_000_000:
                try:
                    s.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                n += 1
            counts[name] = n
            self.subs_total += n
        return {"ok": True, "subscriptions": counts}

    def _read_acks(self, run: int, timeout_ms: int, warm: set, progress: dict) -> int:
        """Reads the acknowledgements there are (waiting up to timeout_ms for the first);
        returns how many were read."""
        n = 0
        if timeout_ms > 0 and not self.acks.poll(timeout_ms):
            return 0
        while n < 100_000:
            try:
                raw = self.acks.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            if len(raw) != ACK.size:
                continue
            kind, reader, ack_run, received = ACK.unpack(raw)
            if ack_run != run:
                continue
            if kind == ACK_WARM:
                warm.add(reader)
            elif kind == ACK_PROGRESS:
                if received > progress.get(reader, 0):
                    progress[reader] = received
            elif kind == ACK_ENDED:
                self.ended[reader] = received
        return n

    def ready(self, cmd: dict) -> dict:
        """vLLM's start: R subscription messages (XPUB_VERBOSE), then one READY; bounded."""
        sock = self.xpubs[cmd["xpub"]]
        run, readers, timeout = int(cmd["run"]), int(cmd["readers"]), float(cmd["timeout"])
        started = time.monotonic()
        deadline = started + timeout
        subs = 0
        while subs < readers:
            if time.monotonic() > deadline or not sock.poll(100):
                if time.monotonic() > deadline:
                    return {"ok": False, "error": f"{subs} of {readers} subscriptions within {timeout} s"}
                continue
            if sock.recv()[:1] == b"\x01":
                subs += 1
        sock.send(HEADER.pack(MAGIC, WARM, run, 0, time.monotonic_ns()))
        warm: set = set()
        while len(warm) < readers:
            if time.monotonic() > deadline:
                return {"ok": False, "error": f"READY acknowledged by {len(warm)} of {readers} readers"}
            self._read_acks(run, 10, warm, {})
        self.ready_readers[run] = warm
        return {"ok": True, "subscriptions": subs, "seconds": time.monotonic() - started}

    def run(self, cmd: dict) -> dict:
        sock = self.xpubs[cmd["xpub"]]
        run, count, size = int(cmd["run"]), int(cmd["count"]), int(cmd["size"])
        window, readers, rate = int(cmd["window"]), int(cmd["readers"]), float(cmd.get("rate") or 0)
        timeout = float(cmd["timeout"])
        sizes = [int(x) for x in cmd.get("sizes") or [size]]
        losses_ok = bool(cmd.get("losses_ok"))
        self.drain()
        warm: set = set(self.ready_readers.pop(run, ())) if cmd.get("warm") is False else set()
        progress: dict = {}
        self.ended: dict = {}  # readers that stopped at an end marker short of `count`
        t_start = time.monotonic()
        warm_deadline = t_start + float(cmd["warm_timeout"])
        warm_sent = 0
        while len(warm) < readers:
            if time.monotonic() > warm_deadline:
                return {"ok": False, "error": f"warm-up: {len(warm)} of {readers} readers reached within "
                                              f"{cmd['warm_timeout']} s ({warm_sent} warm-up messages sent)"}
            sock.send(HEADER.pack(MAGIC, WARM, run, warm_sent, time.monotonic_ns()))
            warm_sent += 1
            self._read_acks(run, 2, warm, progress)
        warm_seconds = time.monotonic() - t_start

        pad0 = bytes(FRAME0_BYTES - HEADER.size)
        # Per size: (small: one frame, its padding; else the body's template).
        shapes = [(s <= SMALL_LIMIT, bytes(max(0, s - HEADER.size)) if s <= SMALL_LIMIT else self.template(s))
                  for s in sizes]
        pack, mono = HEADER.pack, time.monotonic_ns
        started = time.monotonic()
        deadline = started + timeout
        limit = window if window > 0 else count  # send while seq < limit = min(progress) + window
        waits = 0
        stall_limit = 10.0  # no reader progress for this long: stalled
        interval = 1.0 / rate if rate > 0 else 0.0
        late = 0
        for seq in range(count):
            if seq >= limit:
                waited_since = time.monotonic()
                while True:
                    self._read_acks(run, 0, warm, progress)
                    low = min(progress.get(r, 0) for r in warm) if len(progress) >= readers else 0
                    limit = low + window
                    if seq < limit:
                        break
                    waits += 1
                    now = time.monotonic()
                    if now > deadline or now - waited_since > stall_limit:
                        return {"ok": False, "error": f"stalled at message {seq} of {count}: readers' progress "
                                                      f"{sorted(progress.values())} (window {window})",
                                "sent": seq}
                    self._read_acks(run, 100, warm, progress)
            if interval:
                target = started + seq * interval
                now = time.monotonic()
                if now < target:
                    time.sleep(target - now)
                elif now - target > 0.001:
                    late += 1
            small, body = shapes[seq % len(shapes)]
            try:
                if small:
                    sock.send(pack(MAGIC, DATA, run, seq, mono()) + body, copy=True)
                else:
                    sock.send_multipart([pack(MAGIC, DATA, run, seq, mono()) + pad0, bytearray(body)],
                                        copy=False)
            except zmq.Again:
                return {"ok": False, "error": f"send timed out at message {seq}", "sent": seq}
            if seq & 1023 == 1023 and time.monotonic() > deadline:
                return {"ok": False, "error": f"time bound: sent {seq + 1} of {count} within {timeout} s",
                        "sent": seq + 1}
        send_seconds = time.monotonic() - started
        # Every reader's final acknowledgement. Meanwhile an end marker every 10 ms: a reader that
        # missed messages (it would wait for the last one) stops at once and reports the gaps.
        ends = 0
        while min((progress.get(r, 0) for r in warm), default=0) < count or len(progress) < readers:
            short = {r: progress.get(r, 0) for r in warm if progress.get(r, 0) < count}
            if short and all(r in self.ended for r in short):
                if losses_ok:
                    break
                return {"ok": False, "error": f"readers stopped short of {count}: "
                                              f"{sorted(self.ended[r] for r in short)} received", "sent": count}
            if time.monotonic() > deadline:
                return {"ok": False, "error": f"readers' final progress {sorted(progress.values())} of {count}",
                        "sent": count}
            if self._read_acks(run, 10, warm, progress) == 0:
                sock.send(HEADER.pack(MAGIC, END, run, count, time.monotonic_ns()))
                ends += 1
        return {"ok": True, "sent": count, "send_seconds": send_seconds, "warm_seconds": warm_seconds,
                "warm_sent": warm_sent, "window_waits": waits, "late_sends": late, "end_markers": ends,
                "total_seconds": time.monotonic() - started,
                "short": {str(r): self.ended[r] for r in warm if r in self.ended}}


def trim(pub: Publisher) -> dict:
    """Lets libzmq finish tearing down the pipes of subscribers that left (an XPUB processes
    those commands only when the application calls into it) and pyzmq's garbage thread free the
    zero-copy buffers, until RSS stops falling (at most 3 s); then malloc_trim(0)."""
    libc = None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL("libc.so.6")
    deadline = time.monotonic() + 3.0
    last, steady = rss_bytes(), 0
    while time.monotonic() < deadline and steady < 3:
        pub.drain()
        if libc is not None:
            libc.malloc_trim(0)
        time.sleep(0.05)
        now = rss_bytes()
        steady = steady + 1 if now is not None and last is not None and now >= last - (256 << 10) else 0
        last = now
    return {"ok": True, "rss": rss_bytes()}


def publisher(args) -> int:
    xpubs = {}
    for item in args.xpub.split(","):
        name, port = item.split("=")
        xpubs[name] = int(port)
    try:
        pub = Publisher(args.host, xpubs, args.ack_port, set(filter(None, (args.nodrop or "").split(","))))
    except zmq.ZMQError as exc:
        emit({"ready": False, "error": f"bind: {exc}"})
        return 1
    emit({"ready": True, "pid": os.getpid(), "zmq": zmq.zmq_version(), "pyzmq": zmq.__version__})
    return serve(lambda op, cmd: pub.run(cmd) if op == "run" else pub.ready(cmd) if op == "ready"
                 else pub.drain() if op == "drain" else trim(pub) if op == "trim" else None)


# --------------------------------------------------------------------------------------------
# Reader


class Reader:
    def __init__(self, ident: int, ack: str):
        self.ident = ident
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.setsockopt(zmq.SNDTIMEO, 2000)
        self.push.connect(f"tcp://{ack}")

    def ack(self, kind: int, run: int, received: int) -> None:
        try:
            self.push.send(ACK.pack(kind, self.ident, run, received))
        except zmq.Again:
            pass  # the publisher is gone or stuck; its own bound reports that

    def run(self, cmd: dict) -> dict:
        run, count, ack_every = int(cmd["run"]), int(cmd["count"]), int(cmd["ack_every"])
        latency, large = bool(cmd.get("latency")), bool(cmd.get("large"))
        timeout = float(cmd["timeout"])
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVTIMEO, 200)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(cmd["endpoint"])
        unpack_from, mono = HEADER.unpack_from, time.monotonic_ns
        received = gaps = dups = stale = warm_seen = 0
        nbytes = 0
        first_ns = last_ns = mid_ns = 0
        half = count // 2
        lat: list[int] = []
        gap_at: list[list[int]] = []  # [first missing seq, how many], the first ten gaps
        expected = 0
        deadline = time.monotonic() + timeout
        error = None
        try:
            while received < count:
                try:
                    frames = sub.recv_multipart(copy=not large)
                except zmq.Again:
                    if time.monotonic() > deadline:
                        error = f"time bound: {received} of {count} messages within {timeout} s"
                        break
                    continue
                now = mono()
                f0 = frames[0] if not large else frames[0].buffer
                magic, kind, msg_run, seq, sent_ns = unpack_from(f0)
                if magic != MAGIC or msg_run != run:
                    stale += 1
                    continue
                if kind == WARM:
                    if not warm_seen:
                        self.ack(ACK_WARM, run, 0)
                    warm_seen += 1
                    continue
                if kind == END:
                    gaps += count - expected
                    if count > expected and len(gap_at) < 10:
                        gap_at.append([expected, count - expected])
                    break
                if seq != expected:
                    if seq > expected:
                        gaps += seq - expected
                        if len(gap_at) < 10:
                            gap_at.append([expected, seq - expected])
                    else:
                        dups += 1
                        continue
                expected = seq + 1
                if not received:
                    first_ns = now
                last_ns = now
                if seq == half:
                    mid_ns = now
                received += 1
                nbytes += len(frames[-1]) if len(frames) > 1 else len(frames[0])
                if latency:
                    lat.append(now - sent_ns)
                if received % ack_every == 0 or received == count:
                    self.ack(ACK_PROGRESS, run, received)
                if seq == count - 1:
                    break
                if received & 1023 == 0 and time.monotonic() > deadline:
                    error = f"time bound: {received} of {count} messages within {timeout} s"
                    break
        finally:
            sub.close(linger=0)
        if received < count:
            self.ack(ACK_ENDED, run, received)  # the publisher stops waiting for this reader
        if error is None and (received != count or gaps):
            error = f"received {received} of {count} messages, {gaps} missing (first gaps [seq, n]: {gap_at[:3]})"
        answer = {"ok": error is None, "received": received, "gaps": gaps, "dups": dups, "stale": stale,
                  "warm_seen": warm_seen, "gap_at": gap_at, "first_ns": first_ns, "mid_ns": mid_ns, "last_ns": last_ns, "bytes": nbytes}
        if error:
            answer["error"] = error
        if latency:
            answer["lat_ns"] = lat
        return answer


def reader(args) -> int:
    r = Reader(args.id, args.ack)
    emit({"ready": True, "pid": os.getpid()})
    return serve(lambda op, cmd: r.run(cmd) if op == "run" else None)


# --------------------------------------------------------------------------------------------
# Idle subscribers (the attack)


def idle(_args) -> int:
    raise_fd_limit()
    ctx = zmq.Context()
    ctx.max_sockets = 8192
    socks: list[zmq.Socket] = []

    def handle(op: str, cmd: dict):
        if op == "attach":
            for _ in range(int(cmd["count"])):
                s = ctx.socket(zmq.SUB)
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.RCVHWM, 1)
                if cmd.get("rcvbuf"):
                    s.setsockopt(zmq.RCVBUF, int(cmd["rcvbuf"]))
                if not cmd.get("reconnect", True):
                    s.setsockopt(zmq.RECONNECT_IVL, -1)
                s.setsockopt(zmq.SUBSCRIBE, b"")
                s.connect(cmd["endpoint"])
                socks.append(s)
            return {"ok": True, "sockets": len(socks), "rss": rss_bytes()}
        if op == "detach":
            n = len(socks)
            for s in socks:
                s.close(linger=0)
            socks.clear()
            return {"ok": True, "closed": n, "rss": rss_bytes()}
        return None

    emit({"ready": True, "pid": os.getpid()})
    return serve(handle)


# --------------------------------------------------------------------------------------------
# zmq_proxy


def zmqproxy(args) -> int:
    raise_fd_limit()
    ctx = zmq.Context()
    ctx.max_sockets = 8192
    xsub = ctx.socket(zmq.XSUB)
    xsub.setsockopt(zmq.LINGER, 0)
    xpub = ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    if args.nodrop:
        # A full subscriber pipe makes the proxy's send block instead of dropping; see the
        # README beside this file for how that reaches the publisher.
        xpub.setsockopt(zmq.XPUB_NODROP, 1)
    try:
        xpub.bind(args.xpub_bind)
        xsub.connect(args.xsub_connect)
    except zmq.ZMQError as exc:
        emit({"ready": False, "error": f"{exc}"})
        return 1

    def watch_stdin():
        for _ in sys.stdin:
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    emit({"ready": True, "pid": os.getpid()})
    try:
        zmq.proxy(xpub, xsub)
    except zmq.ContextTerminated:
        pass
    return 0


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("publisher")
    p.add_argument("--host", required=True)
    p.add_argument("--xpub", required=True)
    p.add_argument("--ack-port", type=int, required=True)
    p.add_argument("--nodrop", help="comma-separated XPUB names that get XPUB_NODROP")
    r = sub.add_parser("reader")
    r.add_argument("--id", type=int, required=True)
    r.add_argument("--ack", required=True)
    sub.add_parser("idle")
    z = sub.add_parser("zmqproxy")
    z.add_argument("--xsub-connect", required=True)
    z.add_argument("--xpub-bind", required=True)
    z.add_argument("--nodrop", action="store_true", help="XPUB_NODROP on the XPUB")
    args = ap.parse_args()
    return {"publisher": publisher, "reader": reader, "idle": idle, "zmqproxy": zmqproxy}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
