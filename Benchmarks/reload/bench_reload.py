#!/usr/bin/env python3
"""Reload benchmark: how long `proxyctl reload` takes for a policy of 10,000 CIDRs while 1,000
relayed connections are live, and whether any of them is lost.

Topology (made here, removed on every exit): namespace rfrbench-PID-host (10.79.0.1: proxyd,
an echo server on port 29500) and rfrbench-PID-peer (10.79.0.2: one process holding N
connections to 10.79.0.1:29500, redirected to proxyd's relay guard "store"). The guard's
allowlist is the peer plus `--cidrs` - 1 other /25s that never merge into larger intervals.

Three kinds of reload, each `--reps` times, alternating between two policies so that every
reload changes something, with the clients echoing round-robin over all connections meanwhile:
  allowlist  100 of the CIDRs replaced (only the differing set elements change, over netlink);
  limits     max_connections_per_peer changed as well (the guard takes it in place);
  structure  a firewall-only guard added and removed (chains rewritten in place, sets shrunk
             and grown around it).
Reported per kind: the daemon's own duration (parse to last guard updated, from the reply),
proxyctl's wall time, and the connections lost (echo errors during, failed checks after).

  sudo python3 Benchmarks/reload/bench_reload.py --bin-dir "$(swift build -c release --show-bin-path)"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchkit as bk  # noqa: E402

AGENT = Path(__file__).resolve().parent / "reload_agent.py"
HOST, PEER = "10.79.0.1", "10.79.0.2"
PORT = 29500


def cidrs(count: int, shift: int = 0) -> list[str]:
    """`count` /25s, none adjacent to another: 10.(128+k/256).(k%256).0/25 from k = shift."""
    return [f"10.{128 + (k // 256)}.{k % 256}.0/25" for k in range(shift, shift + count)]


def policy(args, variant: int, kind: str) -> str:
    others = cidrs(args.cidrs - 1 - 100) + cidrs(100, shift=args.cidrs + 200 * (variant % 2))
    allow = ", ".join(f'"{c}"' for c in [PEER] + others)
    per_peer = args.connections + (10 if kind == "limits" and variant % 2 else 0)
    text = (f'[daemon]\ncontrol_socket = "{args.socket}"\n\n'
            f'[[guard]]\nname = "store"\nkind = "tcp"\nport = {PORT}\nprotocol = "none"\n'
            f"max_connections = {args.connections + 100}\nmax_connections_per_peer = {per_peer}\n"
            f"accept_rate_per_peer = 100000\nallow = [{allow}]\n")
    if kind == "structure" and variant % 2:
        text += '\n[[guard]]\nname = "extra"\nkind = "firewall"\nports = [7000]\nallow = ["10.79.0.0/24"]\n'
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--cidrs", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kinds", default="allowlist,limits,structure", help="which reloads, comma-separated")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_reload.py needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    proxyd = bk.proxyd_binary(args.bin_dir)
    proxyctl = proxyd.parent / "proxyctl"
    logdir = bk.make_logdir(None, "rfrbench")
    args.socket = str(logdir / "control.sock")
    host, peer = f"rfrbench-{os.getpid()}-host", f"rfrbench-{os.getpid()}-peer"
    processes: list[subprocess.Popen] = []
    try:
        bk.add_namespaces(host, peer)
        bk.add_veth(host, "rfr0", f"{HOST}/24", peer, f"{PEER}/24")
        bk.wait_reachable(peer, HOST, "peer cannot reach host")
        echo = subprocess.Popen(bk.in_ns(host, sys.executable, str(AGENT), "echo", str(PORT)),
                                stdout=subprocess.PIPE, text=True)
        processes.append(echo)
        echo.stdout.readline()
        daemon = bk.start_proxyd(proxyd, host, policy(args, 0, "allowlist"), logdir, ["store"], "relay listening")
        clients = subprocess.Popen(bk.in_ns(peer, sys.executable, str(AGENT), "clients", HOST, str(PORT),
                                            str(args.connections)),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(clients)

        def ask(command: str | None = None) -> dict:
            if command:
                clients.stdin.write(command + "\n")
                clients.stdin.flush()
            line = clients.stdout.readline()
            if not line:
                raise bk.BenchError("the clients' process ended")
            return json.loads(line)

        ready = ask()
        bk.log(f"{ready['ready']} connections relayed; {args.cidrs} CIDRs in the allowlist")
        results = {}
        variant = 0
        for kind in args.kinds.split(","):
            durations, walls, errors, echoes = [], [], [], 0
            for _ in range(args.reps):
                variant += 1
                (logdir / "policy.toml").write_text(policy(args, variant, kind))
                clients.stdin.write("start\n")
                clients.stdin.flush()
                time.sleep(0.2)
                began = time.monotonic()
                reply = subprocess.run([str(proxyctl), "reload", "--json", "--control-socket", args.socket],
                                       capture_output=True, text=True, timeout=60)
                walls.append((time.monotonic() - began) * 1000)
                time.sleep(0.2)
                stopped = ask("stop")
                parsed = json.loads(reply.stdout)
                if not parsed.get("ok"):
                    raise bk.BenchError(f"reload refused: {parsed}")
                durations.append(parsed["reload"]["duration_ms"])
                errors += stopped["errors"]
                echoes += stopped["echoes"]
            check = ask("check")
            results[kind] = {"daemon_ms": durations, "proxyctl_ms": walls, "echo_errors": errors,
                             "echoes_during": echoes, "alive_after": check["ok"], "lost_after": check["lost"]}
            bk.log(f"{kind}: daemon {statistics.median(durations):.1f} ms median, "
                   f"{len(errors)} errors, {check['ok']} of {args.connections} alive")
        print(f"## Reload: {args.cidrs} CIDRs, {args.connections} live relayed connections, {args.reps} reloads each\n")
        print("| reload | daemon ms (median / max) | proxyctl ms (median) | connections alive after | errors during | target |")
        print("|---|---|---|---|---|---|")
        ok = True
        for kind, r in results.items():
            median = statistics.median(r["daemon_ms"])
            good = median < 100 and not r["echo_errors"] and r["alive_after"] == args.connections
            ok &= good
            print(f"| {kind} | {median:.1f} / {max(r['daemon_ms']):.1f} | {statistics.median(r['proxyctl_ms']):.1f} | "
                  f"{r['alive_after']} / {args.connections} | {len(r['echo_errors'])} | "
                  f"{'met' if good else 'MISSED'} |")
        for kind, r in results.items():
            for e in r["echo_errors"][:5] + r["lost_after"][:5]:
                print(f"- {kind}: {e}")
        print(f"\n{os.cpu_count()} CPUs, kernel {os.uname().release}; proxyd {proxyd}")
        return 0 if ok else 1
    finally:
        for p in processes:
            bk.stop_process(p)
        if "daemon" in locals():
            daemon.stop()
        bk.CLEANUP.run()


if __name__ == "__main__":
    sys.exit(main())
