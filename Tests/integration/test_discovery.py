"""Discovery (`discover = true` on a zmq-xpub guard): the engine's XPUBs on port 0 are brokered
from their first connection, with no port in the policy, against real libzmq, a real torch
TCPStore and gloo, and real nftables in namespaces made here.

The engine (peers/vllm_engine.py, in `host`, its command line containing "vllm_engine") starts
as vLLM 0.33 does: a TCPStore on port 0, then each MessageQueue's XPUB with XPUB_VERBOSE on
10.77.0.1:0, its port published at once through the store. Each remote rank
(peers/vllm_rank.py, in an allowed namespace) waits on the store for that port and connects
within a millisecond of learning it. Every test runs twice: with the tracepoint, and with
polling forced (`[daemon] listener_watch = "polling"`), where a reader may be faster than
discovery; then it must be counted as direct, never hidden.
"""

from __future__ import annotations

import time

import pytest

from brokerkit import MiB, Reader, narrow_host_port_range
from conftest import BAD_V4, HOST_V4, OK_V4, OK_V6
from controlkit import metrics_page, proxyctl, proxyctl_json, status
from relaykit import OK2_V4, OK2_V6, NsProcess, add_peer, assert_alive, events, peers, wait_event  # noqa: F401

GUARD = "tp"
HANDSHAKE_WITHIN = 15.0

pytestmark = pytest.mark.parametrize("watch", ["tracepoint", "polling"])


METRICS_PORT = 9464


def discovery_policy(watch: str, *, process: str = "vllm_engine", public: list[int] | None = None,
                     allow: str = "@ok", discover: bool = True) -> str:
    """A discover guard for the engine's XPUBs and a host guard fencing everything else, both
    for the allowed namespaces only (the discover guard's `allow` can be narrowed; without
    `discover` the policy has the host guard alone)."""
    lines = [
        "[daemon]",
        f'listener_watch = "{"auto" if watch == "tracepoint" else "polling"}"',
        f'metrics_listen = "{HOST_V4}:{METRICS_PORT}"',
        "",
        "[peers]",
        f'ok = ["{OK_V4}", "{OK_V6}", "{OK2_V4}", "{OK2_V6}"]',
        "",
    ]
    if discover:
        lines += [
            "[[guard]]",
            f'name = "{GUARD}"',
            'kind = "zmq-xpub"',
            "discover = true",
            f'process = "{process}"',
            f'allow = ["{allow}"]',
            "",
        ]
    return "\n".join(lines + [
        "[[guard]]",
        'name = "host"',
        'kind = "host"',
        'allow = ["@ok"]',
        f"public = {public or []}",
    ]) + "\n"


def start(topo, watch: str, **kw):
    narrow_host_port_range(topo)
    d = topo.start_proxyd(discovery_policy(watch, **kw))
    found = wait_event(d, "discovery watching listeners")
    assert found["method"] == watch, f"discovery uses {found['method']}, not {watch}: {d.log()[-2000:]}"
    return d


class Engine:
    """peers/vllm_engine.py in `host`."""

    def __init__(self, peers, topo):
        self.proc: NsProcess = peers.start(topo.host, "vllm_engine.py", HOST_V4, name="vllm_engine",
                                          env={"GLOO_SOCKET_IFNAME": "br0"})
        hello = self.proc.read_json(60)
        assert "store_port" in hello, f"the engine did not start: {hello}: {self.proc.describe()}"
        self.store_port: int = hello["store_port"]
        self.pid: int = hello["pid"]

    def request(self, op: str, timeout: float = 30.0, **fields) -> dict:
        import json
        self.proc.proc.stdin.write(json.dumps(dict(op=op, **fields)) + "\n")
        self.proc.proc.stdin.flush()
        reply = self.proc.read_json(timeout)
        assert "error" not in reply or op == "subs", f"engine {op}: {reply}: {self.proc.describe()}"
        return reply


def rank(peers, ns: str, engine: Engine, key: str, name: str, rank_: int = 1, world: int = 1) -> Reader:
    """A vllm_rank.py in `ns`, as a Reader once it printed "connected" (after the port came)."""
    reader = Reader.__new__(Reader)
    reader.name = name
    reader.proc = peers.start(ns, "vllm_rank.py", HOST_V4, engine.store_port, HOST_V4, key, "--rank", rank_,
                              "--world", world, name=name, env={"GLOO_SOCKET_IFNAME": "eth0"})
    reader.messages, reader.taken = [], 0
    return reader


def wait_connected(reader: Reader, timeout: float = 30.0, pg: bool = False) -> int:
    if pg:
        first = reader.proc.read_json(timeout)
        assert first.get("type") == "pg" and first["sum"] == 3.0, f"{reader.name}: {first}: {reader.proc.describe()}"
    line = reader.proc.read_json(timeout)
    assert line.get("type") == "connected", f"{reader.name}: {line}: {reader.proc.describe()}"
    return line["port"]


def listeners(d) -> list[dict]:
    reply = proxyctl_json(d, "listeners")
    assert reply["ok"] is True, reply
    return reply["listeners"]


def row(d, port: int) -> dict:
    rows = [r for r in listeners(d) if r["port"] == port]
    assert rows, f"no listener on port {port} in `proxyctl listeners`"
    return rows[0]


def engine_and_two_ranks(topo, peers) -> tuple[Engine, list[Reader], int]:
    """The engine, two vLLM ranks (peer_ok and okb) started before it binds its XPUB `xpub0` on
    port 0, and that port, once both ranks have connected to it."""
    engine = Engine(peers, topo)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    readers = [rank(peers, topo.peer_ok, engine, "xpub0", "rank_ok"), rank(peers, okb, engine, "xpub0", "rank_okb")]
    port = engine.request("bind", key="xpub0")["port"]
    for r in readers:
        assert wait_connected(r) == port
    return engine, readers, port


def broker_name(port: int) -> str:
    return f"{GUARD}/{HOST_V4}:{port}"


def brokered_and_direct(d, port: int, readers: int, watch: str) -> tuple[int, int]:
    """The XPUB's row: brokered by its own broker; with the tracepoint every reader went through
    it, with polling a reader may be direct, but brokered + direct is every reader and a direct
    one was warned about in the log."""
    deadline = time.monotonic() + 10
    while True:
        r = row(d, port)
        assert r["coverage"] == "brokered" and r["guard"] == broker_name(port), r
        assert r["class"] == "zmtp" and r["socket_type"] == "XPUB", r
        if r["readers_brokered"] + r["direct_connections"] == readers or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r["readers_brokered"] + r["direct_connections"] == readers, r
    if watch == "tracepoint":
        assert r["direct_connections"] == 0, f"a reader reached the engine before its broker: {r}"
    if r["direct_connections"]:
        assert events(d, "readers connected to the XPUB before its redirect was live: they are direct, not brokered",
                      guard=broker_name(port)), d.log()[-3000:]
    return r["readers_brokered"], r["direct_connections"]


def test_xpub_on_port_zero_is_brokered_from_the_first_reader_and_the_handshake_counts_only_real_readers(
        topo, peers, watch):
    """proxyd first, then the engine: two ranks in allowed namespaces connect within a
    millisecond of learning the XPUB's port from the store. The writer's blocking recv() count
    gets exactly two subscriptions (the probe is never one), READY and 20 vLLM-style messages of
    1 MiB reach both whole and in order; the XPUB is brokered by `tp/10.77.0.1:PORT`, shown in
    status, `proxyctl listeners` and /metrics; a denied namespace cannot reach the port, and
    `proxyctl explain` names the discover guard as what refuses it; the store's port was probed
    and found silent."""
    d = start(topo, watch)
    engine, readers, port = engine_and_two_ranks(topo, peers)

    subs = engine.request("subs", key="xpub0", n=2, within=HANDSHAKE_WITHIN)
    assert subs == {"subs": ["01", "01"]}, subs
    assert engine.request("drain", key="xpub0", wait=0.5) == {"subs": []}, "more subscriptions than readers"
    engine.request("ready", key="xpub0")
    for r in readers:
        r.expect_ready(15)
    sent = engine.request("stream", key="xpub0", count=20, sizes=[MiB], timeout=60)
    for r in readers:
        for seq, digests in zip(range(sent["first_seq"], sent["first_seq"] + 20), sent["digests"]):
            (m,) = r.take(1, 30)
            assert m["seq"] == seq and m["sha"] == digests, f"{r.name}: {m}"

    found = wait_event(d, "XPUB discovered and brokered", guard=broker_name(port))
    assert found["process"].find("vllm_engine") >= 0, found
    brokered, direct = brokered_and_direct(d, port, 2, watch)
    guards = {g["name"]: g for g in status(d)["guards"]}
    assert guards[broker_name(port)]["connections"] == brokered
    assert guards[broker_name(port)]["direct_connections"] == direct
    assert status(d)["discovery"]["method"] == watch
    assert f'guard="{broker_name(port)}"' in metrics_page(topo, HOST_V4, METRICS_PORT)
    assert topo.connect_outcome(topo.peer_bad, HOST_V4, port) == "refused"
    explained = proxyctl_json(d, "explain", BAD_V4, str(port))["explain"]
    assert (explained["verdict"], explained["guard"]) == ("refused", GUARD), explained
    store = [r for r in listeners(d) if r["port"] == engine.store_port]
    assert store and all(r["class"] == "silent" and r["coverage"] == "fenced" and r["guard"] == "host"
                         for r in store), store
    assert_alive(d)


def test_two_engines_each_get_their_own_broker_and_a_closed_xpub_takes_its_broker_and_rules_with_it(
        topo, peers, watch):
    """Two engine processes bind an XPUB each: two brokers, each its own upstream and readers.
    One XPUB closes: its broker leaves status and its port leaves the guard's kernel sets; the
    other engine is killed: its broker goes too; the first binds again on a new port: a new
    broker, and a new reader goes through it."""
    d = start(topo, watch)
    first, second = Engine(peers, topo), Engine(peers, topo)
    ports = [first.request("bind", key="a")["port"], second.request("bind", key="b")["port"]]
    for port in ports:
        wait_event(d, "XPUB discovered and brokered", guard=broker_name(port))
    readers = [rank(peers, topo.peer_ok, first, "a", "rank_a"), rank(peers, topo.peer_ok, second, "b", "rank_b")]
    for r, engine, key in zip(readers, (first, second), ("a", "b")):
        wait_connected(r)
        assert engine.request("subs", key=key, n=1, within=HANDSHAKE_WITHIN) == {"subs": ["01"]}
        engine.request("ready", key=key)
        r.expect_ready(15)
    names = {g["name"] for g in status(d)["guards"]}
    assert {broker_name(p) for p in ports} <= names

    since = d.log_size()
    first.request("close", key="a")
    wait_event(d, "discovered XPUB closed; its broker and redirect are gone", since, guard=broker_name(ports[0]))
    assert broker_name(ports[0]) not in {g["name"] for g in status(d)["guards"]}
    listing = topo.nft("list", "set", "inet", "ringfence", f"{GUARD}.ports").stdout
    assert str(ports[0]) not in listing and str(ports[1]) in listing, listing

    since = d.log_size()
    second.proc.proc.kill()
    second.proc.proc.wait(timeout=10)
    wait_event(d, "discovered XPUB closed; its broker and redirect are gone", since, guard=broker_name(ports[1]))
    assert broker_name(ports[1]) not in {g["name"] for g in status(d)["guards"]}

    again = first.request("bind", key="a2")["port"]
    wait_event(d, "XPUB discovered and brokered", since, guard=broker_name(again))
    late = rank(peers, topo.peer_ok, first, "a2", "rank_a2")
    wait_connected(late)
    assert first.request("subs", key="a2", n=1, within=HANDSHAKE_WITHIN) == {"subs": ["01"]}
    brokered_and_direct(d, again, 1, watch)
    assert_alive(d)


def test_tcpstore_and_gloo_on_port_zero_keep_working_while_discovery_probes_them(topo, peers, watch):
    """The engine's TCPStore on port 0 and a gloo group of three (the engine and two remote
    ranks: init_process_group and all_reduce) work while discovery runs; their listeners
    were probed and classified silent (never sent a byte: the probe only speaks after a ZMTP
    signature) and left to the host guard."""
    d = start(topo, watch)
    engine = Engine(peers, topo)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    ranks = [rank(peers, topo.peer_ok, engine, "xpub0", "rank1", 1, 3),
             rank(peers, okb, engine, "xpub0", "rank2", 2, 3)]
    assert engine.request("pg", world=3, timeout=90) == {"sum": 3.0}
    port = engine.request("bind", key="xpub0")["port"]
    for r in ranks:
        assert wait_connected(r, pg=True) == port
    assert engine.request("subs", key="xpub0", n=2, within=HANDSHAKE_WITHIN) == {"subs": ["01", "01"]}
    rows = {r["port"]: r for r in listeners(d) if r["pid"] == engine.pid}
    assert rows[port]["coverage"] == "brokered", rows
    probed = [r for p, r in rows.items() if p != port and r["coverage"] != "loopback"]
    assert engine.store_port in rows and len(probed) >= 2, f"the engine's store and gloo listeners are missing: {rows}"
    for r in probed:
        assert r["class"] == "silent" and r["coverage"] == "fenced" and r["guard"] == "host", r
    assert_alive(d)


def test_an_xpub_whose_process_stalls_before_it_accepts_the_probe_is_still_brokered(topo, peers, watch):
    """The engine stops itself (SIGSTOP) right after binding its XPUB and is continued 500 ms
    later, as a container throttled at its CPU limit stalls: the probe's connection waits in the
    XPUB's accept queue far past the probe's 100 ms deadline. proxyd sees it is not yet accepted,
    waits on, and brokers the XPUB once libzmq greets; it is never taken for a silent listener
    and released."""
    import os
    import signal

    d = start(topo, watch)
    engine = Engine(peers, topo)
    since = d.log_size()
    engine.proc.proc.stdin.write('{"op": "bind", "key": "stalled", "stop": true}\n')
    engine.proc.proc.stdin.flush()
    deadline = time.monotonic() + 10
    while "\tT" not in open(f"/proc/{engine.pid}/status").read().split("State:", 1)[1].split("\n", 1)[0]:
        assert time.monotonic() < deadline, "the engine did not stop itself"
        time.sleep(0.005)
    time.sleep(0.5)
    os.kill(engine.pid, signal.SIGCONT)
    port = engine.proc.read_json(30)["port"]
    found = wait_event(d, "XPUB discovered and brokered", since=since, guard=broker_name(port))
    assert float(found["ms_probed"]) >= 400, found
    r = row(d, port)
    assert r["coverage"] == "brokered" and r["class"] == "zmtp" and r["socket_type"] == "XPUB", r
    # (The engine's TCPStore, probed while the engine was stopped too, is rightly found silent
    # once it accepts: only the XPUB's own listener is looked at here.)
    assert not events(d, "listener is not a ZMTP XPUB; left to the kernel fence", since=since,
                      listener=f"{HOST_V4}:{port}"), d.log()[-3000:]


def test_listeners_json_gives_every_listener_its_class_and_coverage(topo, peers, watch):
    """`proxyctl listeners --json`: the engine's XPUB (zmtp XPUB, brokered by its broker), its
    ROUTER (zmtp ROUTER, fenced by the host guard), its store (on `::`: silent, fenced), a listener on a
    public port (public), one on loopback (loopback), proxyd's own broker listener (proxyd); a
    process the guard's `process` does not name is not probed (unprobed, fenced)."""
    d = start(topo, watch, public=[8080])
    engine = Engine(peers, topo)
    xpub = engine.request("bind", key="x")["port"]
    router = engine.request("router", key="r")["port"]
    wait_event(d, "XPUB discovered and brokered", guard=broker_name(xpub))
    wait_event(d, "listener is not a ZMTP XPUB; left to the kernel fence", guard=GUARD, listener=f"{HOST_V4}:{router}")
    public = topo.echo_server(8080)
    loopback = peers.start(topo.host, "listen.py", "127.0.0.1", 7777, name="loopback_listener")
    assert loopback.readline(30) == "ready"
    other = peers.start(topo.host, "listen.py", HOST_V4, 7778, name="other_listener")
    assert other.readline(30) == "ready"
    time.sleep(0.3)
    rows = {(r["address"], r["port"]): r for r in listeners(d)}

    def check(key, cls, coverage, guard=None, socket_type=None):
        r = rows.get(key)
        assert r is not None, f"{key} missing from {sorted(rows)}"
        assert (r["class"], r["coverage"], r.get("guard"), r.get("socket_type")) == (cls, coverage, guard, socket_type), r

    check((HOST_V4, xpub), "zmtp", "brokered", broker_name(xpub), "XPUB")
    check((HOST_V4, router), "zmtp", "fenced", "host", "ROUTER")
    check(("::", engine.store_port), "silent", "fenced", "host")
    check(("127.0.0.1", 7777), "unprobed", "loopback")
    check((HOST_V4, 7778), "unprobed", "fenced", "host")
    listen = [g for g in status(d)["guards"] if g["name"] == broker_name(xpub)][0]["listen_port"]
    assert any(r["coverage"] == "proxyd" for (a, p), r in rows.items() if p == listen), rows
    assert any(r["coverage"] == "public" for (a, p), r in rows.items() if p == 8080), rows
    text = proxyctl(d, "listeners")
    assert text.returncode == 0 and broker_name(xpub) in text.stdout, text.stdout + text.stderr
    public.close()
    assert_alive(d)


def test_a_reload_narrows_discovered_brokers_in_place_and_removing_the_guard_retires_them(topo, peers, watch):
    """A reload that takes okb out of the discover guard's allowlist cuts okb's reader at the
    broker and keeps the broker and peer_ok's reader; a reload without the discover guard
    retires the broker and empties the guard's kernel sets (gone with the guard)."""
    d = start(topo, watch)
    engine = Engine(peers, topo)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    port = engine.request("bind", key="x")["port"]
    wait_event(d, "XPUB discovered and brokered", guard=broker_name(port))
    readers = [rank(peers, topo.peer_ok, engine, "x", "rank_ok"), rank(peers, okb, engine, "x", "rank_okb")]
    for r in readers:
        wait_connected(r)
    assert engine.request("subs", key="x", n=2, within=HANDSHAKE_WITHIN) == {"subs": ["01", "01"]}
    assert row(d, port)["readers_brokered"] == 2

    topo.write_policy(discovery_policy(watch, allow=OK_V4))
    assert "policy reloaded" in d.reload()
    deadline = time.monotonic() + 10
    while row(d, port)["readers_brokered"] != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    r = row(d, port)
    assert r["coverage"] == "brokered" and r["readers_brokered"] == 1, r
    assert topo.connect_outcome(okb, HOST_V4, port) == "refused"
    engine.request("ready", key="x")
    readers[0].expect_ready(15)

    since = d.log_size()
    topo.write_policy(discovery_policy(watch, discover=False))
    assert "policy reloaded" in d.reload()
    wait_event(d, "discovered XPUB's broker retired", since, guard=broker_name(port))
    assert broker_name(port) not in {g["name"] for g in status(d)["guards"]}
    assert "discovery" not in status(d)
    assert topo.nft("list", "set", "inet", "ringfence", f"{GUARD}.ports", check=False).returncode != 0
    assert_alive(d)
