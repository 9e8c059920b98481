"""Hostile input at the broker (kind = "zmq-xpub"). Raw TCP sockets from peer_ok to
10.77.0.1:PORT (redirected to the broker) speak broken or abusive ZMTP by hand; each time only
that connection is closed (EOF or reset within a bound), proxyd logs the rule it applied, and a
real vLLM reader (libzmq SUB, subscribed "") connected before in the same namespace keeps
receiving, on its one connection, every message the writer sends during the attack and after
it: all sequence numbers, in order, intact (a reconnect of the reader would show as a gap).

Covered: a non-ZMTP first byte, an HTTP request, a greeting trickled one byte per second
(handshake_timeout), a frame declaring 2^62 bytes, Socket-Type PUB, 10,000 subscriptions, a
10 KiB data frame, a disconnect in the middle of a frame, a non-subscription data message, an
unknown command, an ERROR command, a topic over max_topic_bytes, and more subscribers from one
address than max_subscribers_per_peer.

The tests share one topology, writer, proxyd and reader (module scope) so that "the others
carry on" is checked across all of them. handshake_timeout is 2 s in this module's policy; the
other limits are the defaults (max_subscriptions_per_peer 64, max_topic_bytes 245, and
subscriber frames capped at max(512, 16 + max_topic_bytes) bytes).
"""

import struct
import time
from dataclasses import dataclass

import pytest

from brokerkit import (GUARD, Reader, Writer, ZmtpPeer, broker_policy, command, expect_refused_at_accept, frame, greeting,
                       narrow_host_port_range, ready, start_broker, subscribe_cmd)
from conftest import OK_V4, NetnsUnavailable, Proxyd, Topology, require_netns_or_skip
from relaykit import Peers, assert_alive, events, send_ignoring_reset, wait_closed, wait_event

VIOLATION = "subscriber closed: protocol violation"
TIMEOUT = "subscriber closed: timeout"
CLOSE_WITHIN = 3.0  # seconds for a violating connection to be closed
DEADLINE = 2.0  # handshake_timeout in this module's policy
KiB = 1 << 10
STREAM = [64 * KiB]  # one out-of-band frame per message: frames 0 and 1
INTERVAL = 0.02  # the writer's background stream: one message every 20 ms during each attack


@dataclass
class Env:
    topo: Topology
    proxyd: Proxyd
    writer: Writer
    reader: Reader


@pytest.fixture(scope="module")
def env(netns_capable, tmp_path_factory):
    """host: the writer on 10.77.0.1:<ephemeral> and proxyd guarding it (handshake_timeout =
    2s); peer_ok: one vLLM reader through the broker, past the READY handshake."""
    tmp = tmp_path_factory.mktemp("broker_hostile")
    topo = Topology(tmp)
    peers = Peers(tmp)
    try:
        try:
            topo.build()
        except NetnsUnavailable as exc:
            require_netns_or_skip(str(exc))
        narrow_host_port_range(topo)
        writer = Writer(peers, topo.host)
        d = start_broker(topo, broker_policy(writer.port, handshake_timeout=f"{DEADLINE:g}s"), writer.port + 10000)
        reader = Reader(peers, topo.peer_ok, writer.port, name="steady")
        assert writer.wait_subs(1, 10) == [b"\x01"]
        writer.ready()
        reader.expect_ready(10)
        yield Env(topo, d, writer, reader)
    finally:
        peers.stop_all()
        problems = topo.teardown()
        assert not problems, "teardown problems: " + "; ".join(problems)


@pytest.fixture
def during(env):
    """Runs the test body while the writer streams (one message every 20 ms), then checks that
    the reader got every message sent during it and 5 more sent after it, in order and intact."""
    env.writer.drain(0)
    env.writer.stream_bg(STREAM, INTERVAL)
    stopped = False
    try:
        yield
        sent = env.writer.stop_bg()
        stopped = True
        assert sent.digests, "the writer sent nothing during the attack"
        env.reader.expect_stream(sent, 20)
        env.reader.expect_stream(env.writer.stream(5, STREAM), 20)
        assert_alive(env.proxyd)
    finally:
        if not stopped:
            env.writer.stop_bg()


def raw(env: Env) -> ZmtpPeer:
    return ZmtpPeer(env.topo, env.topo.peer_ok, env.writer.port)


def handshaken(env: Env) -> ZmtpPeer:
    """A raw subscriber past the handshake (ZMTP 3.1, Socket-Type SUB), with no subscription."""
    return raw(env).open()


def assert_closed_with(env: Env, conn: ZmtpPeer, since: int, rule: str | None,
                       msg: str = VIOLATION) -> tuple[str, float, dict]:
    """The connection is closed within CLOSE_WITHIN and proxyd logged `msg` for peer_ok with
    `rule` (None: checked by the caller); returns how it closed, after how long, and the event."""
    how, elapsed = wait_closed(conn.sock, CLOSE_WITHIN)
    conn.close()
    # One hostile connection at a time: the first such event since the action is this one's.
    event = wait_event(env.proxyd, msg, since, guard=GUARD, peer=OK_V4)
    if rule is not None:
        assert_rule(event, rule)
    return how, elapsed, event


def assert_rule(event: dict, rule: str) -> None:
    assert event.get("rule") == rule, f"proxyd logged rule={event.get('rule')} (detail={event.get('detail')!r}), not {rule}"


def test_non_zmtp_first_byte_is_closed_at_once_with_rule_handshake(env, during):
    """A TLS ClientHello's first bytes (0x16 ...), as a scanner sends: rule=handshake, the detail
    naming the first byte, closed well before the handshake deadline."""
    since = env.proxyd.log_size()
    conn = raw(env)
    send_ignoring_reset(conn.sock, bytes.fromhex("16 03 01 02 00 01 00 01 fc 03 03") + b"\x00" * 32)
    how, elapsed, event = assert_closed_with(env, conn, since, "handshake")
    assert "0x16" in event["detail"], event
    assert elapsed < DEADLINE, f"closed after {elapsed:.2f}s: the deadline, not the first byte"


def test_http_request_is_closed_at_once_with_rule_handshake(env, during):
    """`GET / HTTP/1.1` and a blank line: rule=handshake (first byte 0x47 'G'), closed well
    before the handshake deadline."""
    since = env.proxyd.log_size()
    conn = raw(env)
    send_ignoring_reset(conn.sock, b"GET / HTTP/1.1\r\nHost: 10.77.0.1\r\n\r\n")
    how, elapsed, event = assert_closed_with(env, conn, since, "handshake")
    assert "0x47" in event["detail"], event
    assert elapsed < DEADLINE, f"closed after {elapsed:.2f}s: the deadline, not the first byte"


def test_greeting_sent_one_byte_per_second_is_closed_by_handshake_timeout(env, during):
    """Slowloris: a valid greeting trickled one byte per second. The connection is closed about
    handshake_timeout (2 s) after it opened (between 1.5 s and 4 s), logged as
    `subscriber closed: timeout` with rule=handshake_timeout."""
    since = env.proxyd.log_size()
    conn = raw(env)
    started = time.monotonic()
    hello = greeting()
    closed_after = None
    for i in range(len(hello)):
        if not send_ignoring_reset(conn.sock, hello[i:i + 1]):
            closed_after = time.monotonic() - started
            break
        try:
            wait_closed(conn.sock, 1.0)
        except AssertionError:  # still open after a second: send the next byte
            continue
        closed_after = time.monotonic() - started
        break
    conn.close()
    assert closed_after is not None, "the trickling connection was never closed"
    assert DEADLINE - 0.5 <= closed_after <= DEADLINE + 2, f"closed {closed_after:.2f}s after connecting"
    wait_event(env.proxyd, TIMEOUT, since, guard=GUARD, peer=OK_V4, rule="handshake_timeout")


def test_frame_declaring_2_pow_62_bytes_after_the_handshake_is_closed_with_rule_frame_size(env, during):
    """After a valid handshake, a data frame header declaring 2^62 bytes (`02` + 8-byte size) and
    a few body bytes: refused from the header (rule=frame-size: a declared size over the
    subscriber frame cap, not malformed framing: ZMTP allows sizes up to 2^63-1), closed at once
    rather than after buffering or a deadline."""
    conn = handshaken(env)
    since = env.proxyd.log_size()
    conn.sendall(bytes([0x02]) + struct.pack(">Q", 1 << 62) + b"x" * 16)
    how, elapsed, event = assert_closed_with(env, conn, since, None)
    assert str(1 << 62) in event["detail"], event
    assert elapsed < DEADLINE, f"closed after {elapsed:.2f}s"
    assert_rule(event, "frame-size")


def test_pub_socket_type_in_ready_gets_an_error_and_is_closed_with_rule_socket_type(env, during):
    """A valid greeting, then READY with Socket-Type PUB (a PUB cannot talk to an XPUB):
    rule=socket-type; the peer reads the broker's greeting and READY, then an ERROR command
    whose reason is "invalid socket type", then the close."""
    since = env.proxyd.log_size()
    conn = raw(env)
    conn.sendall(greeting() + ready(b"PUB"))
    assert conn._take(64, CLOSE_WITHIN)[0] == 0xFF
    flags, body = conn.read_frame(CLOSE_WITHIN)
    assert flags == 0x04 and body.startswith(b"\x05READY"), body
    flags, body = conn.read_frame(CLOSE_WITHIN)
    assert (flags, body) == (0x04, b"\x05ERROR\x13invalid socket type"), (flags, body)
    assert_closed_with(env, conn, since, "socket-type")


def test_10000_subscriptions_from_one_connection_are_cut_at_max_subscriptions_per_peer(env, during):
    """One handshaken connection sends SUBSCRIBE for 10,000 distinct topics at once: closed
    with rule=subscription-count. Exactly its first 64 topics (max_subscriptions_per_peer)
    reached the writer as b"\\x01topic", and each of them is cancelled upstream (b"\\x00topic")
    when the connection goes: nothing of it stays subscribed."""
    topics = [b"t%05d" % i for i in range(10_000)]
    conn = handshaken(env)
    since = env.proxyd.log_size()
    send_ignoring_reset(conn.sock, b"".join(subscribe_cmd(t) for t in topics))
    assert_closed_with(env, conn, since, "subscription-count")
    subs = env.writer.wait_subs(128, 5)
    assert sorted(s for s in subs if s[:1] == b"\x01") == [b"\x01" + t for t in topics[:64]], subs[:70]
    assert sorted(s for s in subs if s[:1] == b"\x00") == [b"\x00" + t for t in topics[:64]], subs[-70:]
    assert env.writer.drain(0.3) == []


def test_data_frame_of_10_kib_from_a_subscriber_is_closed_with_rule_frame_size(env, during):
    """After a valid handshake and a SUBSCRIBE, a whole 10 KiB data frame (subscribers may only
    send subscriptions, and their frames are capped at 512 bytes): rule=frame-size, closed at
    once."""
    conn = handshaken(env)
    conn.sendall(subscribe_cmd(b"big"))
    assert env.writer.wait_subs(1, 10) == [b"\x01big"]
    since = env.proxyd.log_size()
    send_ignoring_reset(conn.sock, frame(b"\xab" * (10 * KiB)))
    how, elapsed, event = assert_closed_with(env, conn, since, None)
    assert "10240" in event["detail"], event
    assert elapsed < DEADLINE, f"closed after {elapsed:.2f}s"
    assert env.writer.wait_subs(1, 10) == [b"\x00big"]
    assert_rule(event, "frame-size")


def test_disconnect_in_the_middle_of_a_frame_closes_that_subscriber_cleanly(env, during):
    """A handshaken subscriber of "mid" sends half of a SUBSCRIBE command (its header declares
    40 bytes, 12 follow) and closes its socket: proxyd logs `subscriber closed` with reason
    "closed by the subscriber" and no protocol violation, the writer sees b"\\x01mid" then
    b"\\x00mid" (the topic is given back), and the half frame has no other effect."""
    conn = handshaken(env)
    conn.sendall(subscribe_cmd(b"mid"))
    assert env.writer.wait_subs(1, 10) == [b"\x01mid"]
    since = env.proxyd.log_size()
    partial = command(b"SUBSCRIBE", b"m" * 30)
    assert partial[1] == 40
    conn.sendall(partial[:14])
    time.sleep(0.1)
    conn.close()
    wait_event(env.proxyd, "subscriber closed", since, guard=GUARD, peer=OK_V4, reason="closed by the subscriber")
    assert env.writer.wait_subs(1, 10) == [b"\x00mid"]
    assert events(env.proxyd, VIOLATION, since) == []


def test_data_message_that_is_not_a_subscription_is_closed_with_rule_data_from_subscriber(env, during):
    """After a valid handshake, a small data message whose first byte is neither 0 nor 1 (what a
    libzmq XSUB application could send upstream): rule=data-from-subscriber, closed at once."""
    conn = handshaken(env)
    since = env.proxyd.log_size()
    conn.sendall(frame(b"\x02hello"))
    assert_closed_with(env, conn, since, "data-from-subscriber")


def test_unknown_command_after_the_handshake_is_closed_with_rule_unexpected_command(env, during):
    """After a valid handshake, a command named FOOBAR (libzmq would drop it silently; the
    broker refuses anything but subscriptions, PING and PONG): rule=unexpected-command."""
    conn = handshaken(env)
    since = env.proxyd.log_size()
    conn.sendall(command(b"FOOBAR", b"payload"))
    assert_closed_with(env, conn, since, "unexpected-command")


def test_error_command_from_a_subscriber_is_closed_with_rule_peer_error(env, during):
    """After a valid handshake, an ERROR command ("go away"): rule=peer-error."""
    conn = handshaken(env)
    since = env.proxyd.log_size()
    conn.sendall(command(b"ERROR", b"\x07go away"))
    assert_closed_with(env, conn, since, "peer-error")


def test_topic_longer_than_max_topic_bytes_is_closed_with_rule_topic_size_and_never_goes_upstream(env, during):
    """After a valid handshake, SUBSCRIBE of a 246-byte topic (max_topic_bytes is 245, the
    longest libzmq 4.3.4 frames correctly): rule=topic-size, and nothing reaches the writer."""
    conn = handshaken(env)
    since = env.proxyd.log_size()
    conn.sendall(subscribe_cmd(b"L" * 246))
    assert_closed_with(env, conn, since, "topic-size")
    assert env.writer.drain(0.3) == []


def test_subscribers_beyond_max_subscribers_per_peer_are_reset_and_logged_as_peer_limit(env, during):
    """peer_ok opens 8 more connections (max_subscribers_per_peer is 8; the steady reader holds
    one slot): the first 7 complete the handshake, the 8th is reset without a greeting and proxyd
    logs `connection denied` reason=peer-limit; once one of the 7 closes, a new connection from
    peer_ok is admitted again."""
    since = env.proxyd.log_size()
    admitted = [handshaken(env) for _ in range(7)]
    expect_refused_at_accept(env.topo, env.topo.peer_ok, env.writer.port)
    wait_event(env.proxyd, "connection denied", since, guard=GUARD, peer=OK_V4, reason="peer-limit")
    admitted.pop().close()
    deadline = time.monotonic() + 5
    while True:  # the slot comes back once the broker has seen the close
        try:
            admitted.append(handshaken(env))
            break
        except (ConnectionError, OSError):
            assert time.monotonic() < deadline, "no slot came back after a subscriber closed"
            time.sleep(0.1)
    for conn in admitted:
        conn.close()
