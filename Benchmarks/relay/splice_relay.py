#!/usr/bin/env python3
"""A minimal zero-copy TCP relay built on splice(2): the relay benchmark's "splice" reference path.

bench_relay.py runs it in the benchmark's host namespace, beside HAProxy:

    splice_relay.py --listen PORT --upstream HOST:PORT

It accepts on 0.0.0.0:PORT and, for each connection, connects to the upstream and moves bytes in
both directions with os.splice through a pipe (one pipe per direction, resized to 1 MiB with
F_SETPIPE_SZ), one blocking thread per direction, 1 MiB per splice call (SPLICE_F_MOVE, a mere
hint to the kernel). A direction that reads EOF half-closes the other side (shutdown(SHUT_WR));
an error shuts both sockets down, which also wakes the other direction's thread. Blocking sockets
and TCP_NODELAY (like proxyd), nothing more: it is the minimal baseline, not a proxy to deploy
(no limits, no timeouts, no accounting).

Exits with status 0 on SIGTERM or SIGINT. Prints nothing on success; a failed session prints
one line to stderr.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import socket
import sys
import threading

CHUNK = 1 << 20  # bytes per splice call, and the pipe's size
F_SETPIPE_SZ = 1031  # Linux fcntl command (fcntl.F_SETPIPE_SZ in Python 3.10+)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def warn(msg: str) -> None:
    print(f"splice_relay: {msg}", file=sys.stderr, flush=True)


def start_thread(target, *args) -> None:
    """Starts a daemon thread with SIGTERM and SIGINT blocked in it, so that the kernel delivers
    them to the main thread, the only one whose blocking accept() they interrupt."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        threading.Thread(target=target, args=args, daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Session:
    """One client connection and its upstream connection; the last direction to end closes both."""

    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        self.running = 2
        self.failed = False
        self.lock = threading.Lock()

    def start(self) -> None:
        start_thread(self.pump, self.client, self.upstream, "client -> upstream")
        start_thread(self.pump, self.upstream, self.client, "upstream -> client")

    def pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, CHUNK)
            s, d = src.fileno(), dst.fileno()
            while True:
                n = os.splice(s, w, CHUNK, flags=os.SPLICE_F_MOVE)
                if n == 0:
                    break
                while n:
                    n -= os.splice(r, d, n, flags=os.SPLICE_F_MOVE)
            dst.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if not self.failed:  # only the first: the other direction's error follows from it
                self.failed = True
                warn(f"{direction}: {exc}")
            for sock in (src, dst):  # wakes the other direction's thread too
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            os.close(r)
            os.close(w)
            with self.lock:
                self.running -= 1
                last = self.running == 0
            if last:
                self.client.close()
                self.upstream.close()


def serve(port: int, upstream: tuple[str, int]) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(4096)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(upstream)
        except OSError as exc:
            warn(f"connect to {upstream[0]}:{upstream[1]}: {exc}")
            client.close()
            continue
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Session(client, server).start()


def _exit(_signum, _frame):
    sys.exit(0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, required=True, help="port to accept on (all IPv4 addresses)")
    ap.add_argument("--upstream", required=True, help="HOST:PORT to relay each connection to")
    args = ap.parse_args()
    host, _, port = args.upstream.rpartition(":")
    for signum in STOP_SIGNALS:
        signal.signal(signum, _exit)
    serve(args.listen, (host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
