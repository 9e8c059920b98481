"""Who gets through the kernel fence: allowed peers echo, others are refused (or dropped),
over IPv4 and IPv6, on every guarded port and only on guarded ports."""

import pytest

from conftest import BAD_V4, BAD_V6, HOST_V4, HOST_V6, OK_V4, OK_V6, policy_toml


def test_topology_peers_reach_host_with_their_own_source_addresses(topo):
    """Sanity check of the fixture: without proxyd both peers reach the host, and the server
    sees each peer's own address (no NAT in between), so the fence's allowlist is matched
    against real source addresses."""
    srv = topo.echo_server(29500)
    for peer, v4, v6 in ((topo.peer_ok, OK_V4, OK_V6), (topo.peer_bad, BAD_V4, BAD_V6)):
        assert topo.echo_roundtrip(peer, HOST_V4, 29500, b"v4") == b"v4"
        assert srv.accepted[-1] == "::ffff:" + v4
        assert topo.echo_roundtrip(peer, HOST_V6, 29500, b"v6") == b"v6"
        assert srv.accepted[-1] == v6
    assert topo.table_listing() is None


@pytest.mark.parametrize(
    "host_addr",
    [pytest.param(HOST_V4, id="ipv4"), pytest.param(HOST_V6, id="ipv6")],
)
def test_allowed_peer_echoes_and_denied_peer_is_refused(topo, host_addr):
    """(a) IPv4 and (b) IPv6: peer_ok reaches the guarded port and gets its bytes echoed;
    peer_bad's connect fails with ECONNREFUSED (deny = "reject" answers with a TCP reset)."""
    topo.echo_server(29500)
    # Without the fence both peers get through: the refusal below is the fence's doing.
    assert topo.connect_outcome(topo.peer_bad, host_addr, 29500) == "connected"

    topo.start_proxyd(policy_toml())

    payload = b"allowed peer payload \x00\xff"
    assert topo.echo_roundtrip(topo.peer_ok, host_addr, 29500, payload) == payload
    with pytest.raises(ConnectionRefusedError):
        topo.connect(topo.peer_bad, host_addr, 29500)


def test_loopback_traffic_on_the_host_is_never_fenced(topo):
    """The host's own processes reach the guarded port on any local address (iif lo accept)."""
    topo.echo_server(29500)
    topo.start_proxyd(policy_toml(allow=[]))  # nobody is allowed from outside
    for addr in (HOST_V4, HOST_V6, "127.0.0.1", "::1"):
        assert topo.echo_roundtrip(topo.host, addr, 29500, b"local") == b"local"
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "refused"


def test_deny_drop_makes_denied_peer_time_out_instead_of_refused(topo):
    """(g) deny = "drop": peer_bad's SYN is silently dropped, so its connect times out
    (a 1 s timeout here), while peer_ok still echoes."""
    topo.echo_server(29500)
    topo.start_proxyd(policy_toml(deny="drop"))

    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, 29500, b"drop mode") == b"drop mode"
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V6, 29500, b"drop mode") == b"drop mode"
    assert topo.connect_outcome(topo.peer_bad, HOST_V4, 29500, timeout=1.0) == "timeout"
    assert topo.connect_outcome(topo.peer_bad, HOST_V6, 29500, timeout=1.0) == "timeout"


def test_every_listed_port_is_guarded_and_unlisted_ports_are_not(topo):
    """(h) ports = [29500, 29501]: both ports admit peer_ok and refuse peer_bad, over both
    families; port 29502, not in the policy, stays open to peer_bad."""
    for port in (29500, 29501, 29502):
        topo.echo_server(port)
    topo.start_proxyd(policy_toml(ports=[29500, 29501]))

    for host_addr in (HOST_V4, HOST_V6):
        for port in (29500, 29501):
            assert topo.echo_roundtrip(topo.peer_ok, host_addr, port, b"p%d" % port) == b"p%d" % port
            assert topo.connect_outcome(topo.peer_bad, host_addr, port) == "refused", (host_addr, port)
        assert topo.echo_roundtrip(topo.peer_bad, host_addr, 29502, b"unguarded") == b"unguarded"


def test_allowlist_takes_cidr_blocks_and_plain_addresses(topo):
    """A CIDR block in [peers] admits every address in it (both peers); then, after a reload,
    plain addresses in `allow` admit exactly those addresses (peer_bad in, peer_ok out)."""
    topo.echo_server(29500)
    d = topo.start_proxyd(policy_toml(ok_peers=["10.77.0.0/30", "fd77::/126"]))
    for host_addr in (HOST_V4, HOST_V6):
        for peer in (topo.peer_ok, topo.peer_bad):
            assert topo.echo_roundtrip(peer, host_addr, 29500, b"block") == b"block", (peer, host_addr)

    topo.write_policy(policy_toml(allow=[BAD_V4, BAD_V6]))
    assert "policy reloaded" in d.reload()
    for host_addr in (HOST_V4, HOST_V6):
        assert topo.echo_roundtrip(topo.peer_bad, host_addr, 29500, b"addr") == b"addr", host_addr
        assert topo.connect_outcome(topo.peer_ok, host_addr, 29500) == "refused", host_addr
