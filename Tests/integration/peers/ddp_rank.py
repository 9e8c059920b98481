"""One rank of a gloo process group for the relay and host guard tests.

Configured by the environment, as torchrun would: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
GLOO_SOCKET_IFNAME. Runs `init_process_group("gloo", init_method="env://")`, an all_reduce of
(rank + 1), a barrier, then `destroy_process_group()`, and prints one JSON line:
{"ok": true, "rank": R, "sum": S} or {"ok": false, "rank": R, "stage": ..., "error": ...}.

With RINGFENCE_HOLD=1 the group stays up after the first all_reduce, so that a test can probe
its real listeners: it prints {"ok": true, "rank": R, "sum": S, "pid": P}, waits for a line on
standard input (or its end), then a barrier, a second all_reduce of 10 * (rank + 1) and
`destroy_process_group()`, and prints {"ok": true, "rank": R, "stage": "done", "sum": S}.
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
    hold = os.environ.get("RINGFENCE_HOLD") == "1"
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
        if hold:
            emit({"ok": True, "rank": rank, "sum": t.item(), "pid": os.getpid(),
                  "elapsed": round(time.monotonic() - started, 3)})
            stage = "hold"
            sys.stdin.readline()
        stage = "barrier"
        dist.barrier()
        if hold:
            stage = "second all_reduce"
            t = torch.tensor([float(10 * (rank + 1))])
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        stage = "destroy_process_group"
        dist.destroy_process_group()
    except Exception as exc:
        emit({"ok": False, "rank": rank, "stage": stage, "error": type(exc).__name__,
              "message": str(exc)[:800], "elapsed": round(time.monotonic() - started, 3)})
        return 1
    done = {"stage": "done"} if hold else {}
    emit({"ok": True, "rank": rank, **done, "sum": t.item(), "elapsed": round(time.monotonic() - started, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
