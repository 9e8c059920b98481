"""The host benchmark's reloads: with the 10,000-CIDR fence up, rewrite the allowlist and time
the change, `--reloads` times for a small change (`--changed` blocks swapped) and for the whole
list, alternating between two lists so that every reload changes something; then back to the
list the fence started with, and the probes again. Kinds: "proxyd" (`proxyctl reload --json`,
wall time and the reply's reload.duration_ms) and "nft -f" (the reference ruleset's set changed
by nft itself, for scale).
"""

from __future__ import annotations

import json
import time

import benchkit as bk
import host_rules as hr


def reload_all(bench, kind: str) -> None:
    """With the 10k fence up: reloads of `changed` blocks, then of the whole list."""
    for change in ("small", "full"):
        key = f"{bench.args.changed} blocks" if change == "small" else "whole list"
        previous = bench.lists.main
        for i in range(bench.args.reloads):
            blocks = bench.lists.variant(change, i % 2 == 0)
            row = bench.reloads.setdefault(f"{kind}: {key}", {"wall_ms": [], "daemon_ms": [], "elements": []})
            reload_once(bench, kind, row, previous, blocks, change == "full")
            previous = blocks
        if previous is not bench.lists.main:  # back to the list the fence started with
            reload_once(bench, kind, {"wall_ms": [], "daemon_ms": [], "elements": []}, previous, bench.lists.main,
                        change == "full")
    bench.reload_probes[kind] = bench.probes(f"{kind}: after the reloads", True)


def reload_once(bench, kind: str, row: dict, old: list, new: list, full: bool) -> None:
    script, count = hr.set_change_script(old, new, full and kind != "proxyd")
    row["elements"].append(count)
    if kind == "proxyd":
        (bench.logdir / "policy.toml").write_text(hr.host_policy(new, str(bench.socket)))
        argv = [bench.proxyctl, "reload", "--control-socket", bench.socket, "--json"]
        script = None
    else:
        argv = ["ip", "netns", "exec", bench.host, "nft", "-f", "-"]
    started = time.monotonic()
    done = bk.run(*argv, input=script, check=False, timeout=120)
    row["wall_ms"].append((time.monotonic() - started) * 1000)
    if done.returncode != 0:
        raise bk.BenchError(f"reload failed: {(done.stderr or done.stdout).strip()[:500]}")
    if kind == "proxyd":
        reply = json.loads(done.stdout)
        if not reply.get("ok"):
            raise bk.BenchError(f"reload refused: {str(reply)[:500]}")
        row["daemon_ms"].append(reply["reload"]["duration_ms"])
    bk.log(f"  reload: {row['wall_ms'][-1]:.0f} ms" + (f", daemon {row['daemon_ms'][-1]:.1f} ms"
                                                      if row["daemon_ms"] else ""))
