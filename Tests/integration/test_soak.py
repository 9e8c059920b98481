"""The soak (issue 16, item 4; docs/reliability.md, "Soak"): SOAK_SECONDS (default 120; `make soak`
runs 600) of vLLM-like load with churn, hostile peers, kicks and reloads, while proxyd's
descriptors, RSS and threads are sampled every second.

The load: a libzmq XPUB writer (XPUB_VERBOSE) behind a zmq-xpub guard sends a sequence-numbered
vLLM-style message every 5 ms (frames of 64 B to 32 KiB in a cycle) to three libzmq SUB readers in
two allowed namespaces; a real torch TCPStore behind the TCPStore gate serves two long-lived
clients doing set/get/add/wait rounds and a fresh client process every 15 s.
The churn, from a third allowed namespace (HOSTILE) unless said otherwise:
- every 0.5 s one hostile connection in turn: an HTTP request and a bad greeting to the broker, a
  handshake then a frame of 2^63 - 1 bytes, a TCPStore connection that does not VALIDATE, one that
  declares a 2^62-byte value, and connections to either guard that send nothing; each must be
  closed by proxyd (at once, or by handshake_timeout, 2 s here);
- every second the denied namespace connects to both guarded ports (refused by the kernel);
- every 10 s a subscriber that subscribes and never reads (on_overflow = "disconnect": the
  high-water mark or the stall rule must cut it, without stalling the writer or the readers);
- every 7 s `proxyctl kick HOSTILE` (it also holds a validated TCPStore connection to be cut);
- every 3 s a reload, `proxyctl reload` and SIGHUP in turn, between two policies that differ in an
  extra allowed CIDR and in limits of both guards (updated in place; each must be applied).
Required: proxyd alive and its exit on SIGTERM clean; every reader got every message once, in
order, intact; every TCPStore round succeeded; the churn happened (counts); the resources flat
after warm-up within the bounds below; the descriptors back to their count before the churn
once it stops.
"""

from __future__ import annotations

import os
import threading
import time

from brokerkit import Reader, Writer, ZmtpPeer, narrow_host_port_range, subscribe_cmd
from conftest import BAD_V4, HOST_V4
from controlkit import BUS_GUARD, STORE_GUARD, guard_status, live_peers, proxyctl_json, reload, status, two_guard_policy
from relaykit import (OK2_V4, OK2_V6, RELAY_PORT, STORE_PORT, add_peer, assert_alive, msg_validate, peers,  # noqa: F401
                      proxyd_pid, torch_python, wait_event)
from soakkit import (KiB, ReaderCheck, Sampler, StoreRounds, Watch, bad_greeting_to_broker, chain, closed_by_peer,
                     describe, garbage_to_broker, garbage_to_relay, oversized_frame_to_broker, oversized_to_relay, silent,
                     slope_per_minute)

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
WARMUP = max(20.0, 0.2 * SOAK_SECONDS)  # seconds of the churn before the bounds apply
INTERVAL = 0.005  # one message every 5 ms: 200 messages a second
CYCLE = [[64], [1024, 16], [8192], [32768, 256]]  # out-of-band frame sizes, message i: CYCLE[i % 4]
HOSTILE_V4, HOSTILE_V6 = "10.77.0.5", "fd77::5"
EXTRA_CIDR = "10.99.0.0/16"
HOSTILE_EVERY, DENIED_EVERY, IDLE_EVERY, KICK_EVERY, RELOAD_EVERY, CLIENT_EVERY = 0.5, 1.0, 10.0, 7.0, 3.0, 15.0
# The bounds (docs/reliability.md, "Soak"), from runs of 120 s and 600 s: after the warm-up,
# - descriptors at most FD_SLACK above the warm-up's maximum (the churn holds a varying handful of
#   connections: 28 to 37 in all, 30 at rest), and back to their count before the churn once it
#   stops (exactly: every connection proxyd accepted or made is closed);
# - threads at most THREAD_SLACK above the warm-up's maximum: libdispatch's worker pool grows
#   with bursts of blocking work (a reload's nft calls, control requests) and shrinks when idle;
#   5 to 10 were seen;
# - RSS at most RSS_GROWTH_KIB above its level at the end of the warm-up (1.3 to 3.1 MiB seen),
#   and its least-squares slope under RSS_SLOPE_KIB_MIN: 2 MiB/min in runs shorter than 300 s,
#   whose slope is mostly the allocator still settling (350 to 800 KiB/min seen, while the heap
#   in use stays flat under heaptrack), 1 MiB/min in longer ones (130 to 450 seen in 600 s).
#   A leak of 1 KiB per message would be 12 MiB/min; smaller leaks are below this noise and were
#   looked for with heaptrack instead. The slope includes what TOMLKit 0.6.0 still leaks per
#   policy parse, about 0.7 KiB for this policy (copies of its strings and keys), 20 reloads a
#   minute: about 14 KiB/min.
FD_SLACK = 8
THREAD_SLACK = 4
RSS_GROWTH_KIB = 8 * 1024
RSS_SLOPE_KIB_MIN = 2048 if SOAK_SECONDS < 300 else 1024


def soak_policy(writer_port: int, variant: int, ok_peers: list[str]) -> str:
    """Variant 0 and 1 differ only in what a reload updates in place: an extra allowed CIDR and
    limits of both guards. No bans (the hostile peer's strikes would ban it and end the churn)."""
    store = {"handshake_timeout": "2s", "ban_after": 0, "max_connections_per_peer": 64 if variant == 0 else 48}
    bus = {"handshake_timeout": "2s", "ban_after": 0, "on_overflow": "disconnect", "max_stall": "2s",
           "hwm_messages": 1000 if variant == 0 else 1200}
    return two_guard_policy(writer_port, ok_peers + ([EXTRA_CIDR] if variant else []), store=store, bus=bus)


def test_soak_load_churn_kicks_and_reloads_leave_resources_flat_and_lose_nothing(topo, peers, torch_python):
    narrow_host_port_range(topo)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    hostile = add_peer(topo, "okc", HOSTILE_V4, HOSTILE_V6)
    ok_peers = ["10.77.0.2", "fd77::2", OK2_V4, OK2_V6, HOSTILE_V4, HOSTILE_V6]
    writer = Writer(peers, topo.host)
    bus_port = writer.port
    store_server = peers.start(topo.host, "tcpstore_server.py", "0.0.0.0", STORE_PORT, 1, name="tcpstore_server")
    d = topo.start_proxyd(soak_policy(bus_port, 0, ok_peers))
    wait_event(d, "broker listening", guard=BUS_GUARD, port=str(bus_port + 10000))
    wait_event(d, "relay listening", guard=STORE_GUARD, port=str(RELAY_PORT))
    pid = proxyd_pid(d)

    readers = [Reader(peers, topo.peer_ok, bus_port, name="reader_ok1"),
               Reader(peers, topo.peer_ok, bus_port, name="reader_ok2"),
               Reader(peers, okb, bus_port, name="reader_okb")]
    assert writer.wait_subs(3, 15) == [b"\x01"] * 3
    writer.ready()
    for r in readers:
        r.expect_ready(15)
    assert store_server.readline(60) == "ready", store_server.describe()
    # Peers.client_loop, both at once (each imports torch: seconds of CPU).
    procs = [peers.start(ns, "tcpstore_client.py", HOST_V4, STORE_PORT, "--loop", "--tag", tag, name=f"client_loop_{tag}")
             for ns, tag in ((topo.peer_ok, "steady_ok"), (okb, "steady_okb"))]
    for p in procs:
        assert p.read_json(60).get("connected") is True, p.describe()
    loops = [StoreRounds(p, pause=0.2) for p in procs]
    first_seq = writer.request("stream_bg", sizes=[64], interval=INTERVAL, cycle=CYCLE)["first_seq"]
    checks = [ReaderCheck(r, first_seq) for r in readers]

    def open_victim():
        s = topo.connect(hostile, HOST_V4, STORE_PORT)
        s.sendall(msg_validate())
        return s

    victim = open_victim()  # HOSTILE's validated TCPStore connection, cut by every kick, opened again
    time.sleep(1.0)
    baseline_fds = len(os.listdir(f"/proc/{pid}/fd"))
    sampler = Sampler(pid)

    attacks = [(BUS_GUARD, "http", garbage_to_broker), (STORE_GUARD, "no-validate", garbage_to_relay),
               (BUS_GUARD, "bad-greeting", bad_greeting_to_broker), (STORE_GUARD, "huge-value", oversized_to_relay),
               (BUS_GUARD, "huge-frame", oversized_frame_to_broker), (STORE_GUARD, "silent", silent),
               (BUS_GUARD, "silent", silent)]
    watch = Watch()
    idle: list[tuple[ZmtpPeer, float]] = []
    idle_cut: list[float] = []
    idle_overdue: list[str] = []
    denied: dict[str, int] = {}
    kicks: list[int] = []
    reloads = {"proxyctl": 0, "sighup": 0}
    clients: list[dict] = []
    client_threads: list[threading.Thread] = []
    errors: list[str] = []

    def new_client(ns: str, tag: str) -> None:
        result, _, _ = peers.client_once(ns, HOST_V4, tag=tag)
        clients.append(result)

    started = time.monotonic()
    due = dict.fromkeys(("hostile", "denied", "idle", "kick", "reload", "client", "peers"), started)
    n = 0
    while (now := time.monotonic()) < started + SOAK_SECONDS and not errors:
        n += 1
        if now >= due["hostile"]:
            guard, kind, attack = attacks[n % len(attacks)]
            port = bus_port if guard == BUS_GUARD else STORE_PORT
            watch.add(f"{guard}:{kind}", attack(topo, hostile, port, HOST_V4), within=8.0)
            due["hostile"] = now + HOSTILE_EVERY
        if now >= due["denied"]:
            for port in (bus_port, STORE_PORT):
                outcome = topo.connect_outcome(topo.peer_bad, HOST_V4, port, timeout=1.0)
                denied[outcome] = denied.get(outcome, 0) + 1
            due["denied"] = now + DENIED_EVERY
        if now >= due["idle"] and now > started + 2:
            p = ZmtpPeer(topo, hostile, bus_port, rcvbuf=64 * KiB).open()
            p.sendall(subscribe_cmd(b""))
            idle.append((p, now))
            due["idle"] = now + IDLE_EVERY
        if now >= due["kick"] and now > started + 3:
            reply = proxyctl_json(d, "kick", HOSTILE_V4)
            if reply.get("ok") is not True:
                errors.append(f"kick: {reply}")
            kicks.append(len(reply.get("kick", {}).get("cut", [])))
            due["kick"] = now + KICK_EVERY
        if now >= due["reload"] and now > started + 1:
            i = reloads["proxyctl"] + reloads["sighup"]
            topo.write_policy(soak_policy(bus_port, (i + 1) % 2, ok_peers))
            if i % 2 == 0:
                reply = reload(d)
                report = reply.get("reload", {})
                if reply.get("ok") is not True or report.get("restarted") or report.get("cut"):
                    errors.append(f"reload {i} (proxyctl): {reply}")
                reloads["proxyctl"] += 1
            else:
                log = d.reload()
                if "policy reloaded" not in log or "reload refused" in log:
                    errors.append(f"reload {i} (SIGHUP): {log[-2000:]}")
                reloads["sighup"] += 1
            due["reload"] = now + RELOAD_EVERY
        if now >= due["client"]:
            ns = (topo.peer_ok, okb)[len(client_threads) % 2]
            t = threading.Thread(target=new_client, args=(ns, f"new{len(client_threads)}"), daemon=True)
            t.start()
            client_threads.append(t)
            due["client"] = now + CLIENT_EVERY
        if now >= due["peers"] and idle:
            live = {c["port"] for c in live_peers(d) if c["guard"] == BUS_GUARD and c["peer"] == HOSTILE_V4}
            for p, opened in list(idle):
                if p.sock.getsockname()[1] not in live:
                    idle_cut.append(round(now - opened, 1))
                    idle.remove((p, opened))
                    p.close()
                elif now - opened > 20:
                    idle_overdue.append(f"idle subscriber still served after {now - opened:.0f} s")
                    idle.remove((p, opened))
                    p.close()
            due["peers"] = now + 1.0
        if closed_by_peer(victim):
            victim.close()
            victim = open_victim()
        watch.poll()
        for c in checks:
            if c.ended or c.anomalies:
                errors.append(f"{c.reader.name}: {c.ended or c.anomalies}")
        if d.proc.poll() is not None:
            errors.append(f"proxyd exited (rc={d.proc.returncode})")
        time.sleep(0.02)
    churn_seconds = time.monotonic() - started
    assert not errors, f"after {churn_seconds:.0f} s: {errors}\n{d.log()[-4000:]}"
    assert_alive(d)

    # The churn stops: its connections close, and proxyd's descriptors go back to where they were.
    for t in client_threads:
        t.join(timeout=60)
    deadline = time.monotonic() + 5
    while watch.pending and time.monotonic() < deadline:
        watch.poll()
        time.sleep(0.05)
    watch.close_all()
    for p, _ in idle:
        p.close()
    victim.close()
    deadline = time.monotonic() + 10
    while (fds_after := len(os.listdir(f"/proc/{pid}/fd"))) > baseline_fds and time.monotonic() < deadline:
        time.sleep(0.1)
    samples = sampler.stop()

    sent = writer.request("stop_bg", timeout=60)
    last_seq = sent["first_seq"] + sent["sent"] - 1
    for c in checks:
        c.wait_until(last_seq, 30)
    for loop in loops:
        loop.stop()
    bus, store = guard_status(d, BUS_GUARD), guard_status(d, STORE_GUARD)
    daemon = status(d)

    warm = [s for s in samples if s.at <= WARMUP]
    after = [s for s in samples if s.at > WARMUP]
    rss_growth = after[-1].rss_kib - warm[-1].rss_kib
    rss_slope = slope_per_minute([(s.at, s.rss_kib) for s in after])
    print(f"\nsoak: {churn_seconds:.0f} s of churn, {len(samples)} samples, warm-up {WARMUP:.0f} s; "
          f"descriptors {baseline_fds} before the churn, {fds_after} after it")
    for name in ("fds", "rss_kib", "threads"):
        print(f"  {describe(samples, name)}; after the warm-up: {describe(after, name)}")
    print(f"  threads, the most in each minute: {[max(s.threads for s in samples if m * 60 <= s.at < m * 60 + 60) for m in range(int(samples[-1].at // 60) + 1)]}")
    print(f"  RSS after the warm-up: growth {rss_growth} KiB, slope {rss_slope:.0f} KiB/min")
    print(f"  messages: {sent['sent']} sent; received {[c.count for c in checks]}")
    print(f"  TCPStore rounds {[loop.rounds for loop in loops]}, new clients {len(clients)}")
    print(f"  hostile connections closed {watch.closed}, slowest (s) {watch.slowest}")
    print(f"  idle subscribers cut {len(idle_cut)} (after {idle_cut} s); denied connects {denied}")
    print(f"  kicks {len(kicks)}, connections cut by them {sum(kicks)}; reloads {reloads}")
    print(f"  counters: bus {bus['counters']}\n            store {store['counters']}")
    print(f"  refused by the fence: bus {bus.get('fence_refused')}, store {store.get('fence_refused')}")

    # Nothing lost, nothing failed.
    digests = sent["digests"]
    for c in checks:
        assert c.anomalies == [] and c.ended is None, (c.reader.name, c.anomalies, c.ended)
        assert c.count == sent["sent"] and c.hash.hexdigest() == chain(digests), \
            f"{c.reader.name}: {c.count} of {sent['sent']} messages, or a message differs"
    for loop in loops:
        assert loop.failures == [] and loop.rounds >= SOAK_SECONDS, (loop.client.name, loop.rounds, loop.failures[:3])
    assert len(clients) == len(client_threads) and all(c["ok"] is True for c in clients), clients
    # The churn happened, and proxyd closed every hostile connection in time.
    assert watch.overdue == [] and idle_overdue == [], (watch.overdue, idle_overdue)
    assert sum(watch.closed.values()) >= SOAK_SECONDS / HOSTILE_EVERY * 0.8, watch.closed
    assert set(denied) == {"refused"} and denied["refused"] >= SOAK_SECONDS / DENIED_EVERY, denied
    assert bus["fence_refused"] + store["fence_refused"] >= denied["refused"], (bus, store)
    # proxyd counted each hostile connection that sent bad bytes as one violation (silent ones
    # are timeouts, not violations); a kick may have cut one before its bytes were read.
    for g, kinds in ((bus, ("http", "bad-greeting", "huge-frame")), (store, ("no-validate", "huge-value"))):
        sent_bad = sum(watch.closed.get(f"{g['name']}:{k}", 0) for k in kinds)
        assert sent_bad - len(kicks) <= g["counters"]["violations"] <= sent_bad + 2, (g["name"], sent_bad, g["counters"])
    assert len(idle_cut) >= SOAK_SECONDS // IDLE_EVERY - 2 and bus["counters"]["evictions"] >= 1, (idle_cut, bus)
    assert len(kicks) >= SOAK_SECONDS // KICK_EVERY - 1 and all(k >= 1 for k in kicks), kicks
    total_reloads = reloads["proxyctl"] + reloads["sighup"]
    assert daemon["reloads_applied"] == total_reloads and daemon["reloads_refused"] == 0, daemon
    # Flat after the warm-up.
    assert fds_after <= baseline_fds, f"descriptors {fds_after} after the churn, {baseline_fds} before it"
    assert max(s.fds for s in after) <= max(s.fds for s in warm) + FD_SLACK, describe(after, "fds")
    assert max(s.threads for s in after) <= max(s.threads for s in warm) + THREAD_SLACK, describe(after, "threads")
    assert rss_growth <= RSS_GROWTH_KIB, f"RSS grew {rss_growth} KiB after the warm-up"
    assert rss_slope <= RSS_SLOPE_KIB_MIN, f"RSS slope {rss_slope:.0f} KiB/min after the warm-up"
    # A clean exit.
    assert_alive(d)
    assert d.terminate() == 0, d.log()[-3000:]
