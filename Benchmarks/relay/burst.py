"""The "4,096 clients at once" run of the relay benchmark (bench_agent.py's `burst` op): what a
rendezvous does to the TCPStore port.

Every client opens its connection at the same moment (non-blocking connects, all issued before
any is served), sends TCPStore's VALIDATE and a PING, and is served once the store answers the
PING with its nonce; all stay open until the last is served, then all close. Raw sockets rather
than torch clients: the clients themselves must cost next to nothing, or they, not the path,
are measured.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import struct
import time

VALIDATE, PING, MAGIC = 0, 13, 0x3C85F7CE


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def burst(host: str, port: int, count: int, seconds: float) -> dict:
    """`count` clients at once against a TCPStore at host:port; fails (raises) unless every one
    is served within `seconds`. Returns the time until all were connected and until all were
    served, and the slowest client's time."""
    raise_fd_limit()
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    pending: dict[int, bytes] = {}  # fd -> bytes of the PING answer still expected
    connected = 0
    served = 0
    first_error = None
    errors = 0
    started = time.perf_counter()
    last_connected = last_served = started
    try:
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                raise ConnectionError(f"connect #{i}: {errno.errorcode.get(rc, rc)}")
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, i)
        deadline = started + seconds
        while served + errors < count:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{served} of {count} served, {connected} connected, {errors} failed "
                                   f"after {seconds:g} s (first error: {first_error})")
            for key, events in sel.select(min(left, 1.0)):
                s, i = key.fileobj, key.data
                if events & selectors.EVENT_WRITE and s.fileno() not in pending:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        errors += 1
                        first_error = first_error or errno.errorcode.get(err, str(err))
                        sel.unregister(s)
                        continue
                    connected += 1
                    last_connected = time.perf_counter()
                    nonce = struct.pack("<I", i)
                    s.send(struct.pack("<BI", VALIDATE, MAGIC) + struct.pack("<B", PING) + nonce)
                    pending[s.fileno()] = nonce
                    sel.modify(s, selectors.EVENT_READ, i)
                elif events & selectors.EVENT_READ:
                    try:
                        data = s.recv(4)
                    except OSError as exc:
                        data, first_error = b"", first_error or str(exc)
                    want = pending[s.fileno()]
                    if not data or not want.startswith(data):
                        errors += 1
                        first_error = first_error or f"PING answer {data!r}, wanted {want!r}"
                        sel.unregister(s)
                        continue
                    pending[s.fileno()] = want[len(data):]
                    if not pending[s.fileno()]:
                        served += 1
                        last_served = time.perf_counter()
                        sel.unregister(s)
    finally:
        for s in socks:
            s.close()
        sel.close()
    if errors:
        raise ConnectionError(f"{errors} of {count} clients failed (first: {first_error})")
    return {"clients": count, "served": served, "connected_s": last_connected - started,
            "seconds": last_served - started, "per_s": count / (last_served - started)}
