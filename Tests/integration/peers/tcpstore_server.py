"""A real PyTorch TCPStore server for the relay tests.

Usage: tcpstore_server.py HOST PORT [WORLD_SIZE]

Starts `torch.distributed.TCPStore(HOST, PORT, WORLD_SIZE, is_master=True,
wait_for_workers=False)` (the libuv backend, torch's default: it listens on every address,
dual stack, whatever HOST is), prints "ready" and then keeps the store up until its standard
input closes. Any failure to start is printed as one "error: ..." line with exit code 1.
Its RLIMIT_NOFILE soft limit is raised to the hard limit first (a scale test has thousands of
clients).
"""

import resource
import sys
from datetime import timedelta


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    world_size = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import torch.distributed as dist

        store = dist.TCPStore(host, port, world_size, is_master=True, wait_for_workers=False,
                              timeout=timedelta(seconds=30))
    except Exception as exc:  # reported to the test, which fails with it
        print(f"error: {type(exc).__name__}: {exc}", flush=True)
        return 1
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    del store
    return 0


if __name__ == "__main__":
    sys.exit(main())
