"""The benchmark's engine, in the host namespace: binds XPUBs (XPUB_VERBOSE) on HOST:0 one at a
time, as vLLM 0.33 does, and tells the prober each port and the moment just before its bind.

Usage: discovery_engine.py HOST FIFO
Requests on standard input, one per line: "bind" (answers {"port", "t0_ns"} and writes
"PORT T0_NS" to FIFO, which the prober reads without a hop through the orchestrator), "close"
(closes the last XPUB; answers {"ok": true}), "probe N" (N ZMTP probes of a fresh XPUB as
proxyd's probe does them, from this process: the probe's own cost; answers {"probe_us": [...]}).
Its command line contains "discovery_engine" so that the discover guard's `process` takes it.
"""

import json
import os
import socket
import sys
import time

import zmq


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def probe_once(host: str, port: int) -> float:
    """Connect, read the signature, send a greeting, read the rest and READY, close: seconds."""
    began = time.perf_counter()
    s = socket.create_connection((host, port), timeout=1)
    got = b""
    while len(got) < 10:
        got += s.recv(512)
    s.sendall(GREETING)
    while len(got) < 64 + 2 or len(got) < 64 + 2 + got[65]:
        chunk = s.recv(512)
        if not chunk:
            break
        got += chunk
    s.close()
    return time.perf_counter() - began


def main() -> int:
    host, fifo_path = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    fifo = open(fifo_path, "w")
    current = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "bind":
            sock = ctx.socket(zmq.XPUB)
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            sock.setsockopt(zmq.LINGER, 0)
            t0 = time.monotonic_ns()
            sock.bind(f"tcp://{host}:0")
            port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
            fifo.write(f"{port} {t0}\n")
            fifo.flush()
            current = sock
            emit({"port": port, "t0_ns": t0})
        elif words[0] == "close":
            if current is not None:
                current.close(0)
                current = None
            emit({"ok": True})
        elif words[0] == "probe":
            sock = ctx.socket(zmq.XPUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind("tcp://127.0.0.1:0")
            port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
            times = [probe_once("127.0.0.1", port) for _ in range(int(words[1]))]
            sock.close(0)
            emit({"probe_us": [round(t * 1e6, 1) for t in times]})
    fifo.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
