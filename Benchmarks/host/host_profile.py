"""The host benchmark's profiled loops: one request/response loop under `perf record -a -g`
(cpu-clock: this VM has no hardware counters), read back as the inclusive kernel time per round
trip of the netfilter functions in PROFILE, counting only the samples of the agents and of
ksoftirqd on their CPU.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import benchkit as bk

# Inclusive (children) time of these kernel functions, per round trip. The hook entry covers
# every netfilter hook the packets pass, in both namespaces.
PROFILE = (("hooks", ("nf_hook_slow",)), ("conntrack", ("nf_conntrack_in", "ipv4_confirm", "nf_confirm")),
           ("rules", ("nft_do_chain",)), ("set lookups", ("nft_lookup_eval",)),
           ("interval set", ("nft_rbtree_lookup",)), ("fib", ("nft_fib4_eval", "nft_fib4_eval_type")))
LINE = re.compile(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[[k.]\]\s+(\S+)")


def profile_costs(data: Path, answer: dict, packets: int, pids: list[int]) -> dict:
    """ns per round trip in each PROFILE group, counting only the samples of `pids` (the two
    agents and their CPUs' ksoftirqd: the softirqs that carry their packets run in their
    context, and other work on the machine stays out), as cpu-clock samples x period / round
    trips (the 200 warm-up round trips are inside the perf window too); and `packets` (the
    host's received packets over the loop) per round trip."""
    only = ",".join(map(str, pids))
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--children", "--sort", "sym", "-q",
                             "-g", "none", "--percent-limit", "0", "--pid", only, "--percentage", "relative"],
                            capture_output=True, text=True, timeout=300)
    periods = subprocess.run(["perf", "script", "-i", str(data), "-F", "pid,period"], capture_output=True, text=True,
                             timeout=300)
    rows = [line.split() for line in periods.stdout.splitlines()]
    total_ns = sum(int(r[1]) for r in rows if len(r) == 2 and r[0].isdigit() and int(r[0]) in pids)
    children = {}
    for line in report.stdout.splitlines():
        if m := LINE.match(line):
            children.setdefault(m.group(3), float(m.group(1)))
    trips = answer["round_trips"] + 200
    costs = {group: sum(children.get(sym, 0.0) for sym in syms) / 100 * total_ns / trips for group, syms in PROFILE}
    return {"round_trips": answer["round_trips"], "per_s": answer["per_s"], "cpu_s": total_ns / 1e9,
            "packets_in_per_round_trip": round(packets / trips, 3),
            "ns_per_round_trip": {k: round(v, 1) for k, v in costs.items()}}


def profile(bench, name: str) -> dict | None:
    """One request/response loop under `perf record -a -g` (cpu-clock): what the hooks cost."""
    data = bench.logdir / f"perf-{name}.data"
    perf = subprocess.Popen(["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F", str(bench.args.perf_hz),
                             "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    bk.CLEANUP.add(f"perf {name}", lambda: bk.stop_process(perf, 5))
    try:
        time.sleep(0.5)
        packets = bench.rx_packets()
        answer = bench.rr()
        packets = bench.rx_packets() - packets
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=30)
    if not answer.get("ok") or not data.exists():
        bench.notes.append(f"{name}: no profile ({answer.get('error', 'perf wrote nothing')})")
        return None
    bk.log(f"  profiled: {answer['per_s']:,.0f} round trips/s under perf")
    return profile_costs(data, answer, packets, [bench.client.pid, bench.server.pid, *ksoftirqd(bench.cpus)])


def ksoftirqd(cpus: set[int]) -> list[int]:
    """The pids of ksoftirqd/N for `cpus`, the CPUs the agents are pinned to (all, if none):
    where the kernel defers the softirqs that carry their packets when it is busy."""
    cpus = cpus or set(range(os.cpu_count() or 1))
    names = {f"ksoftirqd/{c}" for c in cpus}
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "comm").read_text().strip() in names:
                pids.append(int(proc.name))
    return pids
