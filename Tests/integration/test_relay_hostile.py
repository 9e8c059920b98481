"""Hostile input at the TCPStore relay (protocol = "tcpstore"). Raw sockets from peer_ok to
10.77.0.1:29500 send what a scanner or an attacker would; each time only that connection is
closed (EOF or reset within ~3 s), proxyd logs the rule it applied, and a long-lived,
well-behaved torch TCPStore client in the same namespace keeps working on its own connection.

The tests share one topology, store and proxyd (module scope) so that "the others carry on"
is checked across all of them; they run in file order, the connection flood last.
"""

import contextlib
import errno
import resource
import select
import socket
import time
from dataclasses import dataclass

import pytest

from conftest import HOST_V4, OK_V4, NetnsUnavailable, Proxyd, Topology, in_netns, recv_exactly, require_netns_or_skip
from relaykit import (ADD, MULTI_GET, SET, STORE_PORT, NsProcess, Peers, assert_alive, events, is_closed_now, msg_get,
                      msg_ping, msg_set, msg_validate, relay_policy, send_ignoring_reset, start_relay, torch_or_skip,
                      u8, u64, wait_closed, wait_event, wire_str)

VIOLATION = "connection closed: protocol violation"
TIMEOUT = "connection closed: timeout"
CLOSE_WITHIN = 3.0  # seconds for a violating connection to be closed
DEADLINE = 2.0  # handshake_timeout and partial_timeout in this module's policy


@dataclass
class Env:
    topo: Topology
    proxyd: Proxyd
    steady: NsProcess


@pytest.fixture(scope="module")
def env(netns_capable, tmp_path_factory):
    """host: a real TCPStore server on 29500 and proxyd relaying it with the gate
    (handshake_timeout = partial_timeout = 2s, ban_after = 0, the other limits at their defaults); peer_ok: one
    long-lived torch client connected through the relay."""
    torch_or_skip()
    tmp = tmp_path_factory.mktemp("relay_hostile")
    topo = Topology(tmp)
    peers = Peers(tmp)
    try:
        try:
            topo.build()
        except NetnsUnavailable as exc:
            require_netns_or_skip(str(exc))
        peers.store_server(topo.host)
        # ban_after = 0: every test here strikes from peer_ok, whose steady client must carry on;
        # strike bans are test_broker_bans.py's.
        d = start_relay(topo, relay_policy(handshake_timeout=f"{DEADLINE:g}s", partial_timeout=f"{DEADLINE:g}s",
                                           ban_after=0))
        steady = peers.client_loop(topo.peer_ok, HOST_V4, tag="steady")
        yield Env(topo, d, steady)
    finally:
        peers.stop_all()
        problems = topo.teardown()
        assert not problems, "teardown problems: " + "; ".join(problems)


def assert_others_carry_on(env: Env) -> None:
    """proxyd is up and the long-lived client completes a full round on its connection."""
    assert_alive(env.proxyd)
    result = env.steady.request("round")
    assert result["ok"] is True, f"the well-behaved client failed: {result}\nproxyd log:\n{env.proxyd.log()[-4000:]}"


def raw_connection(env: Env) -> socket.socket:
    return env.topo.connect(env.topo.peer_ok, HOST_V4, STORE_PORT, timeout=3)


def assert_closed_for(env: Env, payload: bytes, rule: str, *, pause_then: bytes = b"",
                      **logged: str) -> tuple[str, float]:
    """Sends `payload` on a fresh connection (then, after 0.2 s, `pause_then`), and checks the
    connection is closed within CLOSE_WITHIN, the violation is logged with `rule` (and the
    `logged` fields), and the others carry on."""
    since = env.proxyd.log_size()
    s = raw_connection(env)
    send_ignoring_reset(s, payload)
    if pause_then:
        time.sleep(0.2)
        send_ignoring_reset(s, pause_then)
    how, elapsed = wait_closed(s, CLOSE_WITHIN)
    s.close()
    wait_event(env.proxyd, VIOLATION, since, guard="store", peer=OK_V4, rule=rule, **logged)
    assert_others_carry_on(env)
    return how, elapsed


def test_validate_with_wrong_magic_closes_only_that_connection(env):
    """VALIDATE carrying 0xDEADBEEF instead of 0x3C85F7CE (`00 ef be ad de`): rule=validate-magic."""
    assert_closed_for(env, bytes.fromhex("00efbeadde"), "validate-magic")


def test_command_before_validate_is_closed_and_never_reaches_the_store(env):
    """A SET of "/rf-unvalidated" as the first command, then a PING in a second packet (which
    is what makes torch's libuv server execute an unvalidated, buffered command): rule=
    validate-first, and the key is not in the store afterwards."""
    assert_closed_for(env, msg_set(b"/rf-unvalidated", b"bypass"), "validate-first", pause_then=msg_ping(7))
    result = env.steady.request("check rf-unvalidated")
    assert result == {"ok": True, "round": result["round"], "has": False}, result


def test_unknown_command_code_after_validate_is_closed(env):
    """A valid VALIDATE, then command byte 0x63 (no such query type): rule=unknown-command."""
    assert_closed_for(env, msg_validate() + b"\x63", "unknown-command")


def test_violation_log_counts_the_requests_that_passed(env):
    """The violation line says how many requests passed whole first (`commands=`): none for a
    wrong magic, two for VALIDATE and PING before an unknown code."""
    assert_closed_for(env, bytes.fromhex("00efbeadde"), "validate-magic", commands="0")
    assert_closed_for(env, msg_validate() + msg_ping(7) + b"\x63", "unknown-command", commands="2")


def test_key_longer_than_max_key_bytes_is_closed(env):
    """A SET whose key is 5000 bytes (max_key_bytes defaults to 4 KiB; torch's own limit, 8192,
    would accept it): rule=key-size."""
    assert_closed_for(env, msg_validate() + u8(SET) + wire_str(b"k" * 5000) + wire_str(b"v"), "key-size")


def test_value_length_of_2_pow_40_is_closed_without_waiting_for_the_value(env):
    """A SET declaring a 1 TiB value (only the length is sent): rule=value-size, closed at
    once rather than after buffering or a deadline."""
    how, elapsed = assert_closed_for(env, msg_validate() + u8(SET) + wire_str(b"/rf-big") + u64(2 ** 40), "value-size")
    assert elapsed < DEADLINE, f"closed after {elapsed:.2f}s: looks like a deadline, not the size check"


def test_multi_get_of_more_than_max_keys_is_closed(env):
    """MULTI_GET declaring 20000 keys (max_keys defaults to 16384): rule=key-count."""
    assert_closed_for(env, msg_validate() + u8(MULTI_GET) + u64(20000), "key-count")


def test_validated_idle_connection_outlives_both_deadlines_and_gets_ping_answered(env):
    """Control: a connection that validates, then stays silent for longer than handshake_timeout
    and partial_timeout (idle_timeout is 0 = none), is not cut; its PING is then relayed to the
    store and the nonce comes back."""
    s = raw_connection(env)
    s.sendall(msg_validate())
    time.sleep(DEADLINE + 1.0)
    assert not is_closed_now(s), "an idle, validated connection was closed"
    s.sendall(msg_ping(0x5EED))
    assert recv_exactly(s, 4) == (0x5EED).to_bytes(4, "little")
    s.close()


def test_silent_connection_is_closed_by_handshake_timeout(env):
    """Connect and send nothing: closed after handshake_timeout (2 s; so between 1.5 s and 4 s),
    logged as a timeout with rule=handshake_timeout."""
    since = env.proxyd.log_size()
    s = raw_connection(env)
    how, elapsed = wait_closed(s, DEADLINE + 3)
    s.close()
    assert DEADLINE - 0.5 <= elapsed <= DEADLINE + 2, f"closed after {elapsed:.2f}s"
    wait_event(env.proxyd, TIMEOUT, since, guard="store", peer=OK_V4, rule="handshake_timeout")
    assert_others_carry_on(env)


def test_command_trickled_one_byte_per_second_is_closed_by_partial_timeout(env):
    """Slowloris: after a whole VALIDATE, an ADD is sent one byte per second; the connection is
    closed about partial_timeout (2 s) after its first byte (between 1.5 s and 4 s), logged as
    a timeout with rule=partial_timeout."""
    since = env.proxyd.log_size()
    s = raw_connection(env)
    s.sendall(msg_validate())
    command = u8(ADD) + wire_str(b"/rf-slow") + (1).to_bytes(8, "little")
    started = time.monotonic()
    closed_after = None
    for i in range(len(command)):
        if not send_ignoring_reset(s, command[i:i + 1]):
            closed_after = time.monotonic() - started
            break
        try:
            _, waited = wait_closed(s, 1.0)
        except AssertionError:  # still open after a second: send the next byte
            continue
        closed_after = time.monotonic() - started
        break
    s.close()
    assert closed_after is not None, "the trickling connection was never closed"
    assert DEADLINE - 0.5 <= closed_after <= DEADLINE + 2, f"closed {closed_after:.2f}s after the first byte"
    wait_event(env.proxyd, TIMEOUT, since, guard="store", peer=OK_V4, rule="partial_timeout")
    assert_others_carry_on(env)


def test_connections_beyond_max_connections_per_peer_are_denied_while_the_first_64_stay(env):
    """70 connections from peer_ok opened at about 30 per second (under accept_rate_per_peer,
    50), each validating: with the long-lived client already holding one of peer_ok's 64
    (max_connections_per_peer), exactly 63 of them stay open and 7 are closed, logged as
    `connection denied` with reason=peer-limit; closing ours frees the slots again."""
    since = env.proxyd.log_size()
    socks = []
    try:
        reset_at_connect = 0
        for _ in range(70):
            try:
                s = raw_connection(env)
            except ConnectionResetError:  # the relay's reset can beat connect() returning
                reset_at_connect += 1
            else:
                socks.append(s)
                send_ignoring_reset(s, msg_validate())
            time.sleep(1 / 30)
        time.sleep(0.5)
        still_open = [s for s in socks if not is_closed_now(s)]
        assert len(still_open) == 63, (
            f"{len(still_open)} of 70 stay open (expected 64 - 1 held by the client; {reset_at_connect} reset during connect)")
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = events(env.proxyd, "connection denied", since, guard="store", peer=OK_V4, reason="peer-limit")
            if sum(int(e.get("count", "1")) for e in lines) >= 7:
                break
            time.sleep(0.1)
        assert sum(int(e.get("count", "1")) for e in lines) == 7, (
            f"peer-limit denials logged: {lines}\n{env.proxyd.log()[since:][-3000:]}")
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    s = raw_connection(env)
    s.sendall(msg_validate() + msg_ping(0xABC))
    assert recv_exactly(s, 4) == (0xABC).to_bytes(4, "little")
    s.close()
    assert_others_carry_on(env)


FLOOD = 500


def test_flood_of_500_connections_from_one_peer_is_capped_and_logged_in_aggregate(env):
    """500 connections opened at once from peer_ok (max_connections_per_peer 64 and
    accept_rate_per_peer 50 by default; the long-lived client already holds one): at most 64
    stay open, the rest are refused or closed by the relay; proxyd logs `connection denied`
    for peer_ok with counts adding up to the denials, in a handful of aggregated lines (not one
    per connection); afterwards, with the flood gone, the long-lived client and a fresh
    connection both work."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < FLOOD + 512:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, FLOOD + 1024), hard))
    since = env.proxyd.log_size()
    with in_netns(env.topo.peer_ok):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(FLOOD)]
    try:
        poller = select.poll()
        by_fd = {}
        for s in socks:
            s.setblocking(False)
            rc = s.connect_ex((HOST_V4, STORE_PORT))
            assert rc in (0, errno.EINPROGRESS), errno.errorcode.get(rc, rc)
            by_fd[s.fileno()] = s
            poller.register(s, select.POLLOUT)
        connected, failed = [], []
        deadline = time.monotonic() + 10
        while by_fd and time.monotonic() < deadline:
            for fd, _ in poller.poll(200):
                s = by_fd.pop(fd, None)
                if s is None:
                    continue
                poller.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                (connected if err == 0 else failed).append(s)
        assert not by_fd, f"{len(by_fd)} connects neither completed nor failed within 10s"
        # Admitted connections validate, so that the handshake deadline does not close them.
        for s in connected:
            with contextlib.suppress(OSError):
                s.send(msg_validate())
        time.sleep(1.0)
        still_open = [s for s in connected if not is_closed_now(s)]
        denied = FLOOD - len(still_open)
        assert len(still_open) <= 64, f"{len(still_open)} of {FLOOD} connections from one peer stay open"
        assert denied >= FLOOD - 64, denied

        # The relay's denials (not the kernel's refusals, if any) are what it logs.
        relay_denied = len(connected) - len(still_open)
        total = 0
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            lines = events(env.proxyd, "connection denied", since, guard="store", peer=OK_V4)
            total = sum(int(e.get("count", "1")) for e in lines)
            if total >= relay_denied:
                break
            time.sleep(0.2)
        assert lines, f"no `connection denied` in the log:\n{env.proxyd.log()[since:][-4000:]}"
        assert total >= int(0.9 * relay_denied), (
            f"denied counts add up to {total}, the relay closed {relay_denied}:\n" + "\n".join(map(str, lines)))
        assert len(lines) <= 20, f"{len(lines)} `connection denied` lines for one peer's burst: not aggregated"
        reasons = {e.get("reason") for e in lines}
        assert reasons <= {"peer-limit", "rate-limit", "total-limit"}, reasons
        assert reasons & {"peer-limit", "rate-limit"}, reasons
    finally:
        for s in socks:
            s.close()

    time.sleep(1.5)  # the flood's connections are gone and the per-second rate has refilled
    assert_others_carry_on(env)
    s = raw_connection(env)
    s.sendall(msg_validate() + msg_ping(0xF00D))
    assert recv_exactly(s, 4) == (0xF00D).to_bytes(4, "little")
    s.sendall(msg_get(b"/rf-never-set"))  # libuv: a missing key answers an empty value
    assert recv_exactly(s, 8) == u64(0)
    s.close()
