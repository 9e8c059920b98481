"""A remote reader of vLLM's MessageQueue for the broker tests: a libzmq SUB connected to the
engine's XPUB address (through the broker), reporting every message it receives as one JSON
line on standard output.

Usage: broker_reader.py HOST PORT [--topic HEX]... [--delay SECONDS] [--rcvhwm N]
(no --topic: subscribe "" as vLLM does; --delay: sleep that long after each message, a reader
slower than its writer; --rcvhwm: the SUB's RCVHWM, so that libzmq stops reading the socket
after N unread messages instead of libzmq's default 1000)

Prints {"type": "connected"} after connect(), then for each message received:

  {"type": "msg", "n": index, "frames": count, "sizes": [...], "sha": [sha256 of each frame],
   "seq": int or null, "f0": hex of frame 0 when it is at most 64 bytes, else null}

Frame 0 starting with the pickle protocol 5 header is decoded as vLLM's reader does,
`pickle.loads(frame0, buffers=frames[1:])`; "seq" is the object's sequence number (a frame
count that does not match the pickle's out-of-band buffers fails the load, printed as
{"type": "error"}).

Requests on standard input, one JSON line each, answered by {"type": "reply", ...}:
  {"op": "subscribe", "topic": HEX} / {"op": "unsubscribe", "topic": HEX}
The process ends when its standard input closes.
"""

import argparse
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


def describe(n: int, frames: list[bytes]) -> dict:
    seq = None
    f0 = frames[0]
    if f0[:2] == b"\x80\x05":
        obj = pickle.loads(f0, buffers=frames[1:])
        seq = obj["seq"]
        for buf, frame in zip(obj["bufs"], frames[1:]):
            assert bytes(memoryview(buf)) == frame, "an out-of-band buffer differs from its frame"
    return {"type": "msg", "n": n, "frames": len(frames), "sizes": [len(f) for f in frames],
            "sha": [hashlib.sha256(f).hexdigest() for f in frames], "seq": seq,
            "f0": f0.hex() if len(f0) <= 64 else None}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--topic", action="append", default=None)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--rcvhwm", type=int, default=None)
    args = ap.parse_args()

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    if args.rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, args.rcvhwm)
    for topic in args.topic if args.topic is not None else [""]:
        sock.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(topic))
    sock.connect(f"tcp://{args.host}:{args.port}")
    emit({"type": "connected"})
    try:
        return serve(sock, args.delay)
    finally:
        sock.close(0)
        ctx.term()


def serve(sock, delay: float = 0.0) -> int:
    """Reports every message `sock` receives (sleeping `delay` seconds after each) and answers
    subscribe requests, until standard input closes."""
    stdin = sys.stdin.fileno()
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(stdin, zmq.POLLIN)
    buf = b""
    n = 0
    try:
        while True:
            events = dict(poller.poll(1000))
            if sock in events:
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        emit(describe(n, frames))
                    except Exception as exc:  # reported to the test, which fails with it
                        emit({"type": "error", "n": n, "error": f"{type(exc).__name__}: {exc}"})
                    n += 1
                    if delay:
                        time.sleep(delay)
            if stdin in events:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return 0
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    req = json.loads(line)
                    opt = {"subscribe": zmq.SUBSCRIBE, "unsubscribe": zmq.UNSUBSCRIBE}.get(req.get("op"))
                    if opt is None:
                        emit({"type": "reply", "error": f"unknown op {req.get('op')!r}"})
                        continue
                    sock.setsockopt(opt, bytes.fromhex(req["topic"]))
                    emit({"type": "reply", "ok": True, "op": req["op"]})
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
