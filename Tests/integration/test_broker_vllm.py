"""vLLM's MessageQueue through the broker (kind = "zmq-xpub"), with real libzmq on both sides.

The writer is what vLLM 0.33's `MessageQueue` does on the engine: an XPUB with XPUB_VERBOSE
bound on the host's IP at port 0 (the guard's port is the one it got), one blocking recv() per
expected remote reader, then send(b"READY"), then multipart messages (a protocol-5 pickle and
its out-of-band buffers of 1 MiB and more). The readers are vLLM's remote readers: a SUB that
subscribes "", connects to the engine's address from another namespace (redirected by the
kernel to the broker), asserts the first message is b"READY" and then decodes every message
with `pickle.loads(frame0, buffers=frames[1:])`.

Proven here: the handshake completes with exactly one subscription per reader; every reader
gets every message whole, in order and intact, large messages and a late reader's backlog of
small ones (whose frames the broker copies into each subscriber's own buffers), with the broker
waiting on the engine's socket (`busy_poll`, the default) and without; a denied peer that connects first takes no slot
in the writer's count (the kernel fence stops it before the broker); and when the engine
restarts on the same port, the broker reconnects and subscribes again on behalf of readers that
stayed connected, so the new writer counts them and they receive its READY and messages; and
while the engine cannot be reached at all, the broker's retries cost proxyd no descriptors.
"""

import hashlib
import os
import socket
import time

import pytest

from brokerkit import (GUARD, MiB, Reader, Writer, ZmtpPeer, broker_policy, frame, narrow_host_port_range, start_broker,
                       subscribe_cmd)
from conftest import BAD_V4, HOST_V4, OK_V4, new_socket
from relaykit import OK2_V4, OK2_V6, add_peer, assert_alive, events, peers, proxyd_pid, wait_event  # noqa: F401

HANDSHAKE_WITHIN = 10.0  # seconds for both readers' subscriptions to reach the writer


def two_readers(topo, peers, port: int) -> tuple[Reader, Reader]:
    """vLLM readers in peer_ok and in a fourth allowed namespace, "okb" (10.77.0.4)."""
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)
    return (Reader(peers, topo.peer_ok, port, name="reader_ok"),
            Reader(peers, okb, port, name="reader_okb"))


def test_vllm_handshake_then_50_multipart_messages_reach_both_readers_whole_in_order_and_intact(topo, peers):
    """Writer on 10.77.0.1:<ephemeral>, proxyd guarding that port (default limits, default
    listen_port = port + 10000), two readers from two allowed namespaces. The writer's two
    blocking recv() calls return b"\\x01" each (one SUBSCRIBE "" per reader) and nothing more
    comes; both readers then get b"READY"; then 50 messages of three frames (pickle, 1 MiB,
    3 MiB of random bytes) reach both readers, read concurrently in their own processes: every
    sequence number in order, every frame's sha256 equal to what the writer sent, every pickle
    loading with its out-of-band buffers. proxyd logged one `subscribed` per reader, topic ""."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(topo, broker_policy(writer.port), writer.port + 10000)
    readers = two_readers(topo, peers, writer.port)

    assert writer.wait_subs(2, HANDSHAKE_WITHIN) == [b"\x01", b"\x01"]
    assert writer.drain(0.3) == [], "more subscriptions than readers reached the writer"
    writer.ready()
    for r in readers:
        r.expect_ready(10)

    sent = writer.stream(50, [MiB, 3 * MiB])
    for r in readers:
        r.expect_stream(sent, 60)
        assert all(m["frames"] == 3 and m["sizes"][1:] == [MiB, 3 * MiB] for m in r.messages[1:])
    for r in readers:
        assert r.nothing_more(0.3) == [], f"{r.name} received messages nobody sent"

    for peer in (OK_V4, OK2_V4):
        assert len(events(d, "subscribed", guard=GUARD, peer=peer, topic="")) == 1, d.log()[-3000:]
    assert_alive(d)


def read_messages(peer: ZmtpPeer, count: int, timeout: float) -> list[list[bytes]]:
    """`count` data messages from a raw ZMTP subscriber, parsed straight from its socket (the
    peer's own frame reader copies its buffer per frame: too slow for megabytes)."""
    buf = bytearray(peer.buf)
    peer.buf = b""
    pos, messages, frames = 0, [], []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        if len(buf) - pos >= 2:
            flags = buf[pos]
            head, size = (9, int.from_bytes(buf[pos + 1:pos + 9], "big")) if flags & 0x02 else (2, buf[pos + 1])
            assert flags & 0xF8 == 0 and size <= 16 * MiB, \
                f"a corrupt frame header after {len(messages)} messages: flags {flags:#x}, size {size}"
            if len(buf) - pos >= head + size:
                body = bytes(buf[pos + head:pos + head + size])
                pos += head + size
                if not flags & 0x04:  # commands (PING) are not part of any message
                    frames.append(body)
                    if not flags & 0x01:
                        messages.append(frames)
                        frames = []
                continue
        left = deadline - time.monotonic()
        assert left > 0, f"{len(messages)} of {count} messages within {timeout} s"
        peer.sock.settimeout(left)
        try:
            chunk = peer.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError(f"{len(messages)} of {count} messages within {timeout} s") from None
        assert chunk, f"EOF after {len(messages)} of {count} messages"
        del buf[:pos]
        pos = 0
        buf += chunk
    return messages


@pytest.mark.parametrize("busy_poll", [None, "0s"], ids=["waits-on-engine", "dispatch-only"])
def test_late_reader_gets_a_backlog_of_3000_small_and_mixed_messages_whole_in_order_and_intact(topo, peers, busy_poll):
    """A subscriber (ZMTP by hand, 64 KiB receive buffer) subscribes "" and then does not read
    while the writer sends 3000 messages of a pickle and two out-of-band frames of 200 B and
    1500 B (paced at about 3000/s: an unpaced burst overflows the writer's own XPUB high-water
    mark, and libzmq drops messages there). The pickle and the 200 B frame are under the
    broker's 1 KiB copy limit, so they are copied into the subscriber's own buffers, where the
    backlog joins into runs that are written in part, extended and reused; the 1500 B frame is
    shared by reference. Then it reads: every message arrives in order with every frame's
    sha256 intact. With busy_poll at its default ("2ms": the broker sleeps in ppoll on the
    engine's socket) and at "0s" (Dispatch wakes it for every read)."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    # Nothing may be evicted: this test is about the bytes of a backlog, not high-water marks.
    settings = {"hwm_messages": 100000, "max_stall": "30s"} | ({} if busy_poll is None else {"busy_poll": busy_poll})
    d = start_broker(topo, broker_policy(writer.port, **settings), writer.port + 10000)
    peer = ZmtpPeer(topo, topo.peer_ok, writer.port, rcvbuf=64 << 10).open()
    peer.sendall(subscribe_cmd(b""))
    assert writer.wait_subs(1, HANDSHAKE_WITHIN) == [b"\x01"]
    writer.ready()
    assert read_messages(peer, 1, 10) == [[b"READY"]]

    sent = writer.stream(3000, [200, 1500], interval=0.0003)
    got = read_messages(peer, len(sent.digests), 60)
    for index, (frames, digests) in enumerate(zip(got, sent.digests)):
        assert [hashlib.sha256(f).hexdigest() for f in frames] == digests, f"message {index} of the backlog differs"
    assert peer.quiet_for(0.3), "more bytes than the writer sent"
    assert_alive(d)


def test_denied_subscriber_connecting_first_takes_no_slot_in_the_writers_reader_count(topo, peers):
    """vLLM's writer counts any subscription message as a reader (§1.4 of the fact sheet): a
    rogue SUB that subscribes first would get the count satisfied and the real readers would
    miss READY. Here a libzmq SUB in peer_bad (not allowed) connects first and keeps retrying
    for a second: the kernel fence refuses it (a raw connect from peer_bad is refused), the
    writer receives nothing, proxyd never admits or subscribes 10.77.0.3; only once both real
    readers have connected does the writer's count of 2 complete, both get READY and then the
    messages, and the denied SUB receives nothing at all."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(topo, broker_policy(writer.port), writer.port + 10000)

    bad = Reader(peers, topo.peer_bad, writer.port, name="reader_bad")
    assert writer.drain(1.0) == [], "a subscription reached the writer before any allowed reader connected"
    try:
        topo.connect(topo.peer_bad, "10.77.0.1", writer.port, timeout=2).close()
        raise AssertionError("peer_bad could connect to the guarded port")
    except ConnectionRefusedError:
        pass

    readers = two_readers(topo, peers, writer.port)
    assert writer.wait_subs(2, HANDSHAKE_WITHIN) == [b"\x01", b"\x01"]
    writer.ready()
    for r in readers:
        r.expect_ready(10)
    sent = writer.stream(5, [MiB])
    for r in readers:
        r.expect_stream(sent, 20)

    assert bad.nothing_more(0.5) == [], "the denied subscriber received messages"
    assert writer.drain(0.3) == []
    for msg in ("subscriber admitted", "subscribed", "subscriber closed: protocol violation"):
        assert events(d, msg, peer=BAD_V4) == [], f"{msg!r} logged for the denied peer:\n{d.log()[-3000:]}"
    assert_alive(d)


def test_engine_restart_on_the_same_port_broker_resubscribes_for_connected_readers_and_they_get_the_new_ready(topo, peers):
    """After a first writer's handshake and 5 messages, the writer is killed (SIGKILL, as an
    engine crash). proxyd logs `upstream lost; reconnecting`, then `upstream unreachable;
    retrying` while nothing listens; a new writer binds the same port and proxyd logs `upstream
    connected ... subscriptions=2`. The new writer's count of 2 completes (b"\\x01" twice: the
    broker subscribed again for the two readers, who never reconnected: no subscriber was
    closed or admitted meanwhile), and both readers receive its READY and its 5 messages
    intact, in order."""
    narrow_host_port_range(topo)
    first = Writer(peers, topo.host, name="writer1")
    port = first.port
    d = start_broker(topo, broker_policy(port), port + 10000)
    readers = two_readers(topo, peers, port)
    assert first.wait_subs(2, HANDSHAKE_WITHIN) == [b"\x01", b"\x01"]
    first.ready()
    for r in readers:
        r.expect_ready(10)
    sent = first.stream(5, [MiB])
    for r in readers:
        r.expect_stream(sent, 20)

    since = d.log_size()
    first.kill()
    wait_event(d, "upstream lost; reconnecting", since, guard=GUARD)
    wait_event(d, "upstream unreachable; retrying", since, guard=GUARD)

    second = Writer(peers, topo.host, port=port, name="writer2")
    wait_event(d, "upstream connected", since, guard=GUARD, subscriptions="2")
    assert second.wait_subs(2, HANDSHAKE_WITHIN) == [b"\x01", b"\x01"]
    assert second.drain(0.3) == []
    second.ready()
    for r in readers:
        r.expect_ready(10)
    sent = second.stream(5, [MiB, 2 * MiB])
    for r in readers:
        r.expect_stream(sent, 20)

    for msg in ("subscriber admitted", "subscriber closed", "subscriber closed: protocol violation",
                "subscriber closed: timeout", "subscriber evicted: queue full"):
        assert events(d, msg, since) == [], f"{msg!r} during the restart:\n{d.log()[since:]}"
    assert_alive(d)


def test_broker_whose_engine_is_down_retries_for_30s_and_proxyds_descriptor_count_stays_flat(topo):
    """A broker guard with a fixed upstream on a network the host has no route to (the engine's
    network is down: every connect fails at once, ENETUNREACH) retries with its backoff (100 ms
    doubling to 5 s: a dozen attempts in 30 s). proxyd's descriptors, counted in /proc/PID/fd
    once the first attempts have failed and again 30 s later, do not grow: each failed attempt
    closes its socket (it used to leak one per attempt). The log shows the attempts went on: the
    first three failures and the tenth."""
    port = 45321
    engine = "10.78.0.1"  # no route from the host namespace
    d = start_broker(topo, broker_policy(port, upstream=f"{engine}:{port}"), port + 10000)
    pid = proxyd_pid(d)
    wait_event(d, "upstream unreachable; retrying", guard=GUARD)
    time.sleep(2)  # a few attempts in, the daemon's own descriptors all open
    before = len(os.listdir(f"/proc/{pid}/fd"))
    time.sleep(30)
    after = len(os.listdir(f"/proc/{pid}/fd"))
    failures = events(d, "upstream unreachable; retrying", guard=GUARD)
    assert len(failures) >= 4, f"fewer than 10 attempts logged in 32 s:\n{d.log()[-4000:]}"
    assert "unreachable" in failures[0]["error"].lower(), failures[0]
    assert after <= before, f"proxyd's descriptors grew from {before} to {after} over {len(failures)}+ failed connects"
    assert_alive(d)


def test_a_bad_frame_from_the_engine_after_whole_messages_in_the_same_read_delivers_them_then_reconnects(topo, peers):
    """A hand-made engine (greeting and READY as an XPUB) sends, in one write, two whole
    messages and then a frame with reserved flag bits. The broker hands both messages to the
    reader, as a libzmq SUB would deliver them, before it drops the upstream connection
    (`upstream lost; reconnecting`); the reader's own connection carries on."""
    narrow_host_port_range(topo)
    server = new_socket(topo.host, socket.AF_INET)
    topo.sockets.append(server)
    server.bind((HOST_V4, 0))
    server.listen(4)
    port = server.getsockname()[1]
    d = start_broker(topo, broker_policy(port), port + 10000)
    reader = Reader(peers, topo.peer_ok, port)
    server.settimeout(10)  # the broker connects upstream for its first reader
    engine = ZmtpPeer.accepted(server.accept()[0]).open(socket_type=b"XPUB")
    flags, body = engine.read_frame(10)
    assert (flags, body) == (0x04, b"\x09SUBSCRIBE"), (flags, body)
    since = d.log_size()
    engine.sendall(frame(b"one") + frame(b"two") + bytes([0x10, 0]))
    got = reader.wait_count(2, 10)
    assert [m["sha"] for m in got] == [[hashlib.sha256(b).hexdigest()] for b in (b"one", b"two")], got
    wait_event(d, "upstream lost; reconnecting", since, guard=GUARD)
    assert events(d, "subscriber closed", since) == [], d.log()[since:]
    assert_alive(d)
