"""One rank of a gloo process group that stays up until told to finish, for the host guard tests.

Configured by the environment, as torchrun would: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
GLOO_SOCKET_IFNAME. Runs `init_process_group("gloo", init_method="env://")` and an all_reduce of
(rank + 1), then prints one JSON line {"ok": true, "rank": R, "sum": S, "pid": P} and keeps the
group (its TCPStore, if rank 0, and gloo's listening socket and pair connections) alive until a
line arrives on standard input (or it closes). Then a barrier, a second all_reduce and
`destroy_process_group()`, and a second line {"ok": true, "rank": R, "stage": "done", "sum": S}.
Any failure prints {"ok": false, "rank": R, "stage": ..., "error": ..., "message": ...} and exits 1.
"""

import json
import os
import sys
import time
from datetime import timedelta


def emit(obj) -> None:
    print(json.dumps(obj), flush=True)


def main() -> int:
    rank = int(os.environ["RANK"])
    stage = "import"
    started = time.monotonic()
    try:
        import torch
        import torch.distributed as dist

        stage = "init_process_group"
        dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=45))
        stage = "all_reduce"
        t = torch.tensor([float(rank + 1)])
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        emit({"ok": True, "rank": rank, "sum": t.item(), "pid": os.getpid(),
              "elapsed": round(time.monotonic() - started, 3)})
        stage = "hold"
        sys.stdin.readline()
        stage = "barrier"
        dist.barrier()
        stage = "second all_reduce"
        u = torch.tensor([float(10 * (rank + 1))])
        dist.all_reduce(u, op=dist.ReduceOp.SUM)
        stage = "destroy_process_group"
        dist.destroy_process_group()
    except Exception as exc:
        emit({"ok": False, "rank": rank, "stage": stage, "error": type(exc).__name__,
              "message": str(exc)[:800], "elapsed": round(time.monotonic() - started, 3)})
        return 1
    emit({"ok": True, "rank": rank, "stage": "done", "sum": u.item()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
