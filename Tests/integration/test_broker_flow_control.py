"""Flow control in the broker (kind = "zmq-xpub"): `on_overflow = "block"` (the default) holds the
engine back instead of losing a message, for at most `max_stall` for a subscriber that takes
nothing; and subscribers that never read cost the broker next to nothing.

The writer is vLLM's (broker_writer.py: XPUB_VERBOSE, the handshake, pickled messages with
out-of-band frames); the readers are libzmq SUBs in their own namespaces. A lossless run needs
a publisher that waits rather than drops (XPUB_NODROP): a held broker closes the engine's TCP
window, and past its own SNDHWM libzmq's XPUB would otherwise drop (docs/zmtp.md).
"""

import os
import time

import pytest

from brokerkit import GUARD, MiB, Reader, Writer, ZmtpPeer, broker_policy, narrow_host_port_range, start_broker, subscribe_cmd
from conftest import OK_V4
from controlkit import guard_status
from relaykit import (OK2_V4, OK2_V6, add_peer, assert_alive, events, peers, proxyd_pid, rss_bytes,  # noqa: F401
                      wait_closed, wait_event)

KiB = 1 << 10
OK3_V4, OK3_V6 = "10.77.0.5", "fd77::5"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (live and gone), in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize(
    "size,count,hwm_messages,delay",
    [(64 * KiB, 3000, 200, 0.0005), (4 * MiB, 60, 1000, 0.03)],
    ids=["64KiB", "4MiB"])
def test_block_holds_a_flat_out_publisher_so_two_slower_readers_get_every_message_and_an_idle_one_is_evicted_after_max_stall(
        topo, peers, size, count, hwm_messages, delay):
    """on_overflow at its default ("block"), max_stall = "1s". A writer with XPUB_NODROP sends
    `count` messages of `size` flat out; two real readers (peer_ok and a fourth namespace, RCVHWM
    10, so that libzmq stops reading their sockets) sleep `delay` after each message, slower than
    the writer; an idle raw subscriber from peer_ok subscribes and never reads.

    - Both readers get every message, in order, every frame intact: nothing dropped, nobody
      evicted but the idle one.
    - The idle subscriber is evicted with `subscriber evicted: no progress` rule=max_stall after
      at least 1 s without taking a message, and its connection is closed.
    - The engine was held back (`engine held back by slow subscribers` episodes >= 1; the
      status counters `holds` > 0), and the writer took at least as long as the readers needed.
    - Having held the engine, the idle subscriber's peer is banned at once (`peer banned by
      guard` reason=stalled-engine): a new connection from peer_ok is refused by the kernel, and
      the reader on peer_ok, connected before, got everything all the same."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host, nodrop=True)
    policy = broker_policy(writer.port, max_stall="1s", hwm_messages=hwm_messages)
    d = start_broker(topo, policy, writer.port + 10000)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    readers = [Reader(peers, topo.peer_ok, writer.port, name="slow_ok", delay=delay, rcvhwm=10),
               Reader(peers, okb, writer.port, name="slow_okb", delay=delay, rcvhwm=10)]
    assert writer.wait_subs(2, 10) == [b"\x01", b"\x01"]
    writer.ready()
    for r in readers:
        r.expect_ready(10)
    idle = ZmtpPeer(topo, topo.peer_ok, writer.port, rcvbuf=64 * KiB).open()
    idle.sendall(subscribe_cmd(b""))
    assert writer.wait_subs(1, 10) == [b"\x01"]

    since = d.log_size()
    sent = writer.stream(count, [size], interval=0.0, timeout=120)
    for r in readers:
        r.expect_stream(sent, 120)
        assert r.nothing_more(0.2) == []
    evicted = events(d, "subscriber evicted: no progress", since, guard=GUARD)
    assert len(evicted) == 1 and evicted[0]["peer"] == OK_V4, f"{evicted}\n{d.log()[since:][-3000:]}"
    assert evicted[0]["rule"] == "max_stall" and int(evicted[0]["stalled_ms"]) >= 1000, evicted[0]
    assert events(d, "subscriber evicted: queue full", since) == []
    wait_closed(idle.sock, 5)
    held = wait_event(d, "engine held back by slow subscribers", since, timeout=8, guard=GUARD)
    assert int(held["episodes"]) >= 1, held
    bus = guard_status(d, GUARD)
    assert bus["counters"]["holds"] >= 1 and bus["counters"]["evictions"] == 1, bus["counters"]
    assert sent.elapsed >= 0.5 * count * delay, f"the writer finished in {sent.elapsed}s: it was never held back"
    ban = wait_event(d, "peer banned by guard", since, guard=GUARD, peer=OK_V4)
    assert ban["reason"] == "stalled-engine", ban
    try:
        ZmtpPeer(topo, topo.peer_ok, writer.port).open(timeout=1.0)
        raise AssertionError("a new connection of the banned peer was admitted")
    except (ConnectionRefusedError, ConnectionResetError, OSError):
        pass
    assert_alive(d)
    print(f"{count} x {size} B: the writer took {sent.elapsed:.2f}s (longest send {sent.longest_send * 1000:.0f} ms); "
          f"held {held['episodes']} times, {held['held_ms']} ms in the first 5 s log")


IDLE = 100
IDLE_COUNT = 1000
PAIRS = 3


def test_100_idle_subscribers_beside_two_real_readers_cost_the_broker_at_most_1_2x_the_cpu_per_message(topo, peers):
    """Policy defaults but max_subscribers = max_subscribers_per_peer = 128, no accept rate and
    no strike bans. A vLLM-like writer and two real readers (a fourth and a fifth namespace)
    after the handshake; after a warm-up, three times: 1,000 messages of 1 MiB with no idle
    subscriber, then 100 raw subscribers from peer_ok (64 KiB receive buffers) subscribe "" and
    never read while 1,000 more go out (they hold the engine, then max_stall evicts them, and the
    next pair starts once all are). Both readers get every message, in order and intact;
    proxyd's CPU seconds per message in the runs beside idle subscribers are at most 1.2 times
    those of the runs without (the medians of three pairs, so that one noisy run on a shared
    machine does not decide; every run is printed). What an idle subscriber costs is fixed (its
    socket buffers filled, its queue up to the mark, its eviction), not per message: the runs
    are long enough for the figure to be per message, not per subscriber."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    # 100 subscribers opened at once from one peer and evicted together, three times: no accept
    # rate to speak of and no strike bans (test_broker_bans.py's), so that every pair measures
    # admitted subscribers that read nothing.
    policy = broker_policy(writer.port, ok_peers=[OK_V4, OK2_V4, OK3_V4], max_subscribers=128,
                           max_subscribers_per_peer=128, accept_rate_per_peer=1_000_000, ban_after=0)
    d = start_broker(topo, policy, writer.port + 10000)
    readers = [Reader(peers, add_peer(topo, "okb", OK2_V4, OK2_V6), writer.port, name="reader_okb"),
               Reader(peers, add_peer(topo, "okc", OK3_V4, OK3_V6), writer.port, name="reader_okc")]
    assert writer.wait_subs(2, 10) == [b"\x01", b"\x01"]
    writer.ready()
    for r in readers:
        r.expect_ready(10)
    pid = proxyd_pid(d)

    def run() -> float:
        before = cpu_seconds(pid)
        sent = writer.stream(IDLE_COUNT, [MiB], interval=0.0, timeout=120)
        for r in readers:
            r.expect_stream(sent, 120)
        return (cpu_seconds(pid) - before) / IDLE_COUNT * 1e6

    run()  # a warm-up: both measured kinds of run start with the broker's buffers in use
    quiet: list[float] = []
    busy: list[float] = []
    for _ in range(PAIRS):
        quiet.append(run())
        since = d.log_size()
        idle = []
        for _ in range(IDLE):
            p = ZmtpPeer(topo, topo.peer_ok, writer.port, rcvbuf=64 * KiB).open()
            p.sendall(subscribe_cmd(b""))
            idle.append(p)
        assert writer.wait_subs(IDLE, 20) == [b"\x01"] * IDLE
        busy.append(run())
        deadline = time.monotonic() + 10
        while len(events(d, "subscriber evicted: no progress", since, guard=GUARD)) < IDLE:
            assert time.monotonic() < deadline, f"idle subscribers not evicted:\n{d.log()[since:][-3000:]}"
            time.sleep(0.1)
        for p in idle:
            wait_closed(p.sock, 5)
    ratio = sorted(busy)[PAIRS // 2] / sorted(quiet)[PAIRS // 2]
    print(f"proxyd CPU per 1 MiB message: alone {', '.join(f'{x:.0f}' for x in quiet)} us; beside {IDLE} idle "
          f"subscribers {', '.join(f'{x:.0f}' for x in busy)} us; x{ratio:.2f}; rss {rss_bytes(pid) / MiB:.0f} MiB")
    assert ratio <= 1.2, f"beside idle subscribers {busy} us per message, alone {quiet}"
    for r in readers:
        assert r.nothing_more(0.2) == []
    assert_alive(d)
