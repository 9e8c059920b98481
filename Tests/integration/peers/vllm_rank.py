"""A remote rank of a vLLM 0.33 multi-node start-up, for the discovery tests: it learns the
engine's XPUB port through the real TCPStore and connects within a millisecond of learning it.

Usage: vllm_rank.py STORE_HOST STORE_PORT XPUB_HOST KEY [--rank R --world W]

With --world > 1, first joins the gloo group as rank R (through the store; GLOO_SOCKET_IFNAME
from the environment) and prints {"type": "pg", "sum": S}. Then waits for store[KEY] (the
engine publishes the XPUB's port there right after binding it), connects a libzmq SUB to
XPUB_HOST:PORT subscribed to "" at once, prints {"type": "connected", "port": P}, and reports
messages as broker_reader.py does.
"""

import argparse
import json
import sys
from datetime import timedelta

import zmq

from broker_reader import emit, serve


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("store_host")
    ap.add_argument("store_port", type=int)
    ap.add_argument("xpub_host")
    ap.add_argument("key")
    ap.add_argument("--rank", type=int, default=1)
    ap.add_argument("--world", type=int, default=1)
    args = ap.parse_args()

    import torch
    import torch.distributed as dist

    store = dist.TCPStore(args.store_host, args.store_port, is_master=False, timeout=timedelta(seconds=60))
    if args.world > 1:
        dist.init_process_group("gloo", store=dist.PrefixStore("pg", store), rank=args.rank,
                                world_size=args.world, timeout=timedelta(seconds=60))
        t = torch.tensor([1.0])
        dist.all_reduce(t)
        emit({"type": "pg", "sum": t.item()})
    port = int(store.get(args.key))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"tcp://{args.xpub_host}:{port}")
    emit({"type": "connected", "port": port})
    try:
        return serve(sock)
    finally:
        sock.close(0)
        ctx.term()


if __name__ == "__main__":
    sys.exit(main())
