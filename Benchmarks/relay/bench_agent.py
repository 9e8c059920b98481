#!/usr/bin/env python3
"""The processes of the relay benchmark that sit inside the network namespaces.

bench_relay.py starts them with `ip netns exec NS PYTHON bench_agent.py MODE ...` and talks to
them with one JSON object per line on stdin/stdout. Both modes exit when stdin closes, so nothing
outlives an orchestrator that died.

  server --tcp-ports P,P,.. [--store-ports P,P,..]
      The upstream side (host namespace). One thread accepts on every TCP port, on all IPv4
      addresses; the first byte a client sends picks the service:
        b"e"  connection rate: answer b"e" and close at once (the server closes first, so the
              TIME_WAIT sockets stay on the server side, keyed by the client's varying port);
        b"s"  bulk sink: read and discard until EOF, then answer the byte count (8 bytes, network
              order, the "s" included) and close. The client's clock therefore stops only once
              every byte has reached the server.
      --store-ports starts one real `torch.distributed.TCPStore` master per port (libuv backend,
      torch's default; is_master=True, wait_for_workers=False). Prints {"ready": true, ...}.

  client
      Reads commands, runs them one at a time, prints one JSON result each:
        {"op": "bulk", "host": H, "port": P, "bytes": N, "timeout": S}
        {"op": "connrate", "host": H, "port": P, "count": N, "seconds": S}
        {"op": "store", "host": H, "port": P, "ops": N, "seconds": S}
        {"op": "burst", "host": H, "port": P, "count": N, "seconds": S}   (TCPStore; burst.py)
        {"op": "torch"}   (imports torch ahead of time; the import is never timed)
      Results are {"ok": true, ...} or {"ok": false, "error": "..."}.

Every socket has kernel send/receive timeouts (SO_SNDTIMEO/SO_RCVTIMEO: no extra poll(2) per
call, so the direct path's ceiling is not lowered) and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Benchmarks/, for agentkit.py
from agentkit import emit, serve  # noqa: E402
from burst import burst  # noqa: E402

CHUNK = 1 << 20  # 1 MiB: the sender's sendall() and the receiver's recv_into() size
IO_TIMEOUT = 30.0  # seconds a single blocking send/recv may stall before the run fails
ECHO_TIMEOUT = 5.0


def set_timeouts(s: socket.socket, seconds: float) -> None:
    """Kernel-level timeouts: a blocking call fails with EAGAIN after `seconds` (connect
    included, which honours SO_SNDTIMEO)."""
    tv = struct.pack("ll", int(seconds), int((seconds % 1) * 1e6))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


def recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


# --------------------------------------------------------------------------------------------
# Server


class Server:
    def __init__(self, ports: list[int]):
        self.listeners = []
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(4096)
            self.listeners.append(s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, name="accept", daemon=True)

    def _accept_loop(self) -> None:
        sel = selectors.DefaultSelector()
        for listener in self.listeners:
            sel.register(listener, selectors.EVENT_READ)
        while not self.stop.is_set():
            for key, _ in sel.select(0.5):
                try:
                    conn, _ = key.fileobj.accept()
                except OSError:
                    continue
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        # Served inline: the connection-rate client is sequential, and an answer this small
        # costs less than starting a thread. A silent client stalls this loop for at most
        # ECHO_TIMEOUT.
        set_timeouts(conn, ECHO_TIMEOUT)
        try:
            first = conn.recv(1)
        except OSError:
            conn.close()
            return
        if first == b"s":
            threading.Thread(target=self._sink, args=(conn,), daemon=True).start()
            return
        if first == b"e":
            try:
                conn.sendall(b"e")
            except OSError:
                pass
        conn.close()

    def _sink(self, conn: socket.socket) -> None:
        set_timeouts(conn, IO_TIMEOUT)
        view = memoryview(bytearray(CHUNK))
        total = 1
        try:
            while True:
                n = conn.recv_into(view)
                if n == 0:
                    break
                total += n
            conn.sendall(struct.pack("!Q", total))
        except OSError:
            pass
        finally:
            conn.close()


def server(args) -> int:
    tcp_ports = [int(p) for p in args.tcp_ports.split(",") if p]
    store_ports = [int(p) for p in (args.store_ports or "").split(",") if p]
    try:
        server = Server(tcp_ports)
    except OSError as exc:
        emit({"ready": False, "error": f"listen: {exc}"})
        return 1
    server.thread.start()
    stores = []
    store_error = None
    if store_ports:
        try:
            from datetime import timedelta

            import torch.distributed as dist

            for port in store_ports:
                stores.append(dist.TCPStore("0.0.0.0", port, 1, is_master=True, wait_for_workers=False,
                                            timeout=timedelta(seconds=30)))
        except Exception as exc:  # reported; the orchestrator marks the TCPStore rows n/a
            store_error = f"{type(exc).__name__}: {exc}"[:500]
    emit({"ready": True, "tcp_ports": tcp_ports, "store_ports": store_ports if not store_error else [],
          "store_error": store_error})
    for _ in sys.stdin:  # until the orchestrator closes our stdin (or dies)
        pass
    server.stop.set()
    server.thread.join(timeout=2)
    del stores
    return 0


# --------------------------------------------------------------------------------------------
# Client


def bulk(host: str, port: int, nbytes: int, timeout: float) -> dict:
    """Sends b"s" + `nbytes` bytes in 1 MiB sendall() calls, half-closes, waits for the server's
    count. The time runs from connect() to the count's arrival."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    set_timeouts(s, IO_TIMEOUT)
    view = memoryview(bytearray(CHUNK))
    try:
        started = time.perf_counter()
        deadline = started + timeout
        s.connect((host, port))
        s.sendall(b"s")
        left = nbytes
        chunks = 0
        while left > 0:
            n = min(left, CHUNK)
            s.sendall(view[:n] if n < CHUNK else view)
            left -= n
            chunks += 1
            if chunks % 64 == 0 and time.perf_counter() > deadline:
                raise TimeoutError(f"sent {nbytes - left} of {nbytes} bytes within {timeout}s")
        s.shutdown(socket.SHUT_WR)
        (received,) = struct.unpack("!Q", recv_exactly(s, 8))
        elapsed = time.perf_counter() - started
    finally:
        s.close()
    if received != nbytes + 1:
        raise ConnectionError(f"server received {received - 1} of {nbytes} bytes")
    return {"bytes": nbytes, "seconds": elapsed, "mb_per_s": nbytes / elapsed / 1e6}


def connrate(host: str, port: int, count: int, seconds: float) -> dict:
    """Sequential connections: connect, send b"e", read b"e", read EOF (the server closes
    first), close. Stops after `count` connections or `seconds`, or after 50 failures."""
    address = (host, port)
    latencies = []
    errors = 0
    first_error = None
    started = time.perf_counter()
    deadline = started + seconds
    attempts = 0
    while attempts < count:
        t0 = time.perf_counter()
        if t0 > deadline:
            break
        attempts += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        set_timeouts(s, ECHO_TIMEOUT)
        try:
            s.connect(address)
            s.sendall(b"e")
            if s.recv(1) != b"e":
                raise ConnectionError("no echo")
            if s.recv(1) != b"":
                raise ConnectionError("no EOF after the echo")
            latencies.append(time.perf_counter() - t0)
        except OSError as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            if errors >= 50:
                break
        finally:
            s.close()
    elapsed = time.perf_counter() - started
    if not latencies:
        raise ConnectionError(f"no connection succeeded ({errors} errors, first: {first_error})")
    latencies.sort()
    return {"connections": len(latencies), "errors": errors, "first_error": first_error, "seconds": elapsed,
            "per_s": len(latencies) / elapsed,
            "p50_us": latencies[len(latencies) // 2] * 1e6,
            "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6}


_dist = None


def torch_dist():
    global _dist
    if _dist is None:
        import torch.distributed as dist

        _dist = dist
    return _dist


def store(host: str, port: int, ops: int, seconds: float) -> dict:
    """A real TCPStore client: after 200 warm-up operations, alternates set(key, 32 B) and
    get(key) over 1024 keys until `ops` operations or `seconds`. Connecting is not timed."""
    from datetime import timedelta

    dist = torch_dist()
    t0 = time.perf_counter()
    st = dist.TCPStore(host, port, is_master=False, wait_for_workers=False, timeout=timedelta(seconds=10))
    connect_s = time.perf_counter() - t0
    value = b"v" * 32
    tag = f"bench{os.getpid()}_{port}_{int(time.time() * 1000) % 100000}"
    try:
        for i in range(100):
            st.set(f"{tag}/warm{i}", value)
            st.get(f"{tag}/warm{i}")
        keys = [f"{tag}/k{i}" for i in range(1024)]
        done = 0
        started = time.perf_counter()
        deadline = started + seconds
        while done < ops:
            key = keys[(done >> 1) & 1023]
            if done & 1:
                if st.get(key) != value:
                    raise RuntimeError(f"get({key}) returned the wrong value")
            else:
                st.set(key, value)
            done += 1
            if (done & 127) == 0 and time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - started
    finally:
        del st
    return {"ops": done, "seconds": elapsed, "per_s": done / elapsed, "connect_s": connect_s}


def client_request(op: str | None, cmd: dict) -> dict | None:
    """One client request (see above); None for an unknown op."""
    if op == "bulk":
        result = bulk(cmd["host"], cmd["port"], cmd["bytes"], cmd["timeout"])
    elif op == "connrate":
        result = connrate(cmd["host"], cmd["port"], cmd["count"], cmd["seconds"])
    elif op == "store":
        result = store(cmd["host"], cmd["port"], cmd["ops"], cmd["seconds"])
    elif op == "burst":
        result = burst(cmd["host"], cmd["port"], cmd["count"], cmd["seconds"])
    elif op == "torch":
        import torch

        torch_dist()
        result = {"torch": torch.__version__}
    else:
        return None
    return {"ok": True, **result}


def client(_args) -> int:
    emit({"ready": True, "pid": os.getpid()})
    return serve(client_request)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    sp = sub.add_parser("server")
    sp.add_argument("--tcp-ports", required=True)
    sp.add_argument("--store-ports", default="")
    sub.add_parser("client")
    args = ap.parse_args()
    return server(args) if args.mode == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
