"""The engine side of a vLLM 0.33 multi-node start-up, for the discovery tests: everything binds
on port 0, as vLLM 0.33 does, in one process whose command line says `vllm_engine`.

Usage: vllm_engine.py HOST [STORE_PORT]

At start: a real torch TCPStore master on HOST:STORE_PORT (the rendezvous; default 0, an
ephemeral port; the demo gives vLLM's --master-port so that a relay guard can name it), then
prints {"store_port": P, "pid": PID}. Then answers one JSON request per line on standard input:

  pg       {"world": W}   init_process_group("gloo", rank 0 of W, through the store) and an
                          all_reduce of 1.0 (the readers are the other ranks); {"sum": S}
  allreduce {}            another all_reduce of 1.0 in that group; {"sum": S}
  bind     {"key": K}     a MessageQueue's remote socket: an XPUB with XPUB_VERBOSE on
                          tcp://HOST:0 (broker_writer.Writer), its port read back from
                          LAST_ENDPOINT and published at once as store[K] = port, which is how the
                          readers learn it; {"port": P, "bound_at": monotonic seconds}.
                          With "stop": true the process stops itself (SIGSTOP) right after the
                          bind, as a container throttled at its CPU limit stalls, and goes on when
                          the test sends SIGCONT
  router   {"key": K}     a ZMQ ROUTER on tcp://HOST:0 (another ZMTP socket type); {"port": P}
  close    {"key": K}     closes the socket bound under K; {"ok": true}
  subs / drain / ready / stream   {"key": K, ...}: broker_writer.Writer's requests, on K's XPUB

The process ends when its standard input closes.
"""

import json
import os
import signal
import sys
import time
from datetime import timedelta

import zmq

from broker_writer import Writer, emit


def main() -> int:
    host = sys.argv[1]
    store_port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    import torch
    import torch.distributed as dist

    store = dist.TCPStore(host, store_port, world_size=1, is_master=True, wait_for_workers=False,
                          timeout=timedelta(seconds=60))
    emit({"store_port": store.port, "pid": os.getpid()})
    sockets: dict = {}
    context = zmq.Context()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "pg":
                dist.init_process_group("gloo", store=dist.PrefixStore("pg", store), rank=0,
                                        world_size=int(req["world"]), timeout=timedelta(seconds=60))
                t = torch.tensor([1.0])
                dist.all_reduce(t)
                emit({"sum": t.item()})
            elif op == "allreduce":
                t = torch.tensor([1.0])
                dist.all_reduce(t)
                emit({"sum": t.item()})
            elif op == "bind":
                writer = Writer(host, 0)
                bound_at = time.monotonic()
                if req.get("stop"):
                    os.kill(os.getpid(), signal.SIGSTOP)
                store.set(req["key"], str(writer.port))
                sockets[req["key"]] = writer
                emit({"port": writer.port, "bound_at": bound_at})
            elif op == "router":
                sock = context.socket(zmq.ROUTER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(f"tcp://{host}:0")
                sockets[req["key"]] = sock
                emit({"port": int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])})
            elif op == "close":
                sock = sockets.pop(req["key"])
                if isinstance(sock, Writer):
                    sock.sock.close(0)
                    sock.ctx.term()
                else:
                    sock.close(0)
                emit({"ok": True})
            else:
                emit(sockets[req["key"]].handle(req))
        except Exception as exc:  # reported to the test, which fails with it
            emit({"error": f"{op}: {type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
