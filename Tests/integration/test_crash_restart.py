"""Crash and restart under load (issue 16, item 3; docs/reliability.md, "Crash and restart").

proxyd brokers a vLLM-like broadcast (a named-port zmq-xpub guard before a libzmq XPUB writer
streaming sequence-numbered messages to two libzmq readers) and relays a real torch TCPStore
through the gate (a torch client doing set/get rounds), with a strike ban and a host-wide ban in
force. Then proxyd is killed with SIGKILL, as a crash: no goodbye, no cleanup.

Proven here, with the real kernel fence in namespaces:
(a) the fence stays: the table is kernel state, so the redirect of the guarded ports still points
    at proxyd's listen ports, now closed: new connections from allowed peers are refused (RST),
    never reaching the engine or the store directly, and so are the denied peer's, the banned
    peers' and direct connections to the listen ports;
(b) a restarted proxyd with the same policy (its start replaces the table in one transaction)
    serves within 1 s of its exec: the readers' libzmq sockets reconnect by themselves and
    receive again, and a new TCPStore connection through the relay reads keys the store kept;
(c) what is lost is measured: the messages sent while nobody was subscribed at the writer (the
    broker's upstream connection died with it), the gap's length, the torch client's cut
    connection (torch does not reconnect it: the next command fails, and so do later ones);
    the strike ban and the host-wide ban survive (kernel state, put back by the restart);
    proxyd's own counters start again from zero.
The second test does the same with a discovered XPUB (a discover guard and the host guard):
the restart finds it again and brokers it within 1 s, its readers receive again.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from brokerkit import GUARD, Reader, Writer, narrow_host_port_range
from conftest import BAD_V4, HOST_V4, HOST_V6, OK_V4, recv_exactly
from controlkit import STORE_GUARD, guard_status, proxyctl_json, two_guard_policy
from relaykit import (OK2_V4, OK2_V6, RELAY_PORT, STORE_PORT, Repeating, add_peer, assert_alive, events, msg_get, strike,  # noqa: F401
                      msg_validate, peers, torch_python, wait_event)

BANNED = "peer banned by guard"
STRIKER_V4, STRIKER_V6 = "10.77.0.5", "fd77::5"  # allowed, then strike-banned by guard "store"
HOST_BANNED = "10.77.0.6"  # banned host-wide with `proxyctl kick --ban`
SERVE_WITHIN = 1.0  # the bound, from the restarted proxyd's exec to serving
STREAM_INTERVAL = 0.01  # the writer sends a message every 10 ms
KEPT_KEY = b"/steady/r1/a"  # set by the torch client's first round (compare_set left "omega")


def store_get(topo, ns: str, key: bytes, timeout: float = 0.5) -> bytes:
    """One raw TCPStore exchange through the relay: VALIDATE, then GET `key`; returns the value
    (raises OSError when the connection is refused or cut)."""
    s = topo.connect(ns, HOST_V4, STORE_PORT, timeout=timeout)
    try:
        s.sendall(msg_validate() + msg_get(key))
        size = int.from_bytes(recv_exactly(s, 8), "little")
        return recv_exactly(s, size)
    finally:
        s.close()


def set_elements(topo, name: str) -> str:
    return topo.nft("list", "set", "inet", "ringfence", name).stdout


def kernel_counter(topo, name: str) -> int:
    """Packets counted by the table's named counter `name`."""
    out = topo.nft("-j", "list", "counter", "inet", "ringfence", name).stdout
    return next(item["counter"]["packets"] for item in json.loads(out)["nftables"] if "counter" in item)


class Knocker(Repeating):
    """Connects from `ns` to HOST_V4:`port` every 2 ms on a thread of its own until stopped,
    counting the outcomes: a banned peer that is allowed must never get `connected`, not even
    while the restarted proxyd replaces the table."""

    def __init__(self, topo, ns: str, port: int):
        super().__init__(0.002, name=f"knock-{ns}")
        self.topo, self.ns, self.port = topo, ns, port
        self.outcomes: dict[str, int] = {}
        # Sockets are made on this thread (in_netns switches the calling thread only).
        self.start()

    def step(self) -> None:
        try:
            outcome = self.topo.connect_outcome(self.ns, HOST_V4, self.port, timeout=0.5)
        except OSError as exc:
            outcome = type(exc).__name__
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def stop(self) -> dict[str, int]:
        self.halt(timeout=5)
        return self.outcomes


def drain_reader(r: Reader) -> None:
    """Records whatever the reader printed so far, without waiting."""
    while r._read(0) is not None:
        pass


def test_kill_9_under_load_fence_stays_restart_serves_within_1s_readers_reconnect_and_loss_is_measured(
        topo, peers, torch_python):
    """Named-port guards: a broker before a writer streaming a message every 10 ms to two
    libzmq readers, a TCPStore relay with a torch client in a loop, a strike ban and a host-wide
    ban; `kill -9`. For 1 s everything is refused and nothing reaches the engine or the store;
    the bans stay in the kernel; the torch client's next command fails. A restart with the same
    policy (a strike-banned, allowed peer knocking every 2 ms is refused throughout) relays a
    GET of a key set before the crash and delivers a message to each reader within 1 s of its
    exec; the readers lose exactly the run of messages from the kill until they were back, none
    after; the cut torch client stays broken, a new one sees the kept keys; both bans are listed
    and the strike ban refuses in the new table; the counters start from zero."""
    narrow_host_port_range(topo)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    striker = add_peer(topo, "okc", STRIKER_V4, STRIKER_V6)
    writer = Writer(peers, topo.host)
    bus_port, bus_listen = writer.port, writer.port + 10000
    peers.store_server(topo.host)
    policy = two_guard_policy(bus_port, [OK_V4, "fd77::2", OK2_V4, OK2_V6, STRIKER_V4, STRIKER_V6],
                              store={"ban_after": 2, "ban_for": "10m"})
    d = topo.start_proxyd(policy)
    wait_event(d, "broker listening", guard=GUARD, port=str(bus_listen))
    wait_event(d, "relay listening", guard=STORE_GUARD, port=str(RELAY_PORT))

    # Load: two vLLM readers on the broadcast, a torch client doing rounds on the store.
    readers = [Reader(peers, topo.peer_ok, bus_port, name="reader_ok"),
               Reader(peers, okb, bus_port, name="reader_okb")]
    assert writer.wait_subs(2, 10) == [b"\x01", b"\x01"]
    writer.ready()
    for r in readers:
        r.expect_ready(10)
    writer.stream_bg([1024], interval=STREAM_INTERVAL)
    steady = peers.client_loop(topo.peer_ok, HOST_V4, tag="steady")
    for _ in range(2):
        assert steady.request("round", timeout=30)["ok"] is True
    assert store_get(topo, topo.peer_ok, KEPT_KEY) == b"omega"

    # Bans: a strike ban of guard "store" and a host-wide ban.
    since = d.log_size()
    for _ in range(2):
        strike(topo, striker)
    wait_event(d, BANNED, since, guard=STORE_GUARD, peer=STRIKER_V4)
    kick = proxyctl_json(d, "kick", HOST_BANNED, "--ban", "10m")
    assert kick["ok"] is True, kick
    for r in readers:
        r.wait_count(30, 15)

    # ---- the crash
    d.proc.kill()
    killed_at = time.monotonic()
    d.proc.wait(timeout=5)
    for r in readers:
        drain_reader(r)
    last_before = [max(m["seq"] for m in r.messages[1:]) for r in readers]

    # (a) during the gap: the table is still there, nothing gets through, nothing is bypassed.
    assert topo.table_listing() is not None, "the kernel table went with proxyd"
    outcomes = {}
    for ns, name in ((topo.peer_ok, "ok"), (okb, "okb"), (topo.peer_bad, "bad"), (striker, "striker")):
        for host, port in ((HOST_V4, bus_port), (HOST_V4, STORE_PORT), (HOST_V6, STORE_PORT),
                           (HOST_V4, RELAY_PORT), (HOST_V4, bus_listen)):
            outcomes[(name, host, port)] = topo.connect_outcome(ns, host, port, timeout=1.0)
    wrong = {k: v for k, v in outcomes.items() if v != "refused"}
    assert not wrong, f"during the gap these were not refused: {wrong}"
    # The readers' libzmq sockets kept retrying all along: none reached the writer directly.
    assert b"\x01" not in writer.drain(0.2), "a subscription reached the writer while proxyd was down"
    direct = [r for port in (bus_port, STORE_PORT)
              for r in topo.exec(topo.host, "ss", "-Htn", "state", "established", f"( sport = :{port} )").stdout.split()
              if any(a in r for a in (OK_V4, OK2_V4, BAD_V4, STRIKER_V4))]
    assert direct == [], f"peers connected to the engine or store directly: {direct}"
    assert STRIKER_V4 in set_elements(topo, f"{STORE_GUARD}.bans_v4"), "the strike ban left the kernel"
    assert HOST_BANNED in set_elements(topo, "bans.v4"), "the host-wide ban left the kernel"
    # The torch client's connection was cut with proxyd: its next command fails.
    cut = steady.request("round", timeout=30)
    assert cut["ok"] is False, cut

    # ---- (b) the restart, same policy; timed from its exec.
    time.sleep(max(0.0, killed_at + 1.0 - time.monotonic()))  # a gap of at least 1 s
    gap_probes_took = time.monotonic() - killed_at
    since_restart = time.monotonic()
    knocker = Knocker(topo, striker, STORE_PORT)
    d2 = topo.start_proxyd(policy, wait=False)
    running_at = store_at = None
    first_after: list[float | None] = [None, None]
    first_seq_after: list[int | None] = [None, None]
    deadline = since_restart + 15
    while time.monotonic() < deadline and (running_at is None or store_at is None or None in first_after):
        if running_at is None and 'msg=running' in d2.log():
            running_at = time.monotonic()
        if store_at is None:
            try:
                if store_get(topo, topo.peer_ok, KEPT_KEY, timeout=0.2) == b"omega":
                    store_at = time.monotonic()
            except (OSError, ConnectionError):
                pass
        for i, r in enumerate(readers):
            if first_after[i] is None:
                while (m := r._read(0)) is not None:
                    if m.get("type") == "msg" and m["seq"] is not None and m["seq"] > last_before[i]:
                        first_after[i], first_seq_after[i] = time.monotonic(), m["seq"]
                        break
        time.sleep(0.005)
    wait_event(d2, "running", timeout=10)
    time.sleep(0.1)
    knocks = knocker.stop()
    assert_alive(d2)
    print(f"the strike-banned peer's connects through the restart: {knocks}")
    assert set(knocks) == {"refused"} and knocks["refused"] >= 20, knocks
    figures = {
        "running": running_at and running_at - since_restart,
        "store": store_at and store_at - since_restart,
        "readers": [t and t - since_restart for t in first_after],
    }
    print(f"restart figures (s from exec): {figures}; gap before restart {gap_probes_took:.2f} s")
    assert running_at is not None and store_at is not None and None not in first_after, figures
    assert 'change="table replaced"' in d2.log()
    slowest = max(store_at, *first_after) - since_restart
    assert slowest <= SERVE_WITHIN, f"the restarted proxyd served only after {slowest:.3f} s: {figures}"

    # The readers carry on: every message after the first one past the gap arrives, in order.
    time.sleep(1.0)
    sent = writer.stop_bg()
    last_sent = sent.first_seq + len(sent.digests) - 1
    lost = []
    for i, r in enumerate(readers):
        deadline = time.monotonic() + 10
        while max(m["seq"] for m in r.messages[1:]) < last_sent and time.monotonic() < deadline:
            r._read(0.2)
        seqs = [m["seq"] for m in r.messages[1:]]
        assert seqs == sorted(set(seqs)), f"{r.name}: duplicates or disorder"
        after = [s for s in seqs if s >= first_seq_after[i]]
        assert after == list(range(first_seq_after[i], last_sent + 1)), f"{r.name} lost messages after the gap"
        missing = sorted(set(range(seqs[0], last_sent + 1)) - set(seqs))
        assert missing == list(range(last_before[i] + 1, first_seq_after[i])), f"{r.name}: gaps {missing[:20]}"
        lost.append(len(missing))
    print(f"messages lost per reader: {lost} (one every {STREAM_INTERVAL * 1000:.0f} ms; "
          f"{[len(r.messages) - 1 for r in readers]} received)")
    assert all(n > 0 for n in lost), "no message was lost: the writer had no subscriber during the gap"

    # TCPStore: the cut client stays cut (torch does not reconnect); a new one sees the kept keys.
    again = steady.request("round", timeout=30)
    print(f"the cut torch client: {cut['error']}: {cut['message'][:120]!r}; "
          f"after the restart: {again.get('error')}: {again.get('message', '')[:120]!r}")
    assert again["ok"] is False, again
    fresh = peers.client_loop(topo.peer_ok, HOST_V4, tag="fresh")
    assert fresh.request("check steady/r1/a", timeout=30) == {"ok": True, "round": 1, "has": True}
    assert fresh.request("round", timeout=30)["ok"] is True

    # (c) bans survive, counters restart.
    bans = proxyctl_json(d2, "bans")
    assert bans["ok"] is True, bans
    by_peer = {b["peer"]: b for b in bans["bans"]}
    assert by_peer[STRIKER_V4].get("guard") == STORE_GUARD, bans
    assert HOST_BANNED in by_peer, bans
    assert topo.connect_outcome(striker, HOST_V4, STORE_PORT, timeout=1.0) == "refused"
    # Refused by the strike-ban rule of the new table (its counter started at zero with it).
    assert kernel_counter(topo, f"{STORE_GUARD}.banned") >= 1
    store_counters = guard_status(d2, STORE_GUARD)["counters"]
    print(f"store counters after the restart: {store_counters}")
    # The two strikes and the probes before the crash are not carried: proxyd counts afresh.
    assert store_counters["violations"] == 0 and store_counters["cut_by_reload"] == 0, store_counters
    assert events(d2, BANNED) == [], "the restarted proxyd banned again"
    assert_alive(d2)



def test_kill_9_with_a_discovered_xpub_the_restart_keeps_it_fenced_brokers_it_again_within_1s_and_no_reader_comes_back_direct(
        topo, peers):
    """A discover guard (and the host guard, as deployed) brokers an XPUB the engine bound on
    port 0; two vLLM ranks read through it. proxyd is killed with SIGKILL: during the gap the
    discover guard's run-time sets stay in the kernel, so the XPUB's port stays redirected to the
    dead broker's listen port and every new connection, allowed or denied, is refused. The
    restart's table replace carries those elements over in the same transaction, so the port
    stays refused until the start-up scan holds it, probes it and redirects it to the new broker,
    within 1 s of the exec: no connection from outside reaches the engine's port directly at any
    instant (a kernel counter of our own, in the input hook, counts them), the denied peer is
    refused throughout, and both readers' libzmq sockets reconnect through the new broker and
    receive the engine's next messages in order (docs/reliability.md, "Crash and restart")."""
    from test_discovery import broker_name, discovery_policy, engine_and_two_ranks
    narrow_host_port_range(topo)
    policy = discovery_policy("tracepoint")
    d = topo.start_proxyd(policy)
    wait_event(d, "discovery watching listeners")
    engine, readers, port = engine_and_two_ranks(topo, peers)
    assert engine.request("subs", key="xpub0", n=2, within=15) == {"subs": ["01", "01"]}
    engine.request("ready", key="xpub0")
    for r in readers:
        r.expect_ready(15)
    first = engine.request("stream", key="xpub0", count=5, sizes=[1024])
    for r in readers:
        r.wait_count(6, 15)
    wait_event(d, "XPUB discovered and brokered", guard=broker_name(port))
    # A witness outside proxyd's table: new connections from outside that reach the engine's
    # port itself (a redirected one reaches the input hook with the broker's listen port).
    topo.nft("-f", "-", input=(
        "table inet rfwitness {\n chain input {\n  type filter hook input priority 10; policy accept;\n"
        f"  iif != \"lo\" tcp dport {port} ct state new counter\n }}\n}}\n"))

    d.proc.kill()
    d.proc.wait(timeout=5)
    bad = Knocker(topo, topo.peer_bad, port)
    ok = Knocker(topo, topo.peer_ok, port)
    time.sleep(1.0)
    gap = {"bad": dict(bad.outcomes), "ok": dict(ok.outcomes)}
    assert set(gap["bad"]) == {"refused"} and set(gap["ok"]) == {"refused"}, f"during the gap: {gap}"

    since, since_wall = time.monotonic(), time.time()
    d2 = topo.start_proxyd(policy, wait=False)
    found = wait_event(d2, "XPUB discovered and brokered", guard=broker_name(port), timeout=15)
    found_after = time.monotonic() - since
    # The allowed knocker stops once the broker is back: connecting every 2 ms, it would get
    # its namespace, which one of the readers shares, banned by the broker's rate limit.
    ok.stopping.set()
    row: dict = {}
    deadline = time.monotonic() + 10
    while row.get("readers_brokered") != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
        row = next((x for x in proxyctl_json(d2, "listeners")["listeners"] if x["port"] == port), {})
    assert row.get("readers_brokered") == 2, f"the readers did not come back through the broker: {row}"
    # When each reader subscribed again, by proxyd's log clock, from the exec.
    subscribed = {}
    for event in events(d2, "subscribed", guard=broker_name(port)):
        subscribed.setdefault(event["peer"], log_time(event["ts"]) - since_wall)
    readers_back = max(subscribed[OK_V4], subscribed[OK2_V4])
    knocks_ok = ok.stop()
    time.sleep(0.3)
    knocks = {"bad": bad.stop(), "ok": knocks_ok}
    print(f"discovered XPUB brokered again {found_after:.3f} s after exec ({found}); "
          f"connects through the restart: {knocks}")
    assert set(knocks["bad"]) == {"refused"}, f"the denied peer got through: {knocks}"
    assert found_after <= SERVE_WITHIN, f"brokered again only after {found_after:.3f} s"
    assert readers_back <= SERVE_WITHIN, f"the readers subscribed through the new broker only after {readers_back:.3f} s"

    second = engine.request("stream", key="xpub0", count=5, sizes=[1024])
    for r in readers:
        got = [m["seq"] for m in r.wait_count(11, 15)[1:]]
        assert got == list(range(first["first_seq"], second["first_seq"] + 5)), f"{r.name}: {got}"
    row = next(x for x in proxyctl_json(d2, "listeners")["listeners"] if x["port"] == port)
    direct = direct_connects(topo)
    print(f"the XPUB after the restart: brokered {row.get('readers_brokered')}, direct {row.get('direct_connections')}; "
          f"readers back through the broker {readers_back:.3f} s after exec; "
          f"new connections that reached the engine's port directly: {direct}")
    assert direct == 0, f"{direct} connections from outside reached the engine's port directly"
    assert row["coverage"] == "brokered" and row["readers_brokered"] == 2 and row["direct_connections"] == 0, row
    assert "released ports whose listener is gone" not in d2.log()
    assert_alive(d2)


def log_time(ts: str) -> float:
    """A log line's `ts` (UTC, milliseconds) as seconds since the epoch."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def direct_connects(topo) -> int:
    """Packets counted by the witness table's counter (new connections to the engine's port itself)."""
    out = topo.nft("-j", "list", "table", "inet", "rfwitness").stdout
    return sum(item["rule"]["expr"][-1]["counter"]["packets"] for item in json.loads(out)["nftables"] if "rule" in item)


def test_kill_9_then_the_xpub_closes_the_restart_releases_the_ports_it_carried_over(topo, peers):
    """The restart carries a discover guard's kernel elements over; a port whose XPUB closed
    while proxyd was down is found by no start-up scan, so the restarted proxyd releases it (and
    says so) instead of leaving it redirected to a broker that is no more: the sets end empty."""
    from test_discovery import GUARD as DISCOVER, Engine, broker_name, discovery_policy
    policy = discovery_policy("tracepoint")
    d = topo.start_proxyd(policy)
    wait_event(d, "discovery watching listeners")
    engine = Engine(peers, topo)
    port = engine.request("bind", key="xpub0")["port"]
    wait_event(d, "XPUB discovered and brokered", guard=broker_name(port))
    d.proc.kill()
    d.proc.wait(timeout=5)
    assert str(port) in set_elements(topo, f"{DISCOVER}.ports")
    assert engine.request("close", key="xpub0") == {"ok": True}

    d2 = topo.start_proxyd(policy)
    released = wait_event(d2, "discovery released ports whose listener is gone", timeout=15)
    assert released["guard"] == DISCOVER and released["ports"] == str(port), released
    assert str(port) not in set_elements(topo, f"{DISCOVER}.ports")
    # The engine's other listeners (its TCPStore, …) are held while the start-up scan probes
    # them, then released too: the sets end empty.
    def listings() -> dict[str, str]:
        return {name: topo.nft("list", "map" if name == "divert" else "set", "inet", "ringfence", f"{DISCOVER}.{name}").stdout
                for name in ("ports", "hold", "divert", "listen")}
    deadline = time.monotonic() + 5
    while any("elements" in text for text in listings().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {name: text for name, text in listings().items() if "elements" in text}
    assert not left, f"the discover guard's sets still hold elements: {left}"
    assert_alive(d2)
