"""Admission at the broker (kind = "zmq-xpub"): the subscriber caps per peer address and in
total. A connection over a cap is reset at accept, before the broker sends its greeting, and
logged as `connection denied` with the cap's reason; a slot comes back when its subscriber
closes. (Peers outside the allowlist never reach the broker: the kernel fence refuses them;
see test_broker_vllm.py.)"""

import time

from brokerkit import (GUARD, Writer, ZmtpPeer, broker_policy, expect_refused_at_accept, narrow_host_port_range,
                       start_broker)
from conftest import OK_V4
from relaykit import OK2_V4, OK2_V6, add_peer, assert_alive, events, peers, wait_event  # noqa: F401


def test_subscribers_over_the_per_peer_and_total_caps_are_reset_and_logged_and_slots_come_back(topo, peers):
    """max_subscribers = 3, max_subscribers_per_peer = 2. From peer_ok two raw subscribers
    complete the handshake and a third is reset (reason=peer-limit); from the fourth namespace
    one is admitted (3 in all) and the next is reset (reason=total-limit); the refused ones get
    no greeting, only the reset. After one of
    peer_ok's subscribers closes, a new one from the fourth namespace is admitted."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(topo, broker_policy(writer.port, max_subscribers=3, max_subscribers_per_peer=2),
                     writer.port + 10000)
    okb = add_peer(topo, "okb", OK2_V4, OK2_V6)

    def denied(ns: str, peer: str, reason: str) -> None:
        since = d.log_size()
        expect_refused_at_accept(topo, ns, writer.port)
        wait_event(d, "connection denied", since, guard=GUARD, peer=peer, reason=reason)

    ok = [ZmtpPeer(topo, topo.peer_ok, writer.port).open() for _ in range(2)]
    denied(topo.peer_ok, OK_V4, "peer-limit")
    b = ZmtpPeer(topo, okb, writer.port).open()
    denied(okb, OK2_V4, "total-limit")

    ok.pop().close()
    deadline = time.monotonic() + 5
    while True:  # the slot comes back once the broker has seen the close
        try:
            again = ZmtpPeer(topo, okb, writer.port).open()
            break
        except (ConnectionError, OSError):
            assert time.monotonic() < deadline, f"no slot came back:\n{d.log()[-2000:]}"
            time.sleep(0.1)
    for conn in (*ok, b, again):
        conn.close()
    assert events(d, "connection denied", reason="not-allowed") == []
    assert_alive(d)
