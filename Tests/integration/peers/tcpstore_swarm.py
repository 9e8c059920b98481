"""Many real PyTorch TCPStore clients in one process, all connected at once: one node's share of
a large rendezvous, for the relay's scale test.

Usage: tcpstore_swarm.py HOST PORT COUNT --tag TAG [--timeout S] [--threads N]

Raises its own RLIMIT_NOFILE soft limit to the hard limit, then creates COUNT
`torch.distributed.TCPStore(HOST, PORT, is_master=False)` clients (N threads connecting at once)
and keeps every one of them open. Prints {"connected": COUNT, "seconds": S} (or
{"connected": K, "failures": F, "first_error": "..."} if some could not connect), then waits
for a line on standard input ("go"): every client then sets a key of its own and gets it back,
and one line {"ok": bool, "done": D, "failures": F, "first_error": "...", "seconds": S} says how
it went; "ok" only if all COUNT clients connected and all COUNT set/get rounds returned the value
set. The clients stay open until standard input closes.
"""

import argparse
import json
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta


def emit(obj) -> None:
    print(json.dumps(obj), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=32)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    import torch.distributed as dist

    timeout = timedelta(seconds=args.timeout)

    def connect(i: int):
        try:
            return dist.TCPStore(args.host, args.port, is_master=False, wait_for_workers=False, timeout=timeout)
        except Exception as exc:  # counted and reported; the test fails on any
            return exc

    started = time.monotonic()
    with ThreadPoolExecutor(args.threads) as pool:
        results = list(pool.map(connect, range(args.count)))
    stores = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    emit({"connected": len(stores), "failures": len(errors), "seconds": round(time.monotonic() - started, 3),
          "first_error": f"{type(errors[0]).__name__}: {errors[0]}"[:300] if errors else None})

    if sys.stdin.readline() == "":
        return 1

    def round_trip(item):
        i, store = item
        key, value = f"{args.tag}/{i}", f"{args.tag}-value-{i}".encode()
        try:
            store.set(key, value)
            got = store.get(key)
            return None if got == value else f"{key}: got {got!r}"
        except Exception as exc:
            return f"{key}: {type(exc).__name__}: {exc}"[:300]

    started = time.monotonic()
    with ThreadPoolExecutor(args.threads) as pool:
        outcomes = list(pool.map(round_trip, enumerate(stores)))
    failed = [o for o in outcomes if o is not None]
    emit({"ok": not errors and not failed and len(stores) == args.count, "done": len(outcomes) - len(failed),
          "failures": len(failed) + len(errors), "first_error": failed[0] if failed else None,
          "seconds": round(time.monotonic() - started, 3)})
    sys.stdin.read()  # keep the clients open until the test is done with us
    return 0


if __name__ == "__main__":
    sys.exit(main())
