"""A well-behaved PyTorch TCPStore client for the relay tests.

Usage:
  tcpstore_client.py HOST PORT [--timeout S] [--tag TAG]
      connects, runs one round of checks and prints one JSON line, exit 0 on success;
  tcpstore_client.py HOST PORT --loop [--timeout S] [--tag TAG]
      connects once, prints {"connected": true, ...}, then runs one round of checks for every line
      read from standard input (printing one JSON line each), until standard input closes.

One round exercises set, get, add, check, wait and multi_get on keys unique to TAG and to the
round, and compare_set; the JSON line says {"ok": true, "round": N, ...} or
{"ok": false, "error": "<type>", "message": "...", "elapsed": seconds}. A failure to connect
prints such a line with "stage": "connect" and exits 1.

Keys: the Python client prefixes every key with "/" on the wire, so `check(["x"])` looks up
"/x" in the store.
"""

import argparse
import json
import os
import sys
import time
from datetime import timedelta


def emit(obj) -> None:
    print(json.dumps(obj), flush=True)


def one_round(store, tag: str, n: int) -> dict:
    started = time.monotonic()
    try:
        k = f"{tag}/r{n}"
        store.set(f"{k}/a", b"alpha")
        got = store.get(f"{k}/a")
        assert got == b"alpha", got
        first = store.add(f"{k}/counter", 5)
        second = store.add(f"{k}/counter", 2)
        assert (first, second) == (5, 7), (first, second)
        assert store.check([f"{k}/a", f"{k}/counter"]) is True
        assert store.check([f"{k}/missing"]) is False
        store.set(f"{k}/b", b"\x00\xffbeta" * 100)
        store.wait([f"{k}/a", f"{k}/b"], timedelta(seconds=5))
        values = store.multi_get([f"{k}/a", f"{k}/b"])
        assert values == [b"alpha", b"\x00\xffbeta" * 100], values
        swapped = store.compare_set(f"{k}/a", b"alpha", b"omega")
        assert swapped == b"omega", swapped
        return {"ok": True, "round": n, "elapsed": round(time.monotonic() - started, 3)}
    except Exception as exc:
        return {"ok": False, "round": n, "error": type(exc).__name__, "message": str(exc)[:500],
                "elapsed": round(time.monotonic() - started, 3)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--tag", default=f"client{os.getpid()}")
    ap.add_argument("--loop", action="store_true")
    args = ap.parse_args()

    import torch.distributed as dist

    started = time.monotonic()
    try:
        store = dist.TCPStore(args.host, args.port, is_master=False, wait_for_workers=False,
                              timeout=timedelta(seconds=args.timeout))
    except Exception as exc:
        emit({"ok": False, "stage": "connect", "error": type(exc).__name__, "message": str(exc)[:500],
              "elapsed": round(time.monotonic() - started, 3)})
        return 1
    connect_elapsed = round(time.monotonic() - started, 3)

    if not args.loop:
        result = one_round(store, args.tag, 0)
        result["connect_elapsed"] = connect_elapsed
        emit(result)
        return 0 if result["ok"] else 1

    emit({"connected": True, "connect_elapsed": connect_elapsed})
    n = 0
    for line in sys.stdin:
        n += 1
        request = line.strip()
        if request.startswith("check "):  # "check KEY": does the store hold KEY (prefixed "/")?
            key = request.split(" ", 1)[1]
            try:
                emit({"ok": True, "round": n, "has": store.check([key])})
            except Exception as exc:
                emit({"ok": False, "round": n, "error": type(exc).__name__, "message": str(exc)[:500]})
            continue
        emit(one_round(store, args.tag, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
