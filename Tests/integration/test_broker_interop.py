"""ZMTP interoperability of the broker (kind = "zmq-xpub") with libzmq 4.3.4, both ways, in
both subscription forms.

Downstream, a libzmq SUB (which speaks ZMTP 3.1 to the broker and subscribes with SUBSCRIBE /
CANCEL commands) and a subscriber written by hand that negotiates ZMTP 3.0 (greeting minor 0)
and subscribes with the 3.0 message form `00 <len> 01 topic` / cancels with `00 <len> 00 topic`.
Upstream, the engine's libzmq XPUB with XPUB_VERBOSE, which shows the application every
subscription message the broker sends (`\\x01topic`, `\\x00topic`).

Proven here: both subscribers get exactly the messages whose first frame starts with their
topic (byte-prefix matching, multipart kept whole); the writer sees one `\\x01topic` per
subscriber of a topic; a cancel from one of two holders of a topic goes nowhere (the other keeps
receiving), and the last holder's cancel reaches the writer as `\\x00topic`; a subscriber's
repeated SUBSCRIBE of one topic counts once (set semantics, as libzmq's own XPUB).
"""

from brokerkit import (GUARD, Reader, Writer, ZmtpPeer, broker_policy, cancel_cmd, cancel_msg, narrow_host_port_range,
                       start_broker, subscribe_cmd, subscribe_msg)
from conftest import OK_V4
from relaykit import assert_alive, events, peers  # noqa: F401

WITHIN = 10.0

# First frames the writer publishes, and which of them a subscriber of "ab" / of "b" must get.
PUBLISHED = [[b"abc-1"], [b"b-2"], [b"a-3"], [b"ab"], [b"xab-5"], [b"abz-6", b"second frame", b"third"], [b"Ab-7"],
             [b"bab-8", b"x" * 300]]
FOR_AB = [m for m in PUBLISHED if m[0].startswith(b"ab")]
FOR_B = [m for m in PUBLISHED if m[0].startswith(b"b")]


def writer_and_broker(topo, peers):
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(topo, broker_policy(writer.port), writer.port + 10000)
    return writer, d


def test_libzmq_sub_over_zmtp31_and_raw_subscriber_over_zmtp30_get_only_their_prefix_and_the_writer_sees_both(topo, peers):
    """A libzmq SUB subscribes "ab": the writer receives b"\\x01ab". A raw subscriber that sends
    a ZMTP 3.0 greeting (the broker still announces 3.1 and Socket-Type XPUB) subscribes "b" with
    the 3.0 message form: the writer receives b"\\x01b", and proxyd logs both `subscribed`. The
    writer publishes eight messages, so the broker receives both topics' messages and must route
    them itself: the SUB gets exactly "abc-1", "ab" and the three-frame "abz-6" whole, in order
    (not "b-2", "a-3", "xab-5", "Ab-7", "bab-8"); the raw subscriber exactly "b-2" and the
    two-frame "bab-8" (not "abc-1": prefix, not substring)."""
    writer, d = writer_and_broker(topo, peers)
    sub31 = Reader(peers, topo.peer_ok, writer.port, topics=[b"ab"], name="sub31")
    assert writer.wait_subs(1, WITHIN) == [b"\x01ab"]

    raw30 = ZmtpPeer(topo, topo.peer_ok, writer.port).open(minor=0)
    assert raw30.peer_greeting[10:12] == b"\x03\x01" and raw30.peer_greeting[12:32] == b"NULL".ljust(20, b"\x00")
    assert raw30.peer_ready == b"\x05READY\x0bSocket-Type\x00\x00\x00\x04XPUB", raw30.peer_ready
    raw30.sendall(subscribe_msg(b"b"))
    assert writer.wait_subs(1, WITHIN) == [b"\x01b"]
    for topic in ("ab", "b"):
        assert len(events(d, "subscribed", guard=GUARD, peer=OK_V4, topic=topic)) == 1, d.log()[-3000:]

    for frames in PUBLISHED:
        writer.send(*frames)
    got31 = sub31.take(len(FOR_AB), WITHIN)
    assert [m["frames"] for m in got31] == [len(m) for m in FOR_AB]
    assert [bytes.fromhex(m["f0"]) for m in got31] == [m[0] for m in FOR_AB]
    assert sub31.nothing_more(0.3) == []
    got30 = [raw30.read_message(WITHIN) for _ in FOR_B]
    assert got30 == FOR_B
    assert raw30.quiet_for(0.3), f"the 3.0 subscriber received more: {raw30.buf!r}"
    assert writer.drain(0.2) == []
    assert_alive(d)


def test_cancel_by_one_of_two_holders_keeps_the_topic_upstream_and_the_last_cancel_reaches_the_writer(topo, peers):
    """A raw ZMTP 3.0 subscriber and a libzmq SUB both hold "ab" (the writer saw b"\\x01ab"
    twice). The raw one cancels with the 3.0 message form: nothing reaches the writer, and a
    message "abc-7" still reaches the libzmq SUB (the writer's XPUB only sends what is subscribed
    upstream) but not the raw one. The libzmq SUB then unsubscribes (a 3.1 CANCEL command): the
    writer receives b"\\x00ab", and "abc-8" reaches nobody."""
    writer, d = writer_and_broker(topo, peers)
    raw30 = ZmtpPeer(topo, topo.peer_ok, writer.port).open(minor=0)
    raw30.sendall(subscribe_msg(b"ab"))
    assert writer.wait_subs(1, WITHIN) == [b"\x01ab"]
    sub31 = Reader(peers, topo.peer_ok, writer.port, topics=[b"ab"], name="sub31")
    assert writer.wait_subs(1, WITHIN) == [b"\x01ab"]

    raw30.sendall(cancel_msg(b"ab"))
    assert writer.drain(0.5) == [], "a cancel went upstream while another subscriber still holds the topic"
    writer.send(b"abc-7")
    (m,) = sub31.take(1, WITHIN)
    assert bytes.fromhex(m["f0"]) == b"abc-7"
    assert raw30.quiet_for(0.3), f"the cancelled subscriber still receives: {raw30.buf!r}"

    sub31.request("unsubscribe", b"ab")
    assert writer.wait_subs(1, WITHIN) == [b"\x00ab"]
    writer.send(b"abc-8")
    assert sub31.nothing_more(0.3) == []
    assert raw30.quiet_for(0.1)
    assert_alive(d)


def test_repeated_subscribe_from_one_subscriber_counts_once_and_one_cancel_removes_it(topo, peers):
    """A raw ZMTP 3.1 subscriber sends SUBSCRIBE "ab" three times (commands) and once more in the
    3.0 message form: the writer receives b"\\x01ab" once (one subscriber is one reader) and
    proxyd logs one `subscribed`. One CANCEL then removes it (set semantics, as libzmq's XPUB):
    the writer receives b"\\x00ab" and "abc-1" no longer reaches the subscriber."""
    writer, d = writer_and_broker(topo, peers)
    raw = ZmtpPeer(topo, topo.peer_ok, writer.port).open(minor=1)
    raw.sendall(subscribe_cmd(b"ab") * 3 + subscribe_msg(b"ab"))
    assert writer.wait_subs(1, WITHIN) == [b"\x01ab"]
    writer.send(b"abc-0")
    assert raw.read_message(WITHIN) == [b"abc-0"]
    assert writer.drain(0.5) == [], "a repeated SUBSCRIBE from one subscriber was forwarded again"
    assert len(events(d, "subscribed", guard=GUARD, topic="ab")) == 1, d.log()[-3000:]

    raw.sendall(cancel_cmd(b"ab"))
    assert writer.wait_subs(1, WITHIN) == [b"\x00ab"]
    writer.send(b"abc-1")
    assert raw.quiet_for(0.3), f"received after its one CANCEL: {raw.buf!r}"
    assert_alive(d)


def test_upstream_connected_line_names_the_version_and_the_engines_socket_type(topo, peers):
    """When the first subscriber arrives the broker connects to the engine's libzmq XPUB, and
    says so with what the handshake established: the version both sides speak (3.1: libzmq
    always offers it) and the engine's Socket-Type (XPUB)."""
    writer, d = writer_and_broker(topo, peers)
    Reader(peers, topo.peer_ok, writer.port, topics=[b"ab"], name="sub31")
    assert writer.wait_subs(1, WITHIN) == [b"\x01ab"]
    found = events(d, "upstream connected", guard=GUARD, zmtp="3.1", socket_type="XPUB")
    assert len(found) == 1, d.log()[-3000:]
    assert_alive(d)
