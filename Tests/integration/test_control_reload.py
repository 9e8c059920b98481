"""`proxyctl reload` against a running proxyd with a TCPStore relay guard and a broker guard:
a reload under load that adds a peer and changes limits loses nothing; a reload that removes a
peer cuts exactly that peer's connections (in the daemon and in the kernel) and lists them; a
dry run lists the same and changes nothing; a bad policy is refused with its positions and
leaves policy, fence and connections as they were."""

import re
import threading
import time

import pytest

from brokerkit import Writer, ZmtpPeer, narrow_host_port_range, subscribe_cmd, Reader
from conftest import HOST_V4, OK_V4, OK_V6, recv_exactly
from controlkit import (BUS_GUARD, STORE_GUARD, guard_status, live_peers, proxyctl, reload, status,
                        two_guard_policy)
from relaykit import OK2_V4, OK2_V6, STORE_PORT, add_peer, assert_alive, events, peers, wait_event  # noqa: F401

ALL_OK = [OK_V4, OK_V6, OK2_V4, OK2_V6]


def echo(s, data: bytes) -> bytes:
    s.sendall(data)
    return recv_exactly(s, len(data))


def start(topo, text: str, writer: Writer):
    d = topo.start_proxyd(text)
    wait_event(d, "relay listening", guard=STORE_GUARD)
    wait_event(d, "broker listening", guard=BUS_GUARD, port=str(writer.port + 10000))
    return d


def test_reload_under_load_adding_a_peer_and_changing_limits_loses_no_byte_and_no_message(topo, peers):
    """A real TCPStore server behind the relay (gate on) and a vLLM-style writer behind the
    broker. A long-lived torch TCPStore client in peer_ok runs rounds of set/get/add/wait/...
    without pause, and a libzmq reader in peer_ok receives a steady stream (one 4 KiB message
    every 2 ms). Meanwhile `proxyctl reload` applies a policy that adds peer_ok2 and changes
    limits on both guards (max_connections_per_peer, hwm_messages, hwm_bytes). The reply lists
    both guards as updated in place, none restarted, nothing cut; every TCPStore round on the
    one connection succeeds; the reader gets every message, in order and intact; neither guard
    was restarted; peer_ok2 can now use the store; and status shows the new limits in force."""
    narrow_host_port_range(topo)
    ok2 = add_peer(topo, "oktwo", OK2_V4, OK2_V6)
    peers.store_server(topo.host)
    writer = Writer(peers, topo.host)
    d = start(topo, two_guard_policy(writer.port), writer)
    reader = Reader(peers, topo.peer_ok, writer.port, name="reader_ok")
    assert writer.wait_subs(1, 10) == [b"\x01"]
    writer.ready()
    reader.expect_ready(10)
    client = peers.client_loop(topo.peer_ok, HOST_V4, tag="steady")
    writer.stream_bg([4096], interval=0.002)

    topo.write_policy(two_guard_policy(
        writer.port, ALL_OK, store={"max_connections_per_peer": 8},
        bus={"hwm_messages": 5000, "hwm_bytes": "512MiB", "max_subscribers_per_peer": 4}))
    replies = []
    reloader = threading.Thread(target=lambda: (time.sleep(0.5), replies.append(reload(d))))
    reloader.start()
    rounds, deadline = 0, time.monotonic() + 2.0
    while time.monotonic() < deadline or reloader.is_alive():
        result = client.request("round")
        assert result["ok"] is True, f"round {rounds}: {result}\nproxyd log:\n{d.log()[-3000:]}"
        rounds += 1
    reloader.join()
    sent = writer.stop_bg()

    (reply,) = replies
    assert reply["ok"] is True, reply
    report = reply["reload"]
    assert sorted(report["updated"]) == [BUS_GUARD, STORE_GUARD], report
    assert report["restarted"] == [] and report["added"] == [] and report["removed"] == [], report
    assert report["cut"] == [], report
    assert any(OK2_V4 in line for line in report["rules"]["added"]), report["rules"]
    assert rounds >= 5 and len(sent.digests) >= 100, (rounds, len(sent.digests))
    reader.expect_stream(sent, 30)
    assert len(events(d, "relay listening")) == 1 and len(events(d, "broker listening")) == 1, "a guard restarted"

    result, _, _ = peers.client_once(ok2, HOST_V4, tag="newpeer")
    assert result["ok"] is True, result
    bus = guard_status(d, BUS_GUARD)
    assert bus["connections"] == 1 and bus["upstream"]["state"] == "connected", bus
    (sub,) = [c for c in live_peers(d) if c["guard"] == BUS_GUARD]
    assert (sub["hwm_messages"], sub["hwm_bytes"]) == (5000, 512 << 20), sub
    assert status(d)["reloads_applied"] == 1
    assert_alive(d)


def connect_both(topo, writer: Writer, ns: str):
    """From `ns`: a relayed connection to the echo server and a raw ZMTP subscriber."""
    relayed = topo.connect(ns, HOST_V4, STORE_PORT)
    assert echo(relayed, b"hello") == b"hello"
    sub = ZmtpPeer(topo, ns, writer.port).open()
    sub.sendall(subscribe_cmd(b""))
    return relayed, sub


def closed(s, timeout: float = 3.0) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(65536) == b""
    except (ConnectionError, OSError):
        return True


def test_reload_removing_a_peer_cuts_exactly_its_connections_and_lists_them_dry_run_first(topo, peers):
    """peer_ok and peer_ok2 each hold a relayed connection (guard store, plain TCP to an echo
    server) and a ZMTP subscription (guard bus). A dry run of a policy without peer_ok2 lists
    exactly peer_ok2's two connections and changes nothing (its connection still echoes, the
    nftables table is the same). The reload itself then cuts the same two, lists them, closes
    them in the daemon and the kernel refuses peer_ok2 from then on, while peer_ok's connections
    carry on: its relayed connection echoes and its subscriber receives the writer's next
    message. `proxyctl peers` lists peer_ok's connections only; status counts one cut per guard."""
    narrow_host_port_range(topo)
    ok2 = add_peer(topo, "oktwo", OK2_V4, OK2_V6)
    topo.echo_server(STORE_PORT)
    writer = Writer(peers, topo.host)
    d = start(topo, two_guard_policy(writer.port, ALL_OK, store_protocol="none"), writer)
    kept_relay, kept_sub = connect_both(topo, writer, topo.peer_ok)
    cut_relay, cut_sub = connect_both(topo, writer, ok2)
    assert len(writer.wait_subs(1, 10)) == 1
    before = live_peers(d)
    assert sorted(c["peer"] for c in before) == sorted([OK_V4, OK_V4, OK2_V4, OK2_V4]), before
    ok2_conns = sorted((c["guard"], c["id"], c["port"]) for c in before if c["peer"] == OK2_V4)
    table_before = topo.table_listing()

    topo.write_policy(two_guard_policy(writer.port, [OK_V4, OK_V6], store_protocol="none"))
    dry = reload(d, "--dry-run")
    assert dry["ok"] is True and dry["reload"]["dry_run"] is True, dry
    assert sorted((c["guard"], c["id"], c["port"]) for c in dry["reload"]["cut"]) == ok2_conns, dry
    assert all(c["reason"] == "not-allowed" and c["peer"] == OK2_V4 for c in dry["reload"]["cut"]), dry
    assert sorted(dry["reload"]["updated"]) == [BUS_GUARD, STORE_GUARD], dry
    assert topo.table_listing() == table_before, "a dry run changed the fence"
    assert echo(cut_relay, b"still here") == b"still here"
    assert len(live_peers(d)) == 4

    applied = reload(d)
    assert applied["ok"] is True and applied["reload"]["dry_run"] is False, applied
    assert sorted((c["guard"], c["id"], c["port"]) for c in applied["reload"]["cut"]) == ok2_conns, applied
    assert closed(cut_relay) and closed(cut_sub.sock), "peer_ok2's connections were not closed"
    assert topo.connect_outcome(ok2, HOST_V4, STORE_PORT) == "refused"
    assert topo.table_listing() != table_before

    assert echo(kept_relay, b"carries on") == b"carries on"
    writer.ready()
    assert kept_sub.read_message(5) == [b"READY"]
    assert sorted(c["peer"] for c in live_peers(d)) == [OK_V4, OK_V4]
    assert guard_status(d, STORE_GUARD)["counters"]["cut_by_reload"] == 1
    assert guard_status(d, BUS_GUARD)["counters"]["cut_by_reload"] == 1
    table = proxyctl(d, "peers")
    assert table.returncode == 0 and OK_V4 in table.stdout and OK2_V4 not in table.stdout, table.stdout
    assert_alive(d)


def running_with_a_relayed_connection(topo, peers):
    """proxyd with both guards (the relay plain TCP to an echo server, the broker before a
    writer) and one relayed connection from peer_ok that has echoed: (daemon, policy, socket)."""
    narrow_host_port_range(topo)
    topo.echo_server(STORE_PORT)
    writer = Writer(peers, topo.host)
    good = two_guard_policy(writer.port, store_protocol="none")
    d = start(topo, good, writer)
    live = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    assert echo(live, b"before") == b"before"
    return d, good, live


BAD_POLICIES = {
    # name: (policy text after the two guards, or a whole file; a pattern of one diagnostic)
    "syntax": ("[[guard]\n", r"policy\.toml:\d+:\d+: "),
    "unknown-key": ('[[guard]]\nname = "x"\nkind = "tcp"\nport = 7000\nallow = []\ncolour = "red"\n',
                    r"policy\.toml:\d+:\d+: guard\[2\]\.colour: "),
    "bad-cidr": ('[[guard]]\nname = "x"\nkind = "firewall"\nports = [7000]\nallow = ["10.0.0.300/24"]\n',
                 r"policy\.toml:\d+:\d+: guard\[2\]\.allow\[0\]: "),
    "host-bits": ('[[guard]]\nname = "x"\nkind = "firewall"\nports = [7000]\nallow = ["10.0.0.1/24"]\n',
                  r"policy\.toml:\d+:\d+: guard\[2\]\.allow\[0\]: "),
    "duplicate-port": (f'[[guard]]\nname = "x"\nkind = "firewall"\nports = [{STORE_PORT}]\nallow = []\n',
                       r"policy\.toml:\d+:\d+: guard\[2\]\.ports?: "),
    "unknown-group": ('[[guard]]\nname = "x"\nkind = "firewall"\nports = [7000]\nallow = ["@nobody"]\n',
                      r"policy\.toml:\d+:\d+: guard\[2\]\.allow\[0\]: "),
    "empty-file": (None, r"policy\.toml(:\d+:\d+)?: "),
}


@pytest.mark.parametrize("kind", list(BAD_POLICIES))
def test_bad_policy_reload_is_refused_with_its_position_and_changes_nothing(topo, peers, kind):
    """A running policy with both guards and a live relayed connection; the file is replaced by a
    bad one (a TOML syntax error, an unknown key, a bad CIDR, a CIDR with host bits, a port
    already guarded, an unknown peer group, an empty file). `proxyctl reload` exits 1 and
    prints the problem as POLICY:LINE:COL: key.path: message; the JSON reply carries the same
    lines with code policy-refused; the nftables table, the connection and the guards are
    untouched; the refusal is counted; SIGHUP is refused the same way."""
    d, good, live = running_with_a_relayed_connection(topo, peers)
    table_before = topo.table_listing()

    extra, pattern = BAD_POLICIES[kind]
    topo.write_policy("" if extra is None else good + "\n" + extra)
    cli = proxyctl(d, "reload")
    assert cli.returncode == 1, cli
    assert re.search(pattern, cli.stderr), cli.stderr
    reply = reload(d)
    assert reply["ok"] is False and reply["error"]["code"] == "policy-refused", reply
    assert any(re.search(pattern, line) for line in reply["error"]["details"]), reply
    assert "policy in force stays" in reply["error"]["message"]

    assert topo.table_listing() == table_before
    assert echo(live, b"after") == b"after"
    assert status(d)["reloads_refused"] == 2
    log = d.reload()  # SIGHUP: the same path
    assert 'msg="reload refused' in log, log
    assert len(events(d, "relay listening")) == 1
    assert_alive(d)


def test_reload_whose_new_guard_cannot_start_is_refused_and_changes_nothing(topo, peers):
    """The new policy adds a relay guard whose listen port another process holds: the reply says
    reload-refused with the port, the fence and the running guards stay, and a live relayed
    connection carries on."""
    d, good, live = running_with_a_relayed_connection(topo, peers)
    topo.echo_server(17001)  # holds the new guard's listen port
    table_before = topo.table_listing()
    topo.write_policy(good + '\n[[guard]]\nname = "late"\nkind = "tcp"\nport = 7001\nlisten_port = 17001\nallow = ["@ok"]\n')
    reply = reload(d)
    assert reply["ok"] is False and reply["error"]["code"] == "reload-refused", reply
    assert "17001" in " ".join(reply["error"]["details"]), reply
    assert topo.table_listing() == table_before
    assert echo(live, b"still relayed") == b"still relayed"
    assert [g["name"] for g in status(d)["guards"]] == [STORE_GUARD, BUS_GUARD]
    assert_alive(d)
