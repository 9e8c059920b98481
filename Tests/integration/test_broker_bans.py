"""Strike bans (issue 14, item 3): a peer that a guard refuses or closes again and again (caps,
rate, protocol violations, timeouts, evictions) has its new connections to that guard refused
by nftables for `ban_for`, so that a reconnect storm costs proxyd nothing; its established
connections carry on. Real libzmq readers and a rogue libzmq SUB, the real kernel fence in
namespaces, proxyctl against the daemon (docs/nftables.md, "Strike bans")."""

from __future__ import annotations

import json
import os
import time

from brokerkit import (GUARD, Reader, Writer, ZmtpPeer, broker_policy, narrow_host_port_range, start_broker,
                       subscribe_cmd)
from conftest import HOST_V4, OK_V4, EchoServer
from controlkit import guard_status, proxyctl, proxyctl_json
from relaykit import (STORE_PORT, assert_alive, events, peers, proxyd_pid, relay_policy, start_relay, strike,  # noqa: F401
                      wait_event)

BANNED = "peer banned by guard"
DENIED = "connection denied"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernel_refusals(topo, guard: str) -> int:
    """Packets the guard's strike-ban rules refused (its `GUARD.banned` counter)."""
    out = topo.nft("-j", "list", "counter", "inet", "ringfence", f"{guard}.banned").stdout
    for item in json.loads(out)["nftables"]:
        if "counter" in item:
            return item["counter"]["packets"]
    raise AssertionError(f"no counter {guard}.banned: {out}")


def strike_bans(d, guard: str) -> list[dict]:
    reply = proxyctl_json(d, "bans")
    assert reply["ok"] is True, reply
    return [b for b in reply.get("bans", []) if b.get("guard") == guard]


def test_reconnect_storm_of_a_refused_subscriber_is_refused_by_the_kernel_and_costs_proxyd_nothing(topo, peers):
    """max_subscribers_per_peer = 7: seven libzmq readers from peer_ok read a stream; an eighth
    libzmq SUB from the same host reconnects every 100 ms and is refused at accept (peer-limit).
    After ban_after = 10 strikes the peer is in the kernel set: the rogue's SYNs are refused by
    the kernel (counter grows, proxyd logs no more refusals), proxyd's CPU over the next 3 s
    stays near idle, and the seven readers, established before the ban, still receive.
    `proxyctl bans --json` lists the ban with its guard; `unban` lifts it."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(
        topo, broker_policy(writer.port, max_subscribers_per_peer=7, ban_after=10, ban_window="10s", ban_for="60s"),
        writer.port + 10000)
    readers = [Reader(peers, topo.peer_ok, writer.port, name=f"reader{i}") for i in range(7)]
    writer.wait_subs(1, within=15)
    writer.stream_bg([64], interval=0.05)
    for r in readers:
        r.wait_count(5, timeout=15)

    since = d.log_size()
    rogue = Reader(peers, topo.peer_ok, writer.port, name="rogue")
    ban = wait_event(d, BANNED, since, timeout=15, guard=GUARD, peer=OK_V4)
    assert ban["reason"] == "peer-limit" and ban["strikes"] == "10" and ban["for"] == "60s", ban

    # Refusals still in flight when the ban landed may be logged just after it; then none.
    time.sleep(0.5)
    pid = proxyd_pid(d)
    denied_before = guard_status(d, GUARD)["counters"]["denied"].get("peer-limit", 0)
    refused_before = kernel_refusals(topo, GUARD)
    cpu_before = cpu_seconds(pid)
    counts_before = [len(r.messages) for r in readers]
    time.sleep(3.0)
    cpu = cpu_seconds(pid) - cpu_before
    refused = kernel_refusals(topo, GUARD) - refused_before
    counters = guard_status(d, GUARD)["counters"]
    denied_after = counters["denied"].get("peer-limit", 0)
    print(f"proxyd CPU over 3 s after the ban: {cpu:.3f} s; kernel refused {refused} SYNs; "
          f"proxyd refusals {denied_before} before, {denied_after - denied_before} after")
    assert refused >= 10, f"the kernel refused only {refused} SYNs of the rogue in 3 s"
    assert denied_after == denied_before, "proxyd still accepted (and refused) the rogue's connections after the ban"
    assert counters["banned"] == 1, counters
    # The stream to seven readers costs a little; a storm proxyd had to accept and reset would cost more.
    assert cpu < 0.3, f"proxyd used {cpu:.3f} s of CPU in 3 s after the ban"

    # Established connections of the banned peer carry on.
    for r, before in zip(readers, counts_before):
        r.wait_count(before + 10, timeout=10)
    snapshot = proxyctl_json(d, "peers")
    assert snapshot["ok"] is True

    listed = strike_bans(d, GUARD)
    assert [b["peer"] for b in listed] == [OK_V4], listed
    assert 0 < listed[0]["expires_in_seconds"] <= 60, listed
    table = proxyctl(d, "bans")
    assert table.returncode == 0 and OK_V4 in table.stdout and GUARD in table.stdout, table.stdout

    rogue.proc.stop()
    lifted = proxyctl(d, "unban", OK_V4)
    assert lifted.returncode == 0, lifted.stdout + lifted.stderr
    assert strike_bans(d, GUARD) == []
    wait_event(d, "ban lifted", since, peer=OK_V4, guards=GUARD)
    writer.stop_bg()
    assert_alive(d)


def test_repeated_protocol_violations_ban_the_peer_until_ban_for_runs_out(topo, peers):
    """Garbage greetings against the broker: ban_after = 3 protocol violations ban peer_ok for
    ban_for = 2s. While banned, a new connection is refused by the kernel (reset at connect, no
    accept: proxyd logs nothing); after 2 s it is admitted again. A subscriber established
    before the ban keeps its connection throughout."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(topo, broker_policy(writer.port, ban_after=3, ban_window="10s", ban_for="2s"), writer.port + 10000)
    steady = ZmtpPeer(topo, topo.peer_ok, writer.port).open()

    since = d.log_size()
    for _ in range(3):
        bad = ZmtpPeer(topo, topo.peer_ok, writer.port)
        bad.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\x00" * 64)
        time.sleep(0.2)
        bad.close()
    ban = wait_event(d, BANNED, since, guard=GUARD, peer=OK_V4)
    assert ban["reason"] == "protocol-violation" and ban["for"] == "2s", ban
    banned_at = time.monotonic()

    quiet = d.log_size()
    try:
        ZmtpPeer(topo, topo.peer_ok, writer.port).open(timeout=1.0)
        raise AssertionError("a new connection of the banned peer was admitted")
    except (ConnectionRefusedError, ConnectionResetError, OSError):
        pass
    assert kernel_refusals(topo, GUARD) >= 1
    assert events(d, DENIED, quiet) == [] and events(d, "subscriber closed: protocol violation", quiet) == []

    time.sleep(max(0.0, banned_at + 3.0 - time.monotonic()))
    assert strike_bans(d, GUARD) == []
    again = ZmtpPeer(topo, topo.peer_ok, writer.port).open()
    again.close()
    # The subscriber established before the ban was never closed, and its packets still pass:
    # its subscription reaches the engine.
    assert steady.quiet_for(0.2), "the established subscriber was closed"
    steady.sendall(subscribe_cmd(b"still-here"))
    assert b"\x01still-here" in writer.wait_subs(1, within=5)
    steady.close()
    assert_alive(d)


def test_repeated_tcpstore_gate_violations_ban_the_peer_from_the_relay(topo, peers):
    """The relay's TCPStore gate: three connections that send garbage instead of VALIDATE
    (ban_after = 3) ban peer_ok from the relay's port; the next connection is refused by the
    kernel before the relay accepts it, and `proxyctl bans` lists it under guard "store"."""
    server = EchoServer(topo.host, STORE_PORT)
    try:
        d = start_relay(topo, relay_policy(ban_after=3, ban_for="30s"))
        since = d.log_size()
        for _ in range(3):
            strike(topo, topo.peer_ok)
        ban = wait_event(d, BANNED, since, guard="store", peer=OK_V4)
        assert ban["reason"] == "protocol-violation", ban
        quiet = d.log_size()
        try:
            topo.connect(topo.peer_ok, HOST_V4, STORE_PORT, timeout=2).close()
            raise AssertionError("a new connection of the banned peer reached the relay")
        except (ConnectionRefusedError, ConnectionResetError, OSError):
            pass
        assert kernel_refusals(topo, "store") >= 1
        assert events(d, "connection closed: protocol violation", quiet) == []
        assert [b["peer"] for b in strike_bans(d, "store")] == [OK_V4]
        assert_alive(d)
    finally:
        server.close()


def test_strike_bans_survive_reloads_in_place_and_a_restart(topo, peers):
    """A strike ban of the relay's guard stays in the kernel through a reload that only changes
    the allowlist (set elements over netlink), one that adds a guard (chains rewritten) and a
    restart of proxyd (the table replaced: the ban is read first and put back with the time it
    had left); through all of them the kernel keeps refusing the peer's new connections."""
    server = EchoServer(topo.host, STORE_PORT)
    try:
        policy = relay_policy(protocol="tcpstore", ban_after=2, ban_for="10m")
        d = start_relay(topo, policy)
        since = d.log_size()
        for _ in range(2):
            strike(topo, topo.peer_ok)
        wait_event(d, BANNED, since, guard="store", peer=OK_V4)

        def still_banned(d) -> None:
            listed = strike_bans(d, "store")
            assert [b["peer"] for b in listed] == [OK_V4], listed
            assert 500 < listed[0]["expires_in_seconds"] <= 600, listed
            try:
                topo.connect(topo.peer_ok, HOST_V4, STORE_PORT, timeout=2).close()
                raise AssertionError("a new connection of the banned peer reached the relay")
            except (ConnectionRefusedError, ConnectionResetError, OSError):
                pass

        topo.write_policy(policy.replace('ok = ["10.77.0.2", "fd77::2"]', 'ok = ["10.77.0.2", "fd77::2", "10.77.0.9"]'))
        assert "10.77.0.9" in topo.policy_path.read_text()
        assert 'change="set elements changed"' in d.reload()
        still_banned(d)
        topo.write_policy(policy + '\n[[guard]]\nname = "ssh"\nkind = "firewall"\nport = 22\nallow = []\n')
        assert 'change="chains rewritten"' in d.reload()
        still_banned(d)

        assert d.terminate() == 0
        d2 = start_relay(topo, topo.policy_path.read_text())
        assert 'change="table replaced"' in d2.log()
        still_banned(d2)
        assert_alive(d2)
    finally:
        server.close()
