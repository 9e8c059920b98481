#!/usr/bin/env python3
"""Host guard benchmark: what `kind = "host"` (nftables rules on the prerouting hook that every
packet to the host passes) costs on the data path, against no fence at all, and how long
reloading its 10,000-CIDR allowlist takes.

    make bench-host                                  # builds proxyd and proxyctl, then runs (~3 min)
    python3 Benchmarks/host/bench_host.py --bin-dir DIR [--quick] [--json F] [--mode auto|proxyd|nft]

Topology (its own namespaces, removed on every exit):
    rfhbench-PID-host  rfh0 10.77.0.1/24          server agent (ports 29600 fenced, 22 public), proxyd
    rfhbench-PID-peer  eth0 10.77.0.2/24 (allowed), 10.77.0.3/24 (not: the fence's check)
Configurations, set up and torn down in turns, once per round: hook (an empty prerouting chain),
conntrack (one ct rule), the host guard with the peer as its allowlist, the same with 10,000
random CIDRs besides, and a fast-path variant of the latter; with no fence (no table) first, last
and between every two of them. The guard is proxyd's (mode proxyd; auto when `proxyctl check`
accepts the host policy and `proxyctl nft` loads) or the reference ruleset in host_rules.py (mode
nft). Per configuration and round: one bulk run peer -> host (rounds 1..--reps), one 64-byte
request/response loop on one connection (rounds 1..--rounds), and in round 1, with perf, one
profiled loop. Then reloads of the 10,000-CIDR allowlist. See README.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Benchmarks/, for benchkit.py
import benchkit as bk  # noqa: E402
import host_profile  # noqa: E402
import host_reload  # noqa: E402
import host_report  # noqa: E402
import host_rules as hr  # noqa: E402

HERE = Path(__file__).resolve().parent
AGENT = HERE / "host_agent.py"
NS_RE = re.compile(r"rfhbench-(\d+)-(host|peer)")
PIN = {"same": (0, 0), "split": (0, 1), "none": (None, None)}  # (client CPU, server CPU)


class Bench:
    def __init__(self, args):
        self.args = args
        self.results: dict[str, dict] = {}
        self.reloads: dict[str, dict] = {}
        self.reload_probes: dict[str, dict] = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.lists = hr.Allowlists(args.cidrs, args.changed)

    @property
    def has_report(self) -> bool:
        return bool(self.results)

    def report(self) -> str:
        return host_report.report(self)

    def json_data(self) -> dict:
        return host_report.json_data(self)

    # -- set-up ---------------------------------------------------------------------------------

    def nft(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return bk.run("ip", "netns", "exec", self.host, "nft", "-f", "-", input=script, check=check, timeout=60)

    def pick_mode(self) -> str:
        """proxyd if its host guard is there: check accepts the policy and its rules load."""
        if self.args.mode != "auto":
            return self.args.mode
        policy = self.logdir / "probe-policy.toml"
        policy.write_text(hr.host_policy([], str(self.logdir / "control.sock")))
        why = None
        if not all(os.access(p, os.X_OK) for p in (self.proxyd_bin, self.proxyctl)):
            why = f"no proxyd and proxyctl in {self.proxyd_bin.parent}"
        elif (check := bk.run(self.proxyctl, "check", policy, check=False)).returncode != 0:
            why = f"proxyctl check: {check.stderr.strip()[:300]}"
        else:
            rules = bk.run(self.proxyctl, "nft", policy, check=False)
            (self.logdir / "proxyd-rules.nft").write_text(rules.stdout)
            dry = bk.run("ip", "netns", "exec", self.host, "nft", "-c", "-f", "-", input=rules.stdout, check=False)
            if rules.returncode != 0 or dry.returncode != 0:
                why = f"proxyctl nft's rules do not load: {(dry.stderr or rules.stderr).strip()[:300]}"
        if why:
            self.notes.append(f"mode nft (the reference ruleset of host_rules.py): proxyd has no working host guard "
                              f"yet ({why})")
            return "nft"
        return "proxyd"

    def configs(self) -> list[tuple[str, str, int]]:
        """(name, kind, random CIDRs in the allowlist), in the order they run in every round:
        no fence first, last and between every two others, so that each run has a no-fence run
        seconds before and after it."""
        fence = "proxyd" if self.mode == "proxyd" else "nft"
        ladder = [] if self.args.no_ladder else [("hook", "hook", 0), ("conntrack", "conntrack", 0)]
        extra = [("rules", "nft", 0), ("rules-10k", "nft", self.args.cidrs)] if self.args.with_nft and fence == "proxyd" else []
        fast = [] if self.args.no_fast_path else [("fast-10k", "fast", self.args.cidrs)]
        order = [("none", "none", 0)]
        for config in (*ladder, *extra, ("fence", fence, 0), ("fence-10k", fence, self.args.cidrs), *fast):
            order += [config, ("none", "none", 0)]
        return order

    def apply(self, kind: str, cidrs: int):
        """Sets a configuration up; returns what tears it down."""
        if kind in ("hook", "conntrack"):
            self.nft(hr.ladder_ruleset(kind == "conntrack"))
            return lambda: self.nft(f"delete table inet {hr.LADDER_TABLE}\n")
        blocks = self.lists.main if cidrs else []
        if kind in ("nft", "fast"):
            rules = hr.fence_ruleset(blocks) if kind == "nft" or self.mode == "nft" else self.proxyd_rules(blocks)
            self.nft(hr.with_fast_path(rules) if kind == "fast" else rules)
            return lambda: self.nft(f"delete table inet {hr.TABLE}\n")
        if kind == "proxyd":
            started = time.monotonic()
            self.proxyd = bk.start_proxyd(self.proxyd_bin, self.host, hr.host_policy(blocks, str(self.socket)),
                                          self.logdir, [], "")
            bk.log(f"  proxyd serving after {time.monotonic() - started:.1f} s")
            return self.stop_proxyd
        return lambda: None

    def proxyd_rules(self, blocks: list) -> str:
        """What proxyd loads for this allowlist, from `proxyctl nft` (kept in the log directory)."""
        policy = self.logdir / f"rules-{len(blocks)}.toml"
        policy.write_text(hr.host_policy(blocks, str(self.socket)))
        rules = bk.run(self.proxyctl, "nft", policy, timeout=60).stdout
        (self.logdir / f"proxyd-rules-{len(blocks)}.nft").write_text(rules)
        return rules

    def stop_proxyd(self) -> None:
        self.proxyd.stop_after_runs(self.failures, self.notes)
        _, bad = self.proxyd.log_lines()
        if bad:
            self.notes.append(f"proxyd logged {len(bad)} warning/error lines, first: {bad[0][:300]}")
        if bk.run("ip", "netns", "exec", self.host, "nft", "list", "table", "inet", hr.TABLE, check=False).returncode == 0:
            self.failures.append("proxyd left its table behind after SIGTERM (remove_on_exit = true)")
            self.nft(f"delete table inet {hr.TABLE}\n")

    def probes(self, name: str, fenced: bool) -> dict:
        """The peer and the stranger on the fenced port, the stranger on the public one."""
        seen = {}
        for label, source, port in (("peer", hr.PEER_IP, hr.FENCED_PORT), ("stranger", hr.STRANGER_IP, hr.FENCED_PORT),
                                    ("stranger_public", hr.STRANGER_IP, hr.PUBLIC_PORT)):
            answer = self.client.request({"op": "probe", "host": hr.HOST_IP, "port": port, "source": source}, 30)
            seen[label] = answer.get("state", answer.get("error"))
        want = {"peer": "open", "stranger": "refused" if fenced else "open", "stranger_public": "open"}
        if seen != want:
            self.failures.append(f"{name}: probes {seen}, expected {want}")
        return seen

    # -- measurements -----------------------------------------------------------------------------

    def block(self, rnd: int, slot: int, name: str, kind: str, cidrs: int) -> None:
        """One configuration in one round: set up, probes, a bulk run (the first --reps rounds),
        a loop (the first --rounds), and in round 0 the profiled loop; then torn down."""
        a = self.args
        bk.log(f"round {rnd + 1}, {name}" + (f": {kind}" if kind != name else "")
               + (f" with {cidrs:,} CIDRs" if cidrs else ""))
        teardown = self.apply(kind, cidrs)
        entry = self.results.setdefault(name, {"kind": kind, "cidrs": cidrs, "bulk": [], "rr": [], "probes": []})
        try:
            probes = self.probes(name, kind in ("nft", "proxyd", "fast"))
            if rnd == 0:
                entry["probes"] = probes
            if rnd < a.reps:
                packets = self.rx_packets()
                answer = self.client.request({"op": "bulk", "host": hr.HOST_IP, "port": hr.FENCED_PORT,
                                              "bytes": a.bulk_mib << 20, "timeout": a.bulk_timeout},
                                             a.bulk_timeout + 30)
                answer["packets_in"] = self.rx_packets() - packets
                self.keep(name, "bulk", answer, (rnd, slot), lambda r: f"{r['mb_per_s']:,.0f} MB/s ({r['seconds']:.2f} s)")
            if rnd < a.rounds:
                self.keep(name, "rr", self.rr(), (rnd, slot), lambda r: f"{r['per_s']:,.0f} round trips/s, p50 "
                                                                f"{r['p50_us']:.1f} µs, p99 {r['p99_us']:.1f} µs")
            if rnd == 0 and a.perf and "profile" not in entry:
                entry["profile"] = host_profile.profile(self, name)
        finally:
            teardown()

    def rr(self) -> dict:
        a = self.args
        return self.client.request({"op": "rr", "host": hr.HOST_IP, "port": hr.FENCED_PORT, "size": a.rr_size,
                                    "count": a.rr_count, "seconds": a.rr_seconds}, a.rr_seconds + 60)

    def keep(self, name: str, metric: str, answer: dict, at: tuple[int, int], show) -> None:
        answer["round"], answer["slot"] = at
        self.results[name][metric].append(answer)
        if answer.get("ok"):
            bk.log(f"  {metric} #{len(self.results[name][metric])}: {show(answer)}")
        else:
            self.failures.append(f"{name}/{metric}: {answer.get('error')}")
            bk.log(f"  {metric}: FAILED: {answer.get('error')}")

    def rx_packets(self) -> int:
        """Packets the host namespace received on its veth: the packets its prerouting hook saw."""
        out = bk.run("ip", "-n", self.host, "-s", "-j", "link", "show", "rfh0").stdout
        return json.loads(out)[0]["stats64"]["rx"]["packets"]

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        self.proxyd_bin = bk.proxyd_binary(a.bin_dir) if a.mode == "proxyd" else Path(a.bin_dir) / "proxyd"
        self.proxyctl = self.proxyd_bin.parent / "proxyctl"
        self.machine = bk.machine_info(self.proxyd_bin, len(os.sched_getaffinity(0)), {"nft": ["nft", "--version"]})
        self.logdir = bk.make_logdir(a.log_dir, "rfhbench-")
        self.socket = self.logdir / "control.sock"
        bk.sweep_stale(NS_RE)
        self.host, peer = f"rfhbench-{os.getpid()}-host", f"rfhbench-{os.getpid()}-peer"
        bk.add_namespaces(self.host, peer)
        bk.add_veth(self.host, "rfh0", f"{hr.HOST_IP}/{hr.SUBNET_BITS}", peer, f"{hr.PEER_IP}/{hr.SUBNET_BITS}")
        bk.run("ip", "-n", peer, "addr", "add", f"{hr.STRANGER_IP}/{hr.SUBNET_BITS}", "dev", "eth0")
        bk.wait_reachable(peer, hr.HOST_IP, f"{hr.PEER_IP} cannot reach {hr.HOST_IP}")
        self.mode = self.machine["mode"] = self.pick_mode()
        bk.log(f"mode {self.mode}; {a.cidrs:,} random CIDRs = "
               f"{len(hr.collapsed(hr.peer_list(self.lists.main))):,} intervals with the peer, merged")
        client_cpu, server_cpu = PIN[a.pin]
        self.cpus = {c for c in (client_cpu, server_cpu) if c is not None}
        pin = lambda cpu: [] if cpu is None else ["--cpu", str(cpu)]  # noqa: E731
        server = self.server = bk.Agent(AGENT, self.host, "server", self.logdir, "server",
                                        "--ports", f"{hr.FENCED_PORT},{hr.PUBLIC_PORT}", *pin(server_cpu))
        self.client = bk.Agent(AGENT, peer, "client", self.logdir, "client", *pin(client_cpu))
        for agent in (server, self.client):
            if not (hello := agent.read(30)).get("ready"):
                raise bk.BenchError(f"{agent.name}: {hello}")
        for rnd in range(max(a.reps, a.rounds)):  # interleaved: every configuration once per round
            for slot, (name, kind, cidrs) in enumerate(self.configs()):
                self.block(rnd, slot, name, kind, cidrs)
        if self.mode == "proxyd":
            bk.log(f"reloads: proxyd with {a.cidrs:,} CIDRs")
            teardown = self.apply("proxyd", a.cidrs)
            try:
                host_reload.reload_all(self, "proxyd")
            finally:
                teardown()
        bk.log("reference: the same allowlist changes with `nft -f` on the reference ruleset")
        self.nft(hr.fence_ruleset(self.lists.main))
        host_reload.reload_all(self, "nft -f")
        self.nft(f"delete table inet {hr.TABLE}\n")
        self.machine["loadavg_end"] = bk.loadavg()
        return 0


def parse_args(argv=None):
    ap = bk.arg_parser("The host guard's cost on the data path, against no fence, in network namespaces.",
                       "256 MiB, 1 bulk run and 2 loops per configuration, 3 reloads (about a minute)")
    ap.add_argument("--mode", choices=("auto", "proxyd", "nft"), default="auto",
                    help="the fence: proxyd's host guard, or the reference ruleset loaded with nft (default auto)")
    ap.add_argument("--bulk-mib", type=int, help="bulk transfer size (default 1024; quick 256)")
    ap.add_argument("--reps", type=int, help="bulk runs per configuration, best kept (default 3; quick 1)")
    ap.add_argument("--rounds", type=int, help="request/response loops per configuration, best kept (default 5; "
                                               "quick 2)")
    ap.add_argument("--rr-size", type=int, default=64, help="request and answer size in bytes (64)")
    ap.add_argument("--rr-count", type=int, default=1_000_000, help="round trips per loop at most (1,000,000)")
    ap.add_argument("--rr-seconds", type=float, help="time bound per loop (default 2; quick 1)")
    ap.add_argument("--bulk-timeout", type=float, default=60.0, help="time bound per bulk transfer (60 s)")
    ap.add_argument("--cidrs", type=int, default=10_000, help="random CIDRs of the large allowlist (10,000)")
    ap.add_argument("--changed", type=int, default=100, help="blocks a small reload changes (100)")
    ap.add_argument("--reloads", type=int, help="reloads of each kind (default 7; quick 3)")
    ap.add_argument("--pin", choices=tuple(PIN), default="same",
                    help="CPUs of client and server: same (both on CPU 0, default), split (0 and 1), none")
    ap.add_argument("--no-ladder", action="store_true", help="skip the hook and conntrack configurations")
    ap.add_argument("--with-nft", action="store_true", help="in mode proxyd, also run the reference ruleset")
    ap.add_argument("--no-fast-path", action="store_true",
                    help="skip the proposal row (the fence's rules plus `ct state established accept`)")
    ap.add_argument("--no-perf", dest="perf", action="store_false", help="skip the profiled loops")
    ap.add_argument("--perf-hz", type=int, default=4999, help="perf sampling frequency per CPU (4999)")
    bk.add_log_options(ap, "agent, proxyd and perf files")
    args = ap.parse_args(argv)
    quick = args.quick
    for key, full, short in (("bulk_mib", 1024, 256), ("reps", 3, 1), ("rounds", 5, 2), ("rr_seconds", 2.0, 1.0),
                             ("reloads", 7, 3)):
        if getattr(args, key) is None:
            setattr(args, key, short if quick else full)
    if args.perf and not shutil.which("perf"):
        args.perf = False
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return bk.run_bench(Bench(args), args, "bench_host.py")


if __name__ == "__main__":
    sys.exit(main())
