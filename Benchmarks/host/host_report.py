"""The host benchmark's figures: the profile's reading (perf report), the Markdown report and the
JSON. Reads a bench_host.Bench after its run; measures nothing itself.
"""

from __future__ import annotations

import math
import statistics

import benchkit as bk
import host_rules as hr
from host_profile import PROFILE

LABELS = {
    "none": "none: no table, no conntrack (paired: A/A)",
    "hook": "hook: empty prerouting chain",
    "conntrack": "conntrack: one `ct direction reply accept`",
    "rules": "reference rules, allow = peer",
    "rules-10k": "reference rules, allow = peer + {cidrs:,} CIDRs",
    "fence": "host guard ({mode}), allow = peer",
    "fence-10k": "host guard ({mode}), allow = peer + {cidrs:,} CIDRs",
    "fast-10k": "proposal: the guard's rules + `ct state established accept`, allow = peer + {cidrs:,} CIDRs",
}
def samples(bench, name: str, metric: str, key: str) -> list[float]:
    return [r[key] for r in bench.results.get(name, {}).get(metric, []) if r.get("ok")]


def best(bench, name: str, metric: str, key: str) -> float | None:
    values = samples(bench, name, metric, key)
    return max(values) if values else None


def spread(values: list[float]) -> float | None:
    return (max(values) - min(values)) / max(values) if len(values) > 1 and max(values) else None


def baseline(bench, metric: str, key: str) -> float | None:
    """The best of all the no-fence runs."""
    return best(bench, "none", metric, key)


def by_slot(bench, name: str, metric: str, key: str) -> dict[tuple[int, int], float]:
    return {(r["round"], r["slot"]): r[key] for r in bench.results.get(name, {}).get(metric, []) if r.get("ok")}


def paired(bench, name: str, metric: str, key: str) -> list[float]:
    """Per run, its figure over the mean of the two no-fence runs just before and after it (the
    same round, seconds apart); for the no-fence row, each no-fence run over the one before it
    in the same round (A/A: the noise)."""
    nones = by_slot(bench, "none", metric, key)
    if name == "none":
        ordered = sorted(nones)
        return [nones[b] / nones[a] for a, b in zip(ordered, ordered[1:]) if a[0] == b[0]]
    return [value / ((nones[(r, s - 1)] + nones[(r, s + 1)]) / 2)
            for (r, s), value in sorted(by_slot(bench, name, metric, key).items())
            if (r, s - 1) in nones and (r, s + 1) in nones]


def noise(bench, metric: str, key: str) -> float | None:
    """How far apart two no-fence runs of one round are: the 90th percentile of |1 - A/A|."""
    gaps = sorted(abs(1 - x) for x in paired(bench, "none", metric, key))
    return gaps[max(0, math.ceil(0.9 * len(gaps)) - 1)] if gaps else None


def pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def ratio_text(value: float | None, base: float | None) -> str:
    return "" if value is None or not base else f"{value / base:.3f}"


def paired_text(ratios: list[float]) -> str:
    if not ratios:
        return "—"
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})" if len(ratios) > 1 else f"{ratios[0]:.3f}"


def table(bench) -> list[str]:
    a = bench.args
    rows = ["| configuration | bulk MB/s | spread | ×none | paired ×none | round trips/s | spread | ×none | "
            "paired ×none | p50 µs | p99 µs |", "|---|" + "---:|" * 10]
    for name in bench.results:
        label = LABELS[name].format(mode=bench.mode, cidrs=a.cidrs)
        cells = [label]
        for metric, key in (("bulk", "mb_per_s"), ("rr", "per_s")):
            value = best(bench, name, metric, key)
            cells += ["" if value is None else f"{value:,.0f}", pct(spread(samples(bench, name, metric, key))),
                      ratio_text(value, baseline(bench, metric, key)), paired_text(paired(bench, name, metric, key))]
        runs = [x for x in bench.results[name]["rr"] if x.get("ok")]
        top = max(runs, key=lambda x: x["per_s"]) if runs else {}
        cells += [f"{top['p50_us']:.1f}" if top else "", f"{top['p99_us']:.1f}" if top else ""]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def verdicts(bench) -> list[str]:
    out = []
    for metric, key, what in (("bulk", "mb_per_s", "bulk"), ("rr", "per_s", "round trips")):
        band = noise(bench, metric, key)
        for name in ("fence", "fence-10k"):
            ratios = paired(bench, name, metric, key)
            if not ratios or band is None:
                continue
            loss = 1 - statistics.median(ratios)
            state = "within noise" if loss <= band else f"{loss - band:.1%} beyond noise"
            out.append(f"- {what}, {name}: paired median {1 - loss:.3f} of no fence; noise (90th percentile of the "
                       f"A/A gaps) ±{band:.1%} — {state}")
    return out


def profile_rows(bench) -> list[str]:
    profiled = {n: r["profile"] for n, r in bench.results.items() if r.get("profile")}
    if not profiled:
        return []
    groups = [g for g, _ in PROFILE]
    rows = ["", "Where the time goes: one more loop per configuration under `perf record -a -g` (cpu-clock, "
            f"{bench.args.perf_hz} Hz); inclusive kernel time per round trip, ns:", "",
            "| configuration | round trips/s (profiled) | packets in per round trip | " + " | ".join(groups) + " |",
            "|---|---:|---:|" + "---:|" * len(groups)]
    for name, p in profiled.items():
        rows.append(f"| {name} | {p['per_s']:,.0f} | {p['packets_in_per_round_trip']:.2f} | "
                    + " | ".join(f"{p['ns_per_round_trip'][g]:,.0f}" for g in groups) + " |")
    rows.append("hooks = nf_hook_slow (every netfilter hook, conntrack and rules); conntrack = nf_conntrack_in + "
                "confirm; rules = nft_do_chain; set lookups = nft_lookup_eval; interval set = nft_rbtree_lookup; "
                "fib = nft_fib4_eval(_type). Packets in = received on the host's veth, each through its prerouting hook. Only the samples of the two agents and of ksoftirqd on their CPU count (the softirqs that carry their packets run there).")
    return rows


def reload_rows(bench) -> list[str]:
    if not bench.reloads:
        return []
    rows = ["", f"Reloads of the {bench.args.cidrs:,}-CIDR allowlist (each reload changes it; wall = the command's, "
            "daemon = the reply's reload.duration_ms):", "",
            "| reload | runs | wall ms, median (min–max) | daemon ms, median (min–max) | elements deleted + added |",
            "|---|---:|---:|---:|---:|"]
    for key, row in bench.reloads.items():
        cell = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})" if v else "—"  # noqa: E731
        rows.append(f"| {key} | {len(row['wall_ms'])} | {cell(row['wall_ms'])} | {cell(row['daemon_ms'])} | "
                    f"{statistics.median(row['elements']):,.0f} |")
    rows.append("`nft -f` rows: the reference ruleset's set changed by nft itself (a small change as delete + add of "
                "the differing elements, a whole-list change as flush + add), for scale.")
    return rows


def packets_line(bench) -> list[str]:
    """How many packets a bulk run was: the rules run per packet, not per byte."""
    runs = [r for v in bench.results.values() for r in v["bulk"] if r.get("ok") and r.get("packets_in")]
    if not runs:
        return []
    per_packet = statistics.median(r["bytes"] / r["packets_in"] for r in runs)
    return ["", f"Packets: a bulk run reaches the host in packets of {per_packet / 1024:,.0f} KiB (median; veth "
                f"hands TSO super-packets over whole), so the prerouting rules run about "
                f"{(1 << 30) / per_packet:,.0f} times per GiB; a round trip is one packet in (table below)."]


def report(bench) -> str:
    a, m = bench.args, bench.machine
    size = f"{a.bulk_mib // 1024} GiB" if a.bulk_mib % 1024 == 0 else f"{a.bulk_mib} MiB"
    lines = ["", "## Ringfence host guard benchmark", "",
             bk.machine_line(m) + f"; {m.get('nft', 'nft ?')}; fence from {bench.mode}; agents pinned: {a.pin}"
             + (" — quick mode" if a.quick else ""), "",
             f"Bulk: {size} peer → host on a fenced port, best of {a.reps}. Round trips: {a.rr_size} B request, "
             f"{a.rr_size} B answer, one connection, ≤{a.rr_seconds:g} s per loop, best of {a.rounds} (p50/p99 of that "
             "loop). The configurations take turns, one run each per round, with a no-fence run before, between and after "
             "them. Spread = (max − min) / max of a row's runs; ×none = best / best of the no-fence runs; paired ×none "
             "= each run over the mean of the no-fence runs just before and after it, median (min–max); on the no-fence "
             "row, each no-fence run over the previous one (A/A: the noise).", "", *table(bench), *packets_line(bench), "", "Fence against no fence:", *verdicts(bench),
             *profile_rows(bench), *reload_rows(bench), ""]
    noisy = [f"{n}/{metric} {s:.0%}" for n in bench.results for metric, key in (("bulk", "mb_per_s"), ("rr", "per_s"))
             if (s := spread(samples(bench, n, metric, key))) is not None and s > bk.NOISY_SPREAD]
    lines.append(bk.load_line(m, noisy))
    lines += bk.observations(list(dict.fromkeys(bench.failures)), list(dict.fromkeys(bench.notes)))
    return "\n".join(lines)


def json_data(bench) -> dict:
    return {"machine": bench.machine, "config": {k: v for k, v in vars(bench.args).items() if k != "json"},
            "mode": bench.mode, "allowlist_intervals": len(hr.collapsed(hr.peer_list(bench.lists.main))),
            "results": bench.results, "reloads": bench.reloads, "reload_probes": bench.reload_probes,
            "baseline": {"bulk_mb_per_s": baseline(bench, "bulk", "mb_per_s"),
                         "rr_per_s": baseline(bench, "rr", "per_s")},
            "noise": {"bulk": noise(bench, "bulk", "mb_per_s"), "rr": noise(bench, "rr", "per_s")},
            "paired": {n: {"bulk": paired(bench, n, "bulk", "mb_per_s"), "rr": paired(bench, n, "rr", "per_s")}
                       for n in bench.results},
            "failures": bench.failures, "notes": bench.notes}
