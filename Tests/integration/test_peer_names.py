"""Peers by name (`dns:NAME`, `lws:group`) against a real DNS server: dnsmasq in the host
namespace, which `ip netns exec` points proxyd's resolver at through
/etc/netns/NAME/resolv.conf (docs/peer-names.md).

A name's address changes: within the refresh the old address's connections are cut (kernel
fence and relay) and it is refused, the new one admitted. The server stops: the last addresses
stay and status says stale. A name that never resolved admits nobody. A reload resolves a new
name. `lws:group` expands from LeaderWorkerSet's environment as documented."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HOST_V4, OK2_V4, OK_V4, PROXYCTL, check_binaries, recv_exactly
from hostkit import ok_reply, still_echoes, tcp_echo, wait_until

FENCED_PORT = 29500   # kind = "firewall": the kernel fence alone
RELAYED_PORT = 29501  # kind = "tcp": the relay (its allowlist follows the name too)
NOBODY_PORT = 29502   # allow = a name that never resolves
READER = "reader.ringfence.test"
NEVER = "never.ringfence.test"
LATER = "later.ringfence.test"
REFRESH_S = 2  # dns_refresh; the records' TTL (1 s) is shorter, so lookups run every second


def policy(nobody_allow: str = f"dns:{NEVER}") -> str:
    return f"""
[daemon]
dns_refresh = "{REFRESH_S}s"

[peers]
readers = ["dns:{READER}"]

[[guard]]
name = "fenced"
kind = "firewall"
port = {FENCED_PORT}
allow = ["@readers"]

[[guard]]
name = "relayed"
kind = "tcp"
port = {RELAYED_PORT}
allow = ["dns:{READER}"]

[[guard]]
name = "nobody"
kind = "firewall"
port = {NOBODY_PORT}
allow = ["{nobody_allow}"]
"""


class Dnsmasq:
    """dnsmasq in namespace `ns` on 127.0.0.1:53, answering for *.ringfence.test from a hosts
    file with a 1 s TTL (NXDOMAIN for other names under ringfence.test)."""

    def __init__(self, ns: str, tmp: Path):
        self.ns = ns
        self.hosts = tmp / "dns-hosts"
        self.log = tmp / "dnsmasq.log"
        self.proc: subprocess.Popen | None = None

    def serve(self, records: dict[str, str]) -> None:
        self.hosts.write_text("".join(f"{address} {name}\n" for name, address in records.items()))
        if self.proc is None:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                 "--no-resolv", "--no-hosts", f"--addn-hosts={self.hosts}", "--local=/ringfence.test/",
                 "--local-ttl=1", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53",
                 "--user=root", "--pid-file", "--log-queries", f"--log-facility={self.log}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_until(lambda: self.log.exists() and "started" in self.log.read_text(errors="replace"),
                       10, "dnsmasq to start")
        else:
            self.proc.send_signal(signal.SIGHUP)  # re-reads the hosts file, clears its cache

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def dns(topo):
    resolv_dir = Path("/etc/netns") / topo.host
    resolv_dir.mkdir(parents=True, exist_ok=True)
    (resolv_dir / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    server = Dnsmasq(topo.host, topo.tmp)
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            (resolv_dir / "resolv.conf").unlink()
        with contextlib.suppress(OSError):
            resolv_dir.rmdir()


def names(d) -> dict[str, dict]:
    return {entry["name"]: entry for entry in ok_reply(d, "status").get("status", {}).get("names", [])}


def wait_name(d, name: str, state: str, timeout: float = 10.0, addresses: list[str] | None = None) -> dict:
    def reached():
        entry = names(d).get(name)
        return entry if entry and entry["state"] == state and (addresses is None or entry["addresses"] == addresses) else None
    wait_until(reached, timeout, f"{name} to be {state} {addresses or ''} in proxyctl status:\n{names(d)}")
    return names(d)[name]


def held(topo, ns: str, port: int):
    s = topo.connect(ns, HOST_V4, port)
    s.sendall(b"hello")
    assert recv_exactly(s, 5) == b"hello"
    return s


def test_name_change_cuts_the_old_address_and_admits_the_new_one_and_an_outage_keeps_the_last(topo, dns):
    """reader.ringfence.test → peer_ok: it gets through the kernel fence and the relay, peer_ok2
    does not. The record moves to peer_ok2: within the refresh peer_ok's live connections are cut
    on both guards and it is refused, peer_ok2 admitted. dnsmasq stops: status says stale, the last
    address (peer_ok2) stays admitted, peer_ok stays refused."""
    for port in (FENCED_PORT, RELAYED_PORT, NOBODY_PORT):
        tcp_echo(topo, topo.host, port)
    topo.add_peer_ok2()
    dns.serve({READER: OK_V4})
    d = topo.start_proxyd(policy())

    first = wait_name(d, READER, "resolved", addresses=[OK_V4])
    assert sorted(first["guards"]) == ["fenced", "relayed"], first
    live = {port: held(topo, topo.peer_ok, port) for port in (FENCED_PORT, RELAYED_PORT)}
    for port in (FENCED_PORT, RELAYED_PORT):
        assert topo.connect_outcome(topo.peer_ok2, HOST_V4, port) == "refused", port

    dns.serve({READER: OK2_V4})
    moved = time.monotonic()
    wait_name(d, READER, "resolved", timeout=REFRESH_S + 5, addresses=[OK2_V4])
    followed = time.monotonic() - moved
    assert followed <= REFRESH_S + 2, f"the address change took {followed:.1f}s to be noticed"
    wait_until(lambda: all(topo.connect_outcome(topo.peer_ok2, HOST_V4, p) == "connected"
                           for p in (FENCED_PORT, RELAYED_PORT)), 3, "peer_ok2 admitted on both guards")
    for port in (FENCED_PORT, RELAYED_PORT):
        assert topo.connect_outcome(topo.peer_ok, HOST_V4, port) == "refused", port
        assert not still_echoes(live[port]), f"peer_ok's connection to {port} survived the name's move"
    log = d.log()
    assert 'msg="peer name resolved to new addresses; the fence follows"' in log, log
    assert f"removed={OK_V4}" in log and f"added={OK2_V4}" in log, log

    dns.stop()
    stale = wait_name(d, READER, "stale", timeout=REFRESH_S + 5)
    assert stale["addresses"] == [OK2_V4] and stale["error"], stale
    d.wait_for_log(r'msg="peer name does not resolve; its last addresses stay in force \(stale\)"')
    time.sleep(REFRESH_S + 1)  # more failed lookups: nothing changes
    assert names(d)[READER]["state"] == "stale"
    for port in (FENCED_PORT, RELAYED_PORT):
        assert topo.connect_outcome(topo.peer_ok2, HOST_V4, port) == "connected", port
        assert topo.connect_outcome(topo.peer_ok, HOST_V4, port) == "refused", port
    text = subprocess.run([str(PROXYCTL), "status", "--control-socket", d.control_socket],
                          capture_output=True, text=True, timeout=15).stdout
    assert "peer names: 2 (1 stale, 1 unresolved)" in text, text
    assert "last addresses kept" in text and "admits nobody until it resolves" in text, text
    assert d.proc.poll() is None


def test_a_name_that_never_resolved_admits_nobody_until_a_reload_names_one_that_does(topo, dns):
    """never.ringfence.test has no record: the guard naming it refuses everyone and status says
    why. A reload that names later.ringfence.test (which resolves) admits its address at once."""
    tcp_echo(topo, topo.host, NOBODY_PORT)
    dns.serve({READER: OK_V4, LATER: OK_V4})
    d = topo.start_proxyd(policy())
    never = wait_name(d, NEVER, "unresolved")
    assert never["addresses"] == [] and never["error"], never
    d.wait_for_log(r'msg="peer name does not resolve; it admits nobody until it does"')
    for ns in (topo.peer_ok, topo.peer_bad):
        assert topo.connect_outcome(ns, HOST_V4, NOBODY_PORT) == "refused", ns

    topo.write_policy(policy(nobody_allow=f"dns:{LATER}"))
    assert 'msg="policy reloaded"' in d.reload()
    wait_name(d, LATER, "resolved", addresses=[OK_V4])
    assert NEVER not in names(d), "a name the policy no longer has is still followed"
    wait_until(lambda: topo.connect_outcome(topo.peer_ok, HOST_V4, NOBODY_PORT) == "connected", 3,
               "peer_ok admitted through the reloaded name")
    assert topo.connect_outcome(topo.peer_bad, HOST_V4, NOBODY_PORT) == "refused"


def test_lws_group_expands_from_the_leaderworkerset_environment():
    """`proxyctl check` lists what lws:group stands for in a group of three led by
    vllm-0.vllm.default; without LWS's variables the policy is refused with the reason."""
    check_binaries()
    path = Path("/tmp") / f"rfit-lws-{os.getpid()}.toml"
    path.write_text('[[guard]]\nname = "g"\nkind = "firewall"\nport = 29500\nallow = ["lws:group"]\n')
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LWS_")}

        def check(**lws: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(PROXYCTL), "check", str(path)], env=dict(env, **lws),
                                  capture_output=True, text=True, timeout=15)

        inside = check(LWS_LEADER_ADDRESS="vllm-0.vllm.default", LWS_GROUP_SIZE="3")
        assert inside.returncode == 0, inside.stderr
        assert ("peer names, resolved by proxyd at run time (admitting nobody until they resolve): "
                "vllm-0-1.vllm.default, vllm-0-2.vllm.default, vllm-0.vllm.default") in inside.stdout, inside.stdout
        outside = check()
        assert outside.returncode != 0
        assert ":5:10: guard[0].allow[0]: lws:group needs LWS_LEADER_ADDRESS and LWS_GROUP_SIZE" in outside.stderr, outside.stderr
        oversized = check(LWS_LEADER_ADDRESS="vllm-0.vllm.default", LWS_GROUP_SIZE="100000")
        assert oversized.returncode != 0 and "LWS_GROUP_SIZE is '100000'" in oversized.stderr, oversized.stderr
    finally:
        path.unlink()
