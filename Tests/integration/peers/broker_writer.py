"""The engine side of vLLM's MessageQueue for the broker tests: a libzmq XPUB with XPUB_VERBOSE,
bound the way vLLM 0.33 binds its remote socket (`tcp://HOST:0`, the port read back from
LAST_ENDPOINT), driven over standard input/output with one JSON object per line.

Usage: broker_writer.py HOST [PORT] [--nodrop]   (PORT 0 or absent: an ephemeral port;
--nodrop: XPUB_NODROP, so that a send waits at the high-water mark instead of dropping)

Prints {"port": P} once bound (or {"error": ...} and exits 1), then answers each request line
with one JSON line. Requests ("op"):

  subs     {"n": N, "within": S}   wait until N subscription messages have arrived (what vLLM's
           `wait_until_ready` does with N blocking recv() calls, here bounded); answers
           {"subs": [hex, ...]} with the first N, or {"error": "timeout", "subs": [...]}.
  drain    {"wait": S}             collect subscription messages for S seconds; answers all
           received and not yet handed out, {"subs": [hex, ...]}.
  ready    {}                      send(b"READY"), as vLLM does after counting its readers.
  send     {"frames": [hex, ...]}  send_multipart of these frames.
  stream   {"count": N, "sizes": [bytes, ...], "interval": S (default 0)}
           sends N vLLM-style messages (see below), at least S seconds apart, or at once; answers
           {"first_seq", "sent", "elapsed", "longest_send" (the slowest send_multipart call, in
           seconds), "digests"}: digests[i] is the sha256 of every frame of message i.
  stream_bg {"sizes": [...], "interval": S, "max": N, "cycle": [[...], ...] (optional)}
           starts sending such messages, at least S seconds apart (at most N), between requests;
           with "cycle", message i has the frame sizes cycle[i % len(cycle)] instead of "sizes".
  stop_bg  {}                      stops it; answers like `stream`.

A vLLM-style message is what `MessageQueue.enqueue` sends to remote readers (vLLM >= 0.11):
frame 0 is `pickle.dumps(obj, protocol=5, buffer_callback=...)` of {"seq": n, "bufs": [...]},
and each buffer of `sizes` (random bytes, out-of-band `PickleBuffer`s) is a frame of its own.
`seq` counts up across all streams of the process.

Subscription messages that arrive at any time are kept, in order, until `subs` or `drain`
hands them out. The process ends when its standard input closes.
"""

import hashlib
import json
import os
import pickle
import sys
import time

import zmq


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Writer:
    def __init__(self, host: str, port: int, nodrop: bool = False):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        if nodrop:
            self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(f"tcp://{host}:{port}")
        endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.port = int(endpoint.rsplit(":", 1)[1])
        self.subs: list[bytes] = []
        self.seq = 0
        self.bg: dict | None = None

    # -- sending ------------------------------------------------------------------------------

    def message(self, sizes: list[int]) -> list:
        oob: list[pickle.PickleBuffer] = []
        bufs = [pickle.PickleBuffer(bytearray(os.urandom(n))) for n in sizes]
        frame0 = pickle.dumps({"seq": self.seq, "bufs": bufs}, protocol=5, buffer_callback=oob.append)
        self.seq += 1
        return [frame0] + [b.raw() for b in oob]

    def send_one(self, sizes: list[int]) -> list[str]:
        frames = self.message(sizes)
        self.sock.send_multipart(frames, copy=False)
        return [hashlib.sha256(f).hexdigest() for f in frames]

    def stream(self, count: int, sizes: list[int], interval: float = 0.0) -> dict:
        """Sends `count` messages, each at least `interval` seconds after the previous one (a
        writer that fell behind does not catch up in a burst)."""
        first = self.seq
        digests = []
        longest = 0.0
        started = time.monotonic()
        next_at = started
        for _ in range(count):
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at = time.monotonic() + interval
            frames = self.message(sizes)
            before = time.monotonic()
            self.sock.send_multipart(frames, copy=False)
            longest = max(longest, time.monotonic() - before)
            digests.append([hashlib.sha256(f).hexdigest() for f in frames])
        return {"first_seq": first, "sent": count, "elapsed": round(time.monotonic() - started, 3),
                "longest_send": round(longest, 4), "digests": digests}

    # -- receiving ----------------------------------------------------------------------------

    def pump(self, timeout: float) -> None:
        """Waits up to `timeout` for subscription messages (keeping them) while sending the
        background stream's messages when they are due."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            wait = deadline - now
            if self.bg is not None:
                if now >= self.bg["next_at"]:
                    self.bg_send()
                    continue
                wait = min(wait, self.bg["next_at"] - now)
            if self.sock.poll(max(0, int(wait * 1000)), zmq.POLLIN):
                while True:
                    try:
                        self.subs.append(self.sock.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if time.monotonic() >= deadline:
                return

    def bg_send(self) -> None:
        bg = self.bg
        cycle = bg["cycle"]
        bg["digests"].append(self.send_one(cycle[len(bg["digests"]) % len(cycle)] if cycle else bg["sizes"]))
        bg["next_at"] = time.monotonic() + bg["interval"]  # no catch-up bursts
        if len(bg["digests"]) >= bg["max"]:
            bg["next_at"] = float("inf")

    # -- requests -----------------------------------------------------------------------------

    def handle(self, req: dict) -> dict:
        op = req.get("op")
        if op == "subs":
            deadline = time.monotonic() + float(req["within"])
            n = int(req["n"])
            while len(self.subs) < n and time.monotonic() < deadline:
                self.pump(min(0.05, max(0, deadline - time.monotonic())))
            got, self.subs = self.subs[:n], self.subs[n:]
            result = {"subs": [s.hex() for s in got]}
            if len(got) < n:
                result["error"] = "timeout"
            return result
        if op == "drain":
            self.pump(float(req.get("wait", 0)))
            got, self.subs = self.subs, []
            return {"subs": [s.hex() for s in got]}
        if op == "ready":
            self.sock.send(b"READY")
            return {"ok": True}
        if op == "send":
            self.sock.send_multipart([bytes.fromhex(f) for f in req["frames"]])
            return {"ok": True}
        if op == "stream":
            return self.stream(int(req["count"]), [int(s) for s in req["sizes"]], float(req.get("interval", 0)))
        if op == "stream_bg":
            self.bg = {"sizes": [int(s) for s in req["sizes"]], "interval": float(req["interval"]),
                       "max": int(req.get("max", 10 ** 9)),
                       "cycle": [[int(s) for s in sizes] for sizes in req.get("cycle", [])], "first_seq": self.seq, "digests": [],
                       "next_at": time.monotonic(), "started": time.monotonic()}
            return {"ok": True, "first_seq": self.seq}
        if op == "stop_bg":
            bg, self.bg = self.bg, None
            if bg is None:
                return {"error": "no background stream"}
            return {"first_seq": bg["first_seq"], "sent": len(bg["digests"]),
                    "elapsed": round(time.monotonic() - bg["started"], 3), "digests": bg["digests"]}
        return {"error": f"unknown op {op!r}"}

    def run(self) -> None:
        stdin = sys.stdin.fileno()
        buf = b""
        while True:
            # Wait for a request, keeping subscriptions and the background stream going.
            poller = zmq.Poller()
            poller.register(stdin, zmq.POLLIN)
            timeout = 200
            if self.bg is not None:
                timeout = max(0, min(timeout, int((self.bg["next_at"] - time.monotonic()) * 1000)))
            if poller.poll(timeout):
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        emit(self.handle(json.loads(line)))
            self.pump(0)


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--nodrop"]
    host = args[0]
    port = int(args[1]) if len(args) > 1 else 0
    try:
        writer = Writer(host, port, nodrop="--nodrop" in sys.argv[1:])
    except zmq.ZMQError as exc:
        emit({"error": f"bind tcp://{host}:{port}: {exc}"})
        return 1
    emit({"port": writer.port})
    try:
        writer.run()
    finally:
        writer.sock.close(0)
        writer.ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
