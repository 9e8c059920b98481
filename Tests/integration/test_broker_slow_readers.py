"""The slow-reader denial of service of CVE-2025-30202 (many subscribers that never read), against
the broker (kind = "zmq-xpub") with per-subscriber high-water marks and on_overflow =
"disconnect" (the writer never waits; `block`, the default, is test_broker_flow_control.py's).

200 subscribers from one allowed peer complete the ZMTP handshake, subscribe "" and then never
read a byte; two real vLLM readers (libzmq SUB, in their own processes) read as fast as they
can. Proven here: the writer's sends all complete promptly; the real readers receive every
message, in order and intact (so the broker never stalled its upstream or fan-out on the idle
ones); every idle subscriber is evicted with a `subscriber evicted: queue full` line and its
connection closed; and proxyd's memory stays bounded by one queue's worth of shared messages,
not one per subscriber.
"""

import hashlib
import pickle
import threading
import time

from brokerkit import (GUARD, MiB, Reader, Writer, ZmtpPeer, broker_policy, narrow_host_port_range, start_broker,
                       subscribe_cmd)
from conftest import OK_V4
from relaykit import (OK2_V4, OK2_V6, add_peer, assert_alive, events, is_closed_now, peers, proxyd_pid, rss_bytes,  # noqa: F401
                      wait_closed, wait_event)

KiB = 1 << 10
IDLE = 200
COUNT = 300
MESSAGE = 256 * KiB  # one out-of-band frame; frame 0 (the pickle) is about 100 bytes
HWM_MESSAGES = 50
HWM_BYTES = 64 * MiB
MAX_MESSAGE = 8 * MiB
RCVBUF = 64 * KiB  # the idle subscribers' SO_RCVBUF (the kernel doubles it)
# Messages at least 4 ms apart (at most 64 MB/s of 256 KiB messages): a real reader on this 2-CPU
# machine stays well within the 50-message (12.5 MiB) window. Unpaced, the writer bursts 75 MiB in
# 0.4 s and a reader that loses the CPU for ~65 ms falls a whole window behind, and is then rightly
# evicted (libzmq reconnects it silently and it misses messages).
INTERVAL = 0.004
SEND_LONGEST = 0.5  # seconds: no single send_multipart may take longer (a writer that blocks)
RSS_SLACK = 32 * MiB  # allocator slack, 200 connections' buffers and bookkeeping


def test_200_idle_subscribers_are_evicted_while_the_writer_never_blocks_and_real_readers_get_everything(topo, peers):
    """Policy: max_subscribers = max_subscribers_per_peer = 256, hwm_messages = 50, hwm_bytes =
    64MiB, max_message_bytes = 8MiB. After the vLLM handshake with two real readers (peer_ok and
    a fourth namespace), 200 raw subscribers from peer_ok (SO_RCVBUF 64 KiB) handshake and
    subscribe "" (the writer drains their 200 b"\\x01"), then never read. The writer sends 300
    messages of 256 KiB, at least 4 ms apart.

    - No send takes more than 0.5 s and the 300 complete on schedule (1.2 s, + 5 s).
    - Both real readers get all 300, in order, every frame's sha256 intact.
    - All 200 idle subscribers are evicted (`subscriber evicted: queue full`, queue at most 50
      messages) and see their connection closed. Each could absorb at most tcp_wmem's maximum
      (its socket send buffer in host, read from the sysctl) + 2 x 64 KiB (its receive buffer) +
      50 queued messages, about 17 MiB, far below the 75 MiB sent, so none can escape eviction.
    - proxyd's RSS grows by less than one queue's worth, min(hwm_bytes, hwm_messages x 256 KiB)
      = 12.5 MiB, + max_message_bytes (the message being read from upstream) + 32 MiB of slack.
      The queues hold references to shared messages, and every queue is a window onto the same
      stream that ends at its newest message, so together they hold no more than the longest
      of them. Copies per subscriber would need 200 x 12.5 MiB.
    - The idle subscribers' departures cancel nothing upstream (the readers still hold "")."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    # max_stall well past the run: the evictions here are the high-water marks' (rule=hwm). 200
    # subscribers opened at once from one peer: no accept rate to speak of and no strike bans
    # (their 200 evictions would be 200 strikes), as before the broker had either.
    policy = broker_policy(writer.port, max_subscribers=256, max_subscribers_per_peer=256, on_overflow="disconnect",
                           max_stall="30s", hwm_messages=HWM_MESSAGES, hwm_bytes="64MiB", max_message_bytes="8MiB",
                           accept_rate_per_peer=1_000_000, ban_after=0)
    d = start_broker(topo, policy, writer.port + 10000)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    readers = [Reader(peers, topo.peer_ok, writer.port, name="reader_ok"),
               Reader(peers, okb, writer.port, name="reader_okb")]
    assert writer.wait_subs(2, 10) == [b"\x01", b"\x01"]
    writer.ready()
    for r in readers:
        r.expect_ready(10)

    idle = []
    for _ in range(IDLE):
        p = ZmtpPeer(topo, topo.peer_ok, writer.port, rcvbuf=RCVBUF).open()
        p.sendall(subscribe_cmd(b""))
        idle.append(p)
    assert writer.wait_subs(IDLE, 20) == [b"\x01"] * IDLE

    wmem_max = int(topo.exec(topo.host, "cat", "/proc/sys/net/ipv4/tcp_wmem").stdout.split()[2])
    absorbable = wmem_max + 2 * RCVBUF + HWM_MESSAGES * (MESSAGE + 256)
    assert COUNT * MESSAGE > 2 * absorbable, f"the stream is too small to force evictions ({absorbable} absorbable)"

    pid = proxyd_pid(d)
    baseline = rss_bytes(pid)
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_bytes(pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    since = d.log_size()
    try:
        sent = writer.stream(COUNT, [MESSAGE], interval=INTERVAL)
        assert sent.longest_send < SEND_LONGEST, f"a send took {sent.longest_send:.2f}s: the writer blocked"
        assert sent.elapsed < COUNT * INTERVAL + 5, f"the writer's {COUNT} sends took {sent.elapsed:.1f}s"
        for r in readers:
            r.expect_stream(sent, 60)

        evicted = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            evicted = events(d, "subscriber evicted: queue full", since, guard=GUARD)
            if len(evicted) >= IDLE:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        sampler.join(timeout=2)

    assert len(evicted) == IDLE, f"{len(evicted)} of {IDLE} idle subscribers evicted:\n{d.log()[since:][-3000:]}"
    assert {e["peer"] for e in evicted} == {OK_V4}
    assert all(int(e["queued_messages"]) <= HWM_MESSAGES and int(e["queued_bytes"]) <= HWM_BYTES for e in evicted), \
        evicted[:3]
    for p in idle:
        wait_closed(p.sock, 5)
    growth = peak[0] - baseline
    bound = min(HWM_BYTES, HWM_MESSAGES * MESSAGE) + MAX_MESSAGE + RSS_SLACK
    assert growth < bound, f"proxyd's RSS grew by {growth / MiB:.1f} MiB (bound {bound / MiB:.0f} MiB)"
    assert writer.drain(0.3) == [], "an idle subscriber's departure cancelled the readers' topic upstream"
    for r in readers:
        assert r.nothing_more(0.2) == []
    assert_alive(d)
    print(f"rss baseline {baseline / MiB:.1f} MiB, peak growth {growth / MiB:.1f} MiB; sends took {sent.elapsed:.2f}s, "
          f"the longest {sent.longest_send * 1000:.1f} ms")


DROP_HWM = 50
DROP_COUNT = 200


def test_drop_mode_keeps_a_stalled_subscriber_and_drops_whole_messages_counted_in_the_log(topo, peers):
    """on_overflow = "drop", hwm_messages = 50. A real reader and one raw subscriber from peer_ok
    that stalls (reads nothing) while the writer sends 200 messages of 256 KiB (at least 4 ms
    apart, so the real reader stays within the 50-message window): the reader gets
    all 200; proxyd logs `subscriber queue full: dropping messages` once for the stalled one and,
    within its 5 s interval, `messages dropped` (count=N, dropped_total=the messages it did not
    get). The stalled connection stays open. When it reads, every message it gets is whole
    (two frames, the pickle loading with its buffer, sha256 equal to what was sent), the
    sequence numbers increase, and the ones missing are exactly dropped_total; 5 messages sent
    afterwards all reach it."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    policy = broker_policy(writer.port, on_overflow="drop", hwm_messages=DROP_HWM, hwm_bytes="64MiB",
                           max_message_bytes="8MiB")
    d = start_broker(topo, policy, writer.port + 10000)
    reader = Reader(peers, topo.peer_ok, writer.port, name="reader")
    assert writer.wait_subs(1, 10) == [b"\x01"]
    writer.ready()
    reader.expect_ready(10)
    stalled = ZmtpPeer(topo, topo.peer_ok, writer.port, rcvbuf=RCVBUF).open()
    stalled.sendall(subscribe_cmd(b""))
    assert writer.wait_subs(1, 10) == [b"\x01"]

    since = d.log_size()
    sent = writer.stream(DROP_COUNT, [MESSAGE], interval=INTERVAL)
    reader.expect_stream(sent, 60)
    full = wait_event(d, "subscriber queue full: dropping messages", since, guard=GUARD, peer=OK_V4)
    assert int(full["queued_messages"]) <= DROP_HWM, full
    dropped = wait_event(d, "messages dropped", since, timeout=8, guard=GUARD, peer=OK_V4)
    total = int(dropped["dropped_total"])
    assert 1 <= int(dropped["count"]) <= total, dropped
    assert events(d, "subscriber evicted: queue full", since) == []
    assert not is_closed_now(stalled.sock), "the stalled subscriber was disconnected in drop mode"

    by_seq = dict(zip(sent.seqs, sent.digests))
    got = []
    while not stalled.quiet_for(0.5):
        frames = stalled.read_message(5)
        obj = pickle.loads(frames[0], buffers=frames[1:])
        assert len(frames) == 2 and [hashlib.sha256(f).hexdigest() for f in frames] == by_seq[obj["seq"]], obj["seq"]
        got.append(obj["seq"])
    assert got == sorted(set(got)) and got[0] == sent.first_seq, got
    assert DROP_COUNT - len(got) == total, f"received {len(got)}, dropped_total={total}"
    assert events(d, "messages dropped", since, peer=OK_V4)[-1]["dropped_total"] == str(total)

    after = writer.stream(5, [MESSAGE], interval=INTERVAL)
    reader.expect_stream(after, 20)
    for seq, digests in zip(after.seqs, after.digests):
        frames = stalled.read_message(5)
        assert pickle.loads(frames[0], buffers=frames[1:])["seq"] == seq
        assert [hashlib.sha256(f).hexdigest() for f in frames] == digests
    assert_alive(d)
