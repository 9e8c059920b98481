"""The broker benchmark's idle-subscriber run: what idle subscribers cost the broker per message.

A vLLM-like writer (XPUB_VERBOSE, the default lossy SNDHWM 1000) waits for its two readers'
subscriptions through the broker, sends READY, and then, once K idle subscribers have connected
from an allowed namespace (libzmq SUBs that never read, RCVHWM 1 and a small SO_RCVBUF), N
messages to the two readers, never more than a window ahead of the slower one (so that no real
reader is ever at its mark, whatever the overflow policy). The same run without them (K = 0)
comes first. The figure is proxyd's CPU (utime+stime from /proc) over the messages, per
message; the target is at most 1.2 times the run without idle subscribers.

bench_broker.py owns the processes; this module runs, tabulates and judges these runs.
"""

from __future__ import annotations

import time

from benchkit import context_switches, control_request, cpu_seconds, log, status_field
from lossless import evictions
from units import KiB, MiB, median, size_label

READERS = 2
# name -> (sizes cycled through, messages (full, quick), window / report every). Quick mode
# sends as many: CPU times come in clock ticks (10 ms), and a run must last long enough for them.
WORKLOADS = {
    "1 MiB": ([MiB], (300, 300), (8, 2)),
    "mixed": ([512, 4 * KiB, 32 * KiB, 256 * KiB], (2000, 2000), (64, 16)),
}
IDLE_RCVBUF = 4096  # SO_RCVBUF of every idle subscriber (the kernel doubles it)


def workload_label(name: str) -> str:
    sizes, _, _ = WORKLOADS[name]
    return name if len(sizes) == 1 else f"mixed ({'/'.join(size_label(s) for s in sizes)})"


class IdleCpu:
    """`routes` maps an overflow policy ("disconnect", "block") to (the publisher's XPUB name,
    the readers' endpoint, proxyd's guard, the guard's port)."""

    def __init__(self, bench, routes: dict[str, tuple[str, str, str, int]], counts: list[int]):
        self.bench = bench
        self.args = bench.args
        self.routes = routes
        self.counts = [0, *[k for k in counts if k > 0]]
        self.runs: dict[tuple[str, str, int], list[dict]] = {}

    def messages(self, workload: str) -> int:
        return WORKLOADS[workload][1][1 if self.args.quick else 0]

    # -- one run ---------------------------------------------------------------------------------

    def one_run(self, workload: str, overflow: str, idle: int, count: int | None = None) -> dict:
        b, a = self.bench, self.args
        sizes, _, (window, ack_every) = WORKLOADS[workload]
        count = count or self.messages(workload)
        xpub, endpoint, guard, port = self.routes[overflow]
        readers = b.readers[:READERS]
        pid = b.proxyd.pid
        b.run_id += 1
        run = b.run_id
        timeout = a.run_timeout
        reader_timeout = timeout + a.warm_timeout + 30  # READY, the idle subscribers' attach, the messages
        b.publisher.request({"op": "drain"}, 10)
        offset = b.proxyd.log_size()
        for reader in readers:
            reader.send({"op": "run", "endpoint": endpoint, "run": run, "count": count, "ack_every": ack_every,
                         "latency": False, "large": True, "timeout": reader_timeout})
        result = {"workload": workload, "overflow": overflow, "idle": idle, "count": count, "run": run}
        ready = b.publisher.request({"op": "ready", "xpub": xpub, "run": run, "readers": READERS,
                                     "timeout": a.warm_timeout}, a.warm_timeout + 20)
        result["ready"] = ready
        attached = 0
        if ready.get("ok") and idle:
            attach = b.idle.request({"op": "attach", "endpoint": endpoint, "count": idle, "rcvbuf": IDLE_RCVBUF}, 30)
            deadline = time.monotonic() + 15
            while attach.get("ok") and time.monotonic() < deadline:
                attached = b.established_idle(port)
                if attached >= idle:
                    break
                time.sleep(0.1)
            time.sleep(0.3)  # their handshakes and subscriptions are behind
        result["idle_attached"] = attached
        with open(f"/proc/{pid}/clear_refs", "w") as f:  # VmHWM := VmRSS, so the peak is this run's
            f.write("5")
        cpu0, cs0 = cpu_seconds(pid), context_switches(pid)
        if ready.get("ok"):
            pub = b.publisher.request({"op": "run", "xpub": xpub, "run": run, "count": count, "size": sizes[0],
                                       "sizes": sizes, "window": window, "readers": READERS, "rate": 0,
                                       "warm": False, "warm_timeout": a.warm_timeout, "timeout": timeout},
                                      timeout + a.warm_timeout + 20)
        else:
            pub = {"ok": False, "error": f"ready: {ready.get('error')}"}  # the readers end at their time bound
        cpu1, cs1 = cpu_seconds(pid), context_switches(pid)
        answers = [r.read(reader_timeout + 20) for r in readers]
        result["rss_peak"] = status_field(pid, "VmHWM")
        result["idle_established_after_run"] = b.established_idle(port) if idle else 0
        if idle:
            result["idle_detach"] = b.idle.request({"op": "detach"}, 30)
        text = b.proxyd.text_since(offset)
        # Their evictions banned their address (the guard's strike bans are at their defaults):
        # counted, then lifted, so that the next run's idle subscribers are admitted.
        result["idle_bans"] = sum(1 for line in text.splitlines()
                                  if "peer banned by guard" in line and f"peer={b.evil_ip}" in line)
        if idle:
            result["idle_unban"] = control_request(b.logdir / "control.sock", {"command": "unban", "peer": b.evil_ip})
        result["idle_evictions"] = evictions("\n".join(line for line in text.splitlines()
                                                       if f"peer={b.evil_ip}" in line), guard)
        result["reader_evictions"] = evictions(text, guard) - result["idle_evictions"]
        result.update(publisher=pub, readers=answers)
        if cpu0 is not None and cpu1 is not None:
            result["proxy_cpu_s"] = round(cpu1 - cpu0, 3)
            result["cpu_us_per_msg"] = (cpu1 - cpu0) / count * 1e6
        if cs0 is not None and cs1 is not None:
            result["proxy_context_switches"] = cs1 - cs0
        errors = ([f"publisher: {pub.get('error')}"] if not pub.get("ok") else []) + \
                 [f"reader {i}: {x.get('error')}" for i, x in enumerate(answers) if not x.get("ok")]
        if idle and attached < idle:
            errors.append(f"only {attached} of {idle} idle subscribers connected")
        if result["reader_evictions"]:
            errors.append(f"proxyd evicted {result['reader_evictions']} real readers")
        result["all_received"] = all(x.get("received") == count and not x.get("gaps") for x in answers)
        if pub.get("ok") and pub.get("send_seconds"):
            result["msgs_per_s"] = count / pub["total_seconds"]
        result["ok"] = not errors
        if errors:
            result["error"] = "; ".join(errors)
        return result

    # -- the phase -------------------------------------------------------------------------------

    def phase(self) -> None:
        b, a = self.bench, self.args
        for overflow in self.routes:  # one short run per guard: its upstream link connects
            r = self.one_run("mixed", overflow, 0, count=200)
            if not r["ok"]:
                b.failures.append(f"idle-subscriber warm-up ({overflow}): {r.get('error')}")
        for rep in range(a.idle_cpu_reps):
            for workload in WORKLOADS:
                for overflow in self.routes:
                    for idle in self.counts:
                        r = self.one_run(workload, overflow, idle)
                        self.runs.setdefault((workload, overflow, idle), []).append(r)
                        what = f"idle {workload} {overflow} {idle} idle #{rep + 1}"
                        if not r["ok"]:
                            b.record_failure(what, r)
                            continue
                        log(f"  {what}: proxyd {r['proxy_cpu_s']:.2f} CPU s, {r['cpu_us_per_msg']:,.1f} µs/msg, "
                            f"{r.get('msgs_per_s', 0):,.0f} msg/s, {r['idle_evictions']} idle evicted, "
                            f"{r['idle_bans']} bans, "
                            f"peak RSS {(r['rss_peak'] or 0) / MiB:,.0f} MiB")

    # -- summaries -------------------------------------------------------------------------------

    def med(self, key: tuple[str, str, int], field: str) -> float | None:
        return median([r.get(field) for r in self.runs.get(key, []) if r.get("ok")])

    def ratio(self, workload: str, overflow: str, idle: int) -> float | None:
        x, base = self.med((workload, overflow, idle), "cpu_us_per_msg"), self.med((workload, overflow, 0),
                                                                                  "cpu_us_per_msg")
        return x / base if x is not None and base else None

    def table(self) -> str:
        n = self.args.idle_cpu_reps
        out = [f"| idle subscribers ({'median of ' + str(n) if n > 1 else '1 run'}) | idle | proxyd CPU | CPU per message "
               "| ratio to 0 idle | msg/s | idle evicted | proxyd peak RSS | both readers got all |",
               "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for workload in WORKLOADS:
            for overflow in self.routes:
                for idle in self.counts:
                    key = (workload, overflow, idle)
                    runs = self.runs.get(key, [])
                    if not runs:
                        continue
                    cpu, us = self.med(key, "proxy_cpu_s"), self.med(key, "cpu_us_per_msg")
                    r = self.ratio(workload, overflow, idle) if idle else None
                    rate, ev, rss = (self.med(key, f) for f in ("msgs_per_s", "idle_evictions", "rss_peak"))
                    fmt = lambda v, f: "—" if v is None else f.format(v)  # noqa: E731
                    got = "yes" if runs and all(x.get("all_received") for x in runs) else "**no**"
                    out.append(f"| {workload_label(workload)} × {self.messages(workload):,}, {overflow} | {idle} | "
                               f"{fmt(cpu, '{:.2f} s')} | {fmt(us, '{:,.1f} µs')} | "
                               f"{fmt(r, '**{:.2f}**') if idle else ''} | {fmt(rate, '{:,.0f}')} | "
                               f"{fmt(ev, '{:,.0f}') if idle else ''} | {fmt(None if rss is None else rss / MiB, '{:,.0f} MiB')} "
                               f"| {got} |")
        return "\n".join(out)

    def targets(self) -> list[tuple[str, str, bool | None]]:
        out = []
        for workload in WORKLOADS:
            for overflow in self.routes:
                for idle in self.counts[1:]:
                    r = self.ratio(workload, overflow, idle)
                    out.append((f"{idle} idle subscribers, {workload_label(workload)}, {overflow}: broker CPU per "
                                "message ≤ 1.2× without them", "—" if r is None else f"{r:.2f}×",
                                None if r is None else r <= 1.2))
        return out

    def json_data(self) -> dict:
        return {"summary": [{"workload": w, "overflow": o, "idle": k, "cpu_us_per_msg": self.med((w, o, k), "cpu_us_per_msg"),
                             "ratio": self.ratio(w, o, k) if k else None,
                             "idle_evictions": self.med((w, o, k), "idle_evictions"),
                             "rss_peak": self.med((w, o, k), "rss_peak")} for (w, o, k) in self.runs],
                "runs": [{"workload": w, "overflow": o, "idle": k, "runs": runs} for (w, o, k), runs in self.runs.items()]}
