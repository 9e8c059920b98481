"""The broker benchmark's lossless runs: the publisher sends flat out (no flow control of its own)
and every path either pushes back on it or loses messages, which the readers count.

Paths (each a publisher XPUB of its own with XPUB_NODROP, so that the publisher's send blocks
when its pipe is full instead of dropping):
    direct         readers -> the publisher's XPUB
    broker         readers -> proxyd's broker, guard with on_overflow = "block" (limits at their
                   defaults): at a subscriber's high-water mark the broker stops reading the
                   engine until it drains, so TCP pushes back on the publisher
    zmq_proxy      readers -> zmq_proxy's XPUB with XPUB_NODROP (its XSUB connected to the
                   publisher): the proxy's blocking send waits for room, it stops reading its
                   XSUB, and TCP pushes back on the publisher (README.md beside this file)
    broker_lossy   readers -> proxyd's broker, on_overflow = "disconnect" (the default, default
                   limits): a reader is evicted at its mark, reconnects, and carries on with a gap

bench_broker.py owns the processes; this module runs, tabulates and judges these runs.
"""

from __future__ import annotations

import re

from benchkit import ProxyCost, log
from units import KiB, median, size_label

PATHS = ("direct", "broker", "zmq_proxy", "broker_lossy")
LOSSLESS = ("direct", "broker", "zmq_proxy")
LABELS = {"direct": "direct (XPUB_NODROP)", "broker": "broker (block)", "zmq_proxy": "zmq_proxy (XPUB_NODROP)",
          "broker_lossy": "broker (disconnect)"}


EVICTED = 'msg="subscriber evicted: '  # "queue full" (a high-water mark), "no progress" (max_stall, block)


def evictions(text: str, guard: str) -> int:
    """The broker's evictions of subscribers of `guard` in a stretch of proxyd's log, for
    whatever reason."""
    return sum(1 for line in text.splitlines()
               if EVICTED in line and re.search(rf"\bguard={re.escape(guard)}\b", line))


class Lossless:
    """Runs every lossless path at every size, reps times (paths interleaved, order rotated);
    `routes` maps a path to (the publisher's XPUB name, the readers' endpoint, proxyd's guard
    or None), `proxies` a path to the pid whose CPU is counted."""

    def __init__(self, bench, paths: list[str], routes: dict[str, tuple[str, str, str | None]],
                 proxies: dict[str, int]):
        self.bench = bench
        self.args = bench.args
        self.paths = paths
        self.routes = routes
        self.proxies = proxies
        self.runs: dict[int, dict[str, list[dict]]] = {}

    # -- runs ------------------------------------------------------------------------------------

    def one_run(self, path: str, size: int, count: int) -> dict:
        b, a = self.bench, self.args
        b.run_id += 1
        xpub, endpoint, guard = self.routes[path]
        readers = b.readers[:self.args.lossless_readers]
        offset = b.proxyd.log_size()
        cost = ProxyCost(self.proxies.get(path))
        timeout = a.run_timeout
        for reader in readers:
            reader.send({"op": "run", "endpoint": endpoint, "run": b.run_id, "count": count, "ack_every": count,
                         "latency": False, "large": size > 1024, "timeout": timeout})
        b.publisher.send({"op": "run", "xpub": xpub, "run": b.run_id, "count": count, "size": size, "window": 0,
                          "readers": len(readers), "rate": 0, "warm_timeout": a.warm_timeout, "timeout": timeout,
                          "losses_ok": True})
        pub = b.publisher.read(timeout + a.warm_timeout + 20)
        answers = [r.read(timeout + a.warm_timeout + 20) for r in readers]
        result = {"path": path, "size": size, "count": count, "run": b.run_id, "publisher": pub,
                  "readers": answers}
        cost.add_to(result)
        result["evictions"] = evictions(b.proxyd.text_since(offset), guard) if guard else 0
        # Lost = what a reader never received: its gaps, or everything after it stopped.
        result["lost"] = [max(x.get("gaps", 0), count - x.get("received", 0)) for x in answers]
        errors = ([f"publisher: {pub.get('error')}"] if not pub.get("ok") else []) + \
                 [f"reader {i}: {x.get('error')}" for i, x in enumerate(answers)
                  if not x.get("ok") and not str(x.get("error", "")).startswith("received ")]  # not a loss
        received = [x for x in answers if x.get("received")]
        if received and not errors:
            span = (max(x["last_ns"] for x in received) - min(x["first_ns"] for x in received)) / 1e9
            result["span_s"] = span
            # Messages delivered per reader (all of them on a lossless path) over the span.
            delivered = sum(x["received"] for x in answers) / len(answers)
            result["msgs_per_s"] = (delivered - 1) / span if span > 0 else None
        result["ok"] = not errors and result.get("msgs_per_s") is not None
        if errors:
            result["error"] = "; ".join(errors)
        return result

    def warm_up(self) -> None:
        """One short run per path (connects the brokers' and zmq_proxy's upstream links); not recorded."""
        for path in self.paths:
            r = self.one_run(path, 64 * KiB, 200)
            if not r["ok"]:
                self.bench.failures.append(f"lossless warm-up on {path}: {r.get('error')}")

    def phase(self) -> None:
        a, b = self.args, self.bench
        self.warm_up()
        for rep in range(a.reps):
            k = rep % len(self.paths)
            order = self.paths[k:] + self.paths[:k]
            for size in a.sizes:
                count = a.counts[size]
                for path in order:
                    r = self.one_run(path, size, count)
                    self.runs.setdefault(size, {}).setdefault(path, []).append(r)
                    what = f"lossless {size_label(size)} {path} #{rep + 1}"
                    if not r["ok"]:
                        b.record_failure(what, r)
                        continue
                    lost = sum(r["lost"])
                    log(f"  {what}: {r['msgs_per_s']:,.0f} msg/s, {r['msgs_per_s'] * size / 1e6:,.1f} MB/s per reader; "
                        f"lost per reader {r['lost']}" + (f", {r['evictions']} evictions" if r["evictions"] else "")
                        + b._cost(r, count))
                    if lost and path in LOSSLESS:
                        b.failures.append(f"{what}: {lost} messages lost on a lossless path (per reader {r['lost']}; "
                                          f"first gaps {[x.get('gap_at', [])[:3] for x in r['readers']]})")

    # -- summaries -------------------------------------------------------------------------------

    def ok_runs(self, size: int, path: str) -> list[dict]:
        return [r for r in self.runs.get(size, {}).get(path, []) if r.get("ok")]

    def med(self, size: int, path: str, key: str) -> float | None:
        return median([r.get(key) for r in self.ok_runs(size, path)])

    def lost_max(self, size: int, path: str) -> int | None:
        """The most any one reader lost, over every run of that size and path."""
        runs = self.ok_runs(size, path)
        return max((max(r["lost"]) for r in runs), default=None)

    def ratio(self, size: int, key: str = "msgs_per_s") -> float | None:
        b, z = self.med(size, "broker", key), self.med(size, "zmq_proxy", key)
        return b / z if b is not None and z else None

    def table(self) -> str:
        a = self.args
        n = a.reps
        head = " | ".join(LABELS[p] for p in PATHS)
        out = [f"| lossless, per reader, {'median of ' + str(n) if n > 1 else '1 run'} | {head} | broker/zmq_proxy |",
               "|---|" + "---:|" * (len(PATHS) + 1)]
        for size in a.sizes:
            cells = []
            for path in PATHS:
                m = self.med(size, path, "msgs_per_s")
                if m is None:
                    cells.append("error" if path in self.paths and self.runs.get(size, {}).get(path) else "—")
                    continue
                lost = self.lost_max(size, path)
                ev = median([r["evictions"] for r in self.ok_runs(size, path)])
                cells.append(f"{m:,.0f} msg/s · {m * size / 1e6:,.1f} MB/s · lost {lost:,}"
                             + (f" · {ev:,.0f} evictions" if ev else ""))
            r = self.ratio(size)
            out.append(f"| {size_label(size)} × {a.counts[size]:,}, flat out | " + " | ".join(cells)
                       + f" | {'' if r is None else f'{r:.2f}'} |")
        return "\n".join(out)

    def cost_table(self) -> str:
        a = self.args
        out = ["| lossless, proxy CPU per run (median; utime+stime) | broker (block), proxyd | zmq_proxy (XPUB_NODROP) "
               "| broker (disconnect), proxyd | CPU broker/zmq_proxy |", "|---|---:|---:|---:|---:|"]
        for size in a.sizes:
            count = a.counts[size]
            cells = []
            for path in ("broker", "zmq_proxy", "broker_lossy"):
                cpu = self.med(size, path, "proxy_cpu_s")
                cells.append("—" if cpu is None else f"{cpu:.2f} s · {cpu / count * 1e6:,.1f} µs/msg")
            r = self.ratio(size, "proxy_cpu_s")
            out.append(f"| {size_label(size)} × {count:,} | " + " | ".join(cells) + f" | {'' if r is None else f'{r:.2f}'} |")
        return "\n".join(out)

    def targets(self) -> list[tuple[str, str, bool | None]]:
        out = []
        for size in self.args.sizes:
            r = self.ratio(size)
            out.append((f"lossless {size_label(size)}: broker (block) at least level with zmq_proxy (XPUB_NODROP), "
                        "broker/zmq_proxy ≥ 1", "—" if r is None else f"{r:.3f}", None if r is None else r >= 1.0))
        lost = {p: [self.lost_max(s, p) for s in self.args.sizes] for p in LOSSLESS if p in self.paths}
        measured = [v for vs in lost.values() for v in vs if v is not None]
        shown = ", ".join(f"{p} {'/'.join('—' if v is None else str(v) for v in vs)}" for p, vs in lost.items())
        out.append(("lossless paths lose nothing (most lost by one reader, per size)", shown or "—",
                    None if not measured else all(v == 0 for v in measured)))
        return out

    def json_data(self) -> dict:
        return {"summary": {size_label(s): {p: {"msgs_per_s": self.med(s, p, "msgs_per_s"),
                                                "proxy_cpu_s": self.med(s, p, "proxy_cpu_s"),
                                                "lost_max_per_reader": self.lost_max(s, p)} for p in PATHS}
                            for s in self.args.sizes},
                "runs": {size_label(s): runs for s, runs in self.runs.items()}}
