#!/usr/bin/env python3
"""The host benchmark's processes inside the network namespaces, driven by bench_host.py over
JSON lines (agentkit). Both modes end when stdin closes; every loop is bounded in count and time.

  server --ports P,P,.. [--cpu N]
      relay/bench_agent.py's server (b"s": bulk sink answering the byte count; b"e": 1-byte echo,
      then close), plus b"r" SIZE(2 bytes): a request/response peer that answers every SIZE-byte
      request with SIZE bytes until EOF (or IO_TIMEOUT of silence).
  client [--cpu N]
      {"op": "bulk", "host", "port", "bytes", "timeout"}      as relay/bench_agent.py's client
      {"op": "rr", "host", "port", "size", "count", "seconds"}
          one TCP connection (TCP_NODELAY), 200 warm-up round trips, then up to `count` round
          trips or `seconds`: answers round_trips, seconds, per_s, p50_us, p99_us
      {"op": "probe", "host", "port", "source"}
          connects from `source`, 1-byte echo: answers "state": "open" | "refused" | "timeout"

--cpu pins the agent (and the threads it starts) to one CPU: on 2 vCPUs an unpinned
request/response loop flips between "both ends on one CPU" and "one CPU each", which differ
by far more than the rules being measured.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relay"))  # relay/bench_agent.py
import bench_agent as relay_agent  # noqa: E402
from agentkit import emit, serve  # noqa: E402  (relay/bench_agent.py put Benchmarks/ on sys.path)

WARM_UP = 200


class HostServer(relay_agent.Server):
    def _handle(self, conn: socket.socket) -> None:
        relay_agent.set_timeouts(conn, relay_agent.ECHO_TIMEOUT)
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except OSError:
            first = b""
        if first != b"r":
            super()._handle(conn)
            return
        threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        relay_agent.set_timeouts(conn, relay_agent.IO_TIMEOUT)
        try:
            (size,) = struct.unpack("!H", relay_agent.recv_exactly(conn, 3)[1:])
            reply = b"a" * size
            while True:
                request = conn.recv(size)
                if not request:
                    break
                if len(request) < size:
                    relay_agent.recv_exactly(conn, size - len(request))
                conn.sendall(reply)
        except OSError:
            pass
        finally:
            conn.close()


def rr(host: str, port: int, size: int, count: int, seconds: float) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    relay_agent.set_timeouts(s, relay_agent.IO_TIMEOUT)
    request = b"q" * size
    latencies = []
    try:
        s.connect((host, port))
        s.sendall(b"r" + struct.pack("!H", size))
        for _ in range(WARM_UP):
            s.sendall(request)
            relay_agent.recv_exactly(s, size)
        clock = time.perf_counter_ns
        started = clock()
        deadline = started + int(seconds * 1e9)
        while len(latencies) < count:
            t0 = clock()
            if t0 > deadline:
                break
            s.sendall(request)
            got = len(s.recv(size))
            if got < size:
                relay_agent.recv_exactly(s, size - got)
            latencies.append(clock() - t0)
        elapsed = (clock() - started) / 1e9
    finally:
        s.close()
    latencies.sort()
    n = len(latencies)
    return {"round_trips": n, "seconds": elapsed, "per_s": n / elapsed,
            "p50_us": latencies[n // 2] / 1e3, "p99_us": latencies[min(n - 1, n * 99 // 100)] / 1e3}


def probe(host: str, port: int, source: str) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.bind((source, 0))
        s.connect((host, port))
        s.sendall(b"e")
        state = "open" if s.recv(1) == b"e" else "closed"
    except ConnectionRefusedError:
        state = "refused"
    except (socket.timeout, TimeoutError):
        state = "timeout"
    finally:
        s.close()
    return {"state": state}


def client_request(op: str | None, cmd: dict) -> dict | None:
    if op == "bulk":
        result = relay_agent.bulk(cmd["host"], cmd["port"], cmd["bytes"], cmd["timeout"])
    elif op == "rr":
        result = rr(cmd["host"], cmd["port"], cmd["size"], cmd["count"], cmd["seconds"])
    elif op == "probe":
        result = probe(cmd["host"], cmd["port"], cmd["source"])
    else:
        return None
    return {"ok": True, **result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("server", "client"))
    ap.add_argument("--ports", default="")
    ap.add_argument("--cpu", type=int)
    args = ap.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.mode == "client":
        emit({"ready": True, "pid": os.getpid()})
        return serve(client_request)
    try:
        server = HostServer([int(p) for p in args.ports.split(",") if p])
    except OSError as exc:
        emit({"ready": False, "error": f"listen: {exc}"})
        return 1
    server.thread.start()
    emit({"ready": True, "pid": os.getpid()})
    for _ in sys.stdin:  # until the orchestrator closes our stdin (or dies)
        pass
    server.stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
