"""Makes the fuzz targets' seed corpora (Fuzz/corpus/TARGET/) from real peers on loopback:
what a libzmq SUB and XSUB send to an XPUB and what a libzmq XPUB sends to an XSUB (pyzmq, libzmq's
C library), what a torch 2.13 TCPStore client sends to its store (through a recording forwarder in
front of a real TCPStore), what proxyctl sends on the control socket, what curl, wget and urllib send to /metrics, and the
repository's own policies. Run it with the tests' interpreter (torch): `.venv/bin/python Fuzz/capture_seeds.py
BIN_DIR`. The ZMTP seeds start with two bytes the target reads first: the seed of the pieces the
rest arrives in, and the side (0: the broker's XPUB facing a subscriber, 1: its XSUB facing the
engine)."""

import glob
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"


def greeting(minor: int = 1) -> bytes:
    return b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, minor]) + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def ready(socket_type: bytes) -> bytes:
    body = b"\x05READY" + b"\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type
    return bytes([0x04, len(body)]) + body


def listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server, server.getsockname()[1]


def record(conn: socket.socket, seconds: float) -> bytes:
    conn.settimeout(0.1)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data


def zmtp_subscriber_side(kind: int, subscribe: list[bytes], minor: int) -> bytes:
    """What a libzmq SUB/XSUB sends to an XPUB (us: greeting + READY XPUB)."""
    server, port = listener()
    context = zmq.Context()
    peer = context.socket(kind)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(f"tcp://127.0.0.1:{port}")
    conn, _ = server.accept()
    conn.sendall(greeting(minor) + ready(b"XPUB"))
    time.sleep(0.2)
    for topic in subscribe:
        if kind == zmq.SUB:
            peer.setsockopt(zmq.SUBSCRIBE, topic)
        else:
            peer.send(b"\x01" + topic)
    for topic in subscribe[:1]:
        if kind == zmq.SUB:
            peer.setsockopt(zmq.UNSUBSCRIBE, topic)
    data = record(conn, 0.5)
    peer.close()
    context.term()
    conn.close()
    server.close()
    return data


def recording_forwarder(upstream_port: int, keep_from_upstream: bool) -> tuple[int, bytearray]:
    """A TCP forwarder on loopback to `upstream_port` that records one direction of the first
    connection: what the upstream sends, or what the client sends."""
    server, port = listener()
    recorded = bytearray()

    def forward():
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", upstream_port))

        def pump(src, dst, keep):
            while True:
                try:
                    chunk = src.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    with contextlib_suppress():
                        dst.shutdown(socket.SHUT_WR)
                    return
                if keep:
                    recorded.extend(chunk)
                dst.sendall(chunk)
        threading.Thread(target=pump, args=(upstream, client, keep_from_upstream), daemon=True).start()
        pump(client, upstream, not keep_from_upstream)

    threading.Thread(target=forward, daemon=True).start()
    return port, recorded


def zmtp_engine_side(sizes: list[int]) -> bytes:
    """What a libzmq XPUB (the engine) sends to a libzmq XSUB that subscribes to everything."""
    context = zmq.Context()
    xpub = context.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    xpub.setsockopt(zmq.RCVTIMEO, 5000)
    engine_port = xpub.bind_to_random_port("tcp://127.0.0.1")
    port, recorded = recording_forwarder(engine_port, keep_from_upstream=True)
    xsub = context.socket(zmq.XSUB)
    xsub.setsockopt(zmq.LINGER, 0)
    xsub.connect(f"tcp://127.0.0.1:{port}")
    xsub.send(b"\x01")
    assert xpub.recv() == b"\x01"  # the subscription reached the engine
    for index, size in enumerate(sizes):
        xpub.send_multipart([b"topic", bytes([index % 256]) * size])
    time.sleep(0.5)
    xsub.close()
    xpub.close()
    context.term()
    return bytes(recorded)


def tcpstore_client() -> bytes:
    """What a torch TCPStore client sends to its store, through a forwarder that records it."""
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", 0, world_size=1, is_master=True, wait_for_workers=False,
                          timeout=timedelta(seconds=10))
    port, recorded = recording_forwarder(store.port, keep_from_upstream=False)
    client = dist.TCPStore("127.0.0.1", port, world_size=1, is_master=False, timeout=timedelta(seconds=10))
    client.set("key", "value")
    client.get("key")
    client.add("counter", 3)
    client.check(["key"])
    client.wait(["key"])
    client.compare_set("key", "value", "other")
    client.multi_set(["a", "b"], ["1", "2"])
    client.multi_get(["a", "b"])
    client.delete_key("a")
    client.num_keys()
    client.append("key", "tail")
    del client
    time.sleep(0.3)
    return bytes(recorded)


def control_requests(bin_dir: Path) -> list[bytes]:
    """What proxyctl sends on the control socket, for each command that needs no policy file."""
    out = []
    path = f"/tmp/rf-seed-{os.getpid()}.sock"
    for args in (["status"], ["peers"], ["reload", "--dry-run"], ["audit"], ["listeners"], ["bans"],
                 ["explain", "10.0.0.2", "29500"], ["kick", "10.0.0.3", "--ban", "10m"], ["unban", "10.0.0.3"]):
        with contextlib_suppress():
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(1)
        proc = subprocess.Popen([str(bin_dir / "proxyctl"), *args, "--control-socket", path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn, _ = server.accept()
        out.append(record(conn, 1.0))
        conn.close()
        server.close()
        proc.wait(timeout=10)
    os.unlink(path)
    return out


def metrics_requests() -> list[tuple[str, bytes]]:
    """What scrapers send to /metrics: curl (GET and HEAD), wget and Python's urllib, each answered
    with a short 200 so that it sends nothing more."""
    import urllib.request

    out = []
    clients = {
        "curl-get": lambda url: subprocess.run(["curl", "-s", "-o", "/dev/null", url], timeout=10),
        "curl-head": lambda url: subprocess.run(["curl", "-s", "-I", "-o", "/dev/null", url], timeout=10),
        "wget": lambda url: subprocess.run(["wget", "-q", "-O", "/dev/null", "--tries=1", url], timeout=10),
        "urllib": lambda url: urllib.request.urlopen(url, timeout=10).read(),
    }
    for name, client in clients.items():
        server, port = listener()
        recorded = bytearray()

        def serve() -> None:
            conn, _ = server.accept()
            conn.settimeout(5)
            while b"\r\n\r\n" not in recorded:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                recorded.extend(chunk)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()

        thread = threading.Thread(target=serve)
        thread.start()
        client(f"http://127.0.0.1:{port}/metrics")
        thread.join(timeout=10)
        server.close()
        out.append((name, bytes(recorded)))
    return out


class contextlib_suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def write(target: str, name: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    print(f"{target}/{name}: {len(data)} bytes")


def main() -> int:
    bin_dir = Path(sys.argv[1])
    for minor in (0, 1):
        write("FuzzZMTP", f"sub-minor{minor}", bytes([7, 0]) + zmtp_subscriber_side(zmq.SUB, [b"", b"topic"], minor))
    write("FuzzZMTP", "xsub", bytes([7, 0]) + zmtp_subscriber_side(zmq.XSUB, [b"", b"t"], 1))
    write("FuzzZMTP", "engine", bytes([7, 1]) + zmtp_engine_side([0, 3, 255, 256, 70000]))
    write("FuzzTCPStoreGate", "torch-client", tcpstore_client())
    for index, request in enumerate(control_requests(bin_dir)):
        write("FuzzControlRequest", f"proxyctl-{index}", request)
    for name, request in metrics_requests():
        write("FuzzMetricsRequest", name, bytes([7]) + request)
    repo = ROOT.parent
    for policy in [repo / "policy.example.toml", *sorted(glob.glob(str(repo / "docs/examples/*.toml")))]:
        write("FuzzPolicy", Path(policy).name, Path(policy).read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
