"""SIGHUP with a relay guard whose allowlist changed: the relay keeps running, connections of
peers that stay allowed carry on untouched, and only a removed peer's connections are cut. A
reload that restarts the relay on the same listen port (its upstream changed) brings it back
on that port, serving."""

import pytest

from conftest import HOST_V4, OK_V4, OK_V6, recv_exactly
from relaykit import OK2_V4, OK2_V6, RELAY_PORT, STORE_PORT, add_peer, events, relay_policy, start_relay


def echo(s, data: bytes) -> bytes:
    s.sendall(data)
    return recv_exactly(s, len(data))


def test_reload_adding_a_peer_keeps_every_relayed_connection(topo):
    """peer_ok holds a relayed connection; a reload adds peer_ok2: the connection still echoes,
    the relay was not restarted, and peer_ok2 can now connect."""
    ok2 = add_peer(topo, "oktwo", OK2_V4, OK2_V6)
    topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy(protocol="none"))
    live = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    assert echo(live, b"before") == b"before"
    assert topo.connect_outcome(ok2, HOST_V4, STORE_PORT) == "refused"

    topo.write_policy(relay_policy(protocol="none", ok_peers=[OK_V4, OK_V6, OK2_V4, OK2_V6]))
    log = d.reload()
    assert 'msg="policy reloaded"' in log and "updated=store" in log, log

    assert echo(live, b"after the reload") == b"after the reload"
    assert len(events(d, "relay listening")) == 1, "the relay was restarted"
    other = topo.connect(ok2, HOST_V4, STORE_PORT)
    assert echo(other, b"new peer") == b"new peer"


def test_reload_removing_a_peer_cuts_only_that_peers_relayed_connections(topo):
    """peer_ok and peer_ok2 each hold a relayed connection; a reload drops peer_ok2: its
    connection is cut, peer_ok's carries on."""
    ok2 = add_peer(topo, "oktwo", OK2_V4, OK2_V6)
    topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy(protocol="none", ok_peers=[OK_V4, OK_V6, OK2_V4, OK2_V6]))
    kept = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    cut = topo.connect(ok2, HOST_V4, STORE_PORT)
    assert echo(kept, b"one") == b"one" and echo(cut, b"two") == b"two"

    topo.write_policy(relay_policy(protocol="none"))
    log = d.reload()
    assert 'msg="policy reloaded"' in log, log

    cut.settimeout(2.0)
    with pytest.raises((ConnectionError, TimeoutError)):
        cut.sendall(b"still there?")
        if cut.recv(64) == b"":
            raise ConnectionError("closed")
    assert echo(kept, b"carries on") == b"carries on"


def test_reload_restarting_the_relay_on_the_same_listen_port_serves_on_that_port_again(topo):
    """A reload gives guard store a fixed upstream (the same echo server): the relay restarts,
    its new listener starting before the old one stops, both on listen port 39500 (the new one
    shares the old one's socket; no SO_REUSEPORT). The reload is applied, the old connection is
    cut with the old relay, and new connections echo through the new one."""
    topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy(protocol="none"))
    live = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    assert echo(live, b"before") == b"before"

    topo.write_policy(relay_policy(protocol="none", upstream=f"{HOST_V4}:{STORE_PORT}"))
    log = d.reload()
    assert 'msg="policy reloaded"' in log and "restarted=store" in log, log
    assert len(events(d, "relay listening", port=str(RELAY_PORT))) == 2, d.log()

    for i in range(10):
        fresh = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
        assert echo(fresh, f"after {i}".encode()) == f"after {i}".encode()
        fresh.close()
    assert d.proc.poll() is None, d.log()
