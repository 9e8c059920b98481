"""The relay as a plain byte relay (kind = "tcp", protocol = "none"): data integrity over IPv4
and IPv6, half-close in both directions, bounded memory with backpressure against a client
that does not read, prompt closing when the upstream is down, and a relay port that is
reachable only through the redirect of the guarded port."""

import hashlib
import os
import socket
import threading
import time

import pytest

from conftest import BAD_V4, HOST_V4, HOST_V6, OK_V4, OK_V6, recv_exactly
from relaykit import (RELAY_PORT, STORE_PORT, ClosingEchoServer, HalfCloseServer, StreamServer, assert_alive, events, pattern_block,
                      proxyd_pid, relay_policy, rss_bytes, start_relay, wait_closed, wait_event)

MiB = 1 << 20
FAMILIES = [pytest.param(HOST_V4, id="ipv4"), pytest.param(HOST_V6, id="ipv6")]
# The relay's two ways of waiting for bytes: Dispatch read sources (the default for protocol =
# "none"), and its own polling after activity (busy_poll, the default for the TCPStore gate).
WAITING = [pytest.param("0s", id="sleeping"), pytest.param("200us", id="busy-poll")]


@pytest.mark.parametrize("busy_poll", WAITING)
@pytest.mark.parametrize("host_addr", FAMILIES)
def test_byte_relay_echoes_8_mib_of_random_data_intact(topo, host_addr, busy_poll):
    """8 MiB of random bytes from peer_ok through the relay to an echo server on the host and
    back, sent and received concurrently: the sha256 of what comes back equals what was sent."""
    topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy(protocol="none", busy_poll=busy_poll))
    payload = os.urandom(8 * MiB)
    s = topo.connect(topo.peer_ok, host_addr, STORE_PORT)
    s.settimeout(20)
    send_errors = []

    def sender():
        try:
            s.sendall(payload)
        except OSError as exc:
            send_errors.append(exc)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    got = recv_exactly(s, len(payload))
    t.join(timeout=20)
    s.close()
    assert not send_errors, send_errors
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert_alive(d)


@pytest.mark.parametrize("busy_poll", WAITING)
def test_half_close_travels_both_ways_through_the_relay(topo, busy_poll):
    """Over IPv4 and IPv6: peer_ok sends 1 MiB and shuts down its sending side; the server on
    the host sees EOF, then answers with what it counted and closes; the client, which can no
    longer send, still receives that whole answer and then EOF."""
    srv = HalfCloseServer(topo.host, STORE_PORT)
    topo.servers.append(srv)
    d = start_relay(topo, relay_policy(protocol="none", busy_poll=busy_poll))
    payload = os.urandom(MiB)
    expected = f"got {len(payload)} bytes sha256 {hashlib.sha256(payload).hexdigest()}".encode()
    for host_addr in (HOST_V4, HOST_V6):
        srv.saw_eof.clear()
        s = topo.connect(topo.peer_ok, host_addr, STORE_PORT)
        s.settimeout(10)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert srv.saw_eof.wait(5), f"[{host_addr}] the server never saw the client's EOF"
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        assert reply == expected, (host_addr, reply)
    assert not srv.errors, srv.errors
    assert_alive(d)


STREAM_TOTAL = 200 * MiB
RSS_SLACK = 16 * MiB


@pytest.mark.parametrize("busy_poll", WAITING)
def test_client_that_does_not_read_backpressures_upstream_and_proxyd_memory_stays_bounded(topo, busy_poll):
    """buffer_bytes = 1MiB. A server on the host tries to send 200 MiB to a peer_ok client that
    connects and does not read. After 3 s the server is stuck (its send blocks well short of
    200 MiB, with no progress in the last second) and proxyd's VmRSS is within 16 MiB of what
    it was before the connection. Then the client reads: all 200 MiB arrive in order (a
    counting pattern, byte i = i mod 251), followed by EOF."""
    srv = StreamServer(topo.host, STORE_PORT, STREAM_TOTAL)
    topo.servers.append(srv)
    d = start_relay(topo, relay_policy(protocol="none", buffer_bytes="1MiB", busy_poll=busy_poll))
    pid = proxyd_pid(d)
    baseline = rss_bytes(pid)

    s = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    time.sleep(2.0)
    sent_at_2s = srv.sent
    time.sleep(1.0)
    sent_at_3s = srv.sent
    rss = rss_bytes(pid)
    assert rss <= baseline + RSS_SLACK, (
        f"proxyd VmRSS grew from {baseline / MiB:.1f} MiB to {rss / MiB:.1f} MiB with a non-reading client "
        f"(server had sent {sent_at_3s / MiB:.1f} MiB)")
    assert 0 < sent_at_3s < STREAM_TOTAL // 2, f"server sent {sent_at_3s / MiB:.1f} MiB to a client that never read"
    assert sent_at_3s - sent_at_2s < MiB, (
        f"server still making progress ({(sent_at_3s - sent_at_2s) / MiB:.1f} MiB in the last second): no backpressure")
    assert not srv.done.is_set()

    block = pattern_block(MiB)
    received = 0
    s.settimeout(10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        chunk = s.recv(MiB)
        if not chunk:
            break
        off = received % 251
        if chunk != block[off:off + len(chunk)]:
            pytest.fail(f"stream corrupted in the {len(chunk)} bytes at offset {received}")
        received += len(chunk)
    s.close()
    assert received == STREAM_TOTAL, f"got {received} of {STREAM_TOTAL} bytes"
    # The server's thread marks itself done just after its shutdown(), which is what the client's
    # EOF comes from: give that thread a moment rather than race it.
    assert srv.done.wait(5), "the server never finished sending although the client read all of it"

    assert not srv.errors, srv.errors
    assert_alive(d)


def test_upstream_down_closes_client_promptly_and_logs_upstream_unreachable(topo):
    """Nothing listens on the host's port 29500. A peer_ok client connecting to it over IPv4
    and IPv6 is closed (reset or EOF; or refused outright) within 1 s, and proxyd logs
    `upstream unreachable` with the peer and the original destination. Once a server is up
    on 29500 the next connection is relayed normally."""
    d = start_relay(topo, relay_policy(protocol="none"))
    for host_addr, peer in ((HOST_V4, OK_V4), (HOST_V6, OK_V6)):
        since = d.log_size()
        started = time.monotonic()
        try:
            s = topo.connect(topo.peer_ok, host_addr, STORE_PORT)
        except (ConnectionRefusedError, ConnectionResetError) as exc:  # the reset can beat connect()
            outcome = type(exc).__name__
        else:
            outcome, _ = wait_closed(s, 1.0)
            s.close()
        elapsed = time.monotonic() - started
        assert elapsed <= 1.0, f"[{host_addr}] closed ({outcome}) after {elapsed:.2f}s"
        event = wait_event(d, "upstream unreachable", since, guard="store", peer=peer)
        upstream = event.get("upstream", "")
        assert upstream.endswith(f":{STORE_PORT}") and host_addr in upstream, event
        assert event.get("error"), event
        assert_alive(d)

    topo.echo_server(STORE_PORT)
    for host_addr in (HOST_V4, HOST_V6):
        assert topo.echo_roundtrip(topo.peer_ok, host_addr, STORE_PORT, b"back up") == b"back up"


def test_relay_port_is_reachable_only_through_the_redirect(topo):
    """Over IPv4 and IPv6: peer_ok connecting to the relay's own port 39500 is refused, while
    29500 (redirected to it) echoes; peer_bad is refused on both; the host's own processes
    reach the server on 29500 directly."""
    srv = topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy(protocol="none"))
    for host_addr in (HOST_V4, HOST_V6):
        assert topo.connect_outcome(topo.peer_ok, host_addr, RELAY_PORT) == "refused", host_addr
        assert topo.echo_roundtrip(topo.peer_ok, host_addr, STORE_PORT, b"via 29500") == b"via 29500"
        assert topo.connect_outcome(topo.peer_bad, host_addr, STORE_PORT) == "refused", host_addr
        assert topo.connect_outcome(topo.peer_bad, host_addr, RELAY_PORT) == "refused", host_addr
        assert topo.echo_roundtrip(topo.host, host_addr, STORE_PORT, b"local") == b"local"
    assert BAD_V4 not in srv.accepted and "::ffff:" + BAD_V4 not in srv.accepted, srv.accepted
    assert_alive(d)


def test_connections_beyond_max_connections_are_denied_with_total_limit(topo):
    """max_connections = 4: four connections from peer_ok echo; the fifth and sixth are closed
    by the relay within 1 s (or reset while connecting) and logged as `connection denied`
    reason=total-limit, counts adding up to the denials; the four keep echoing, and once one of
    them is closed (the server closing its side too) a new connection echoes again within 2 s."""
    srv = ClosingEchoServer(topo.host, STORE_PORT)
    topo.servers.append(srv)
    d = start_relay(topo, relay_policy(protocol="none", max_connections=4))
    since = d.log_size()
    held = []
    for i in range(4):
        s = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
        s.sendall(b"held %d" % i)
        assert recv_exactly(s, 6) == b"held %d" % i
        held.append(s)
    for _ in range(2):
        try:
            s = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
        except ConnectionResetError:
            continue
        wait_closed(s, 1.0)
        s.close()
    for s in held[1:]:
        s.sendall(b"still")
        assert recv_exactly(s, 5) == b"still"
    held[0].close()
    deadline = time.monotonic() + 2
    denied = 2
    while True:  # the relay frees the slot once both sides are closed (not necessarily at once)
        try:
            reply = topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, b"slot freed")
            break
        except (ConnectionError, socket.timeout):
            denied += 1  # a too-early retry is one more total-limit denial
            if time.monotonic() > deadline:
                raise AssertionError(f"no slot 2 s after a connection closed:\n{d.log()[since:][-3000:]}")
            time.sleep(0.2)
    assert reply == b"slot freed"

    deadline = time.monotonic() + 10
    while True:
        lines = events(d, "connection denied", since, guard="store", peer=OK_V4, reason="total-limit")
        if sum(int(e.get("count", "1")) for e in lines) >= denied or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(int(e.get("count", "1")) for e in lines) == denied, f"{lines}\n{d.log()[since:][-3000:]}"
    assert not srv.errors, srv.errors
    assert_alive(d)
