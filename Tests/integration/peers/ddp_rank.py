"""One rank of a gloo process group for the relay tests.

Configured by the environment, as torchrun would: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
GLOO_SOCKET_IFNAME. Runs `init_process_group("gloo", init_method="env://")`, an all_reduce of
(rank + 1), a barrier, then `destroy_process_group()`, and prints one JSON line:
{"ok": true, "rank": R, "sum": S} or {"ok": false, "rank": R, "stage": ..., "error": ...}.
"""

import json
import os
import sys
import time
from datetime import timedelta


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
        stage = "barrier"
        dist.barrier()
        stage = "destroy_process_group"
        dist.destroy_process_group()
    except Exception as exc:
        print(json.dumps({"ok": False, "rank": rank, "stage": stage, "error": type(exc).__name__,
                          "message": str(exc)[:800], "elapsed": round(time.monotonic() - started, 3)}), flush=True)
        return 1
    print(json.dumps({"ok": True, "rank": rank, "sum": t.item(),
                      "elapsed": round(time.monotonic() - started, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
