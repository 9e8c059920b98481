"""The host guard (kind = "host") in the kernel: every TCP and UDP port of the host namespace is
refused to peers outside its allowlist, except its public ports, over IPv4 and IPv6; a real gloo
world of three (TCPStore on a fixed port, gloo on ephemeral ports it picks itself) works for the
allowed peers; connections the host opens itself (TCP and UDP), loopback and ICMP pass; deny =
"drop" refuses in silence; removing a peer from the allowlist cuts its established flows.

The first two tests run without any fence: they show the plumbing (a third peer, UDP, gloo's
listeners) works and that peer_bad does reach those listeners, so that every refusal later is the
fence's doing."""

import socket

import pytest

from conftest import BAD_V4, BAD_V6, HOST_V4, HOST_V6, OK2_V4, OK2_V6, OK_V4, OK_V6, new_socket
from controlkit import reload
from hostkit import (HTTP_PORT, STORE_PORT, GlooWorld, echo_on, families_to_probe, host_policy, http_get,
                     http_server, listeners, ping, still_echoes, tcp_echo, tcp_outcome, udp_echo, udp_outcome)
from relaykit import assert_alive, peers, torch_python  # noqa: F401

FAMILIES = [pytest.param(HOST_V4, id="ipv4"), pytest.param(HOST_V6, id="ipv6")]


def test_third_peer_reaches_the_host_like_the_others_over_tcp_and_udp_without_a_fence(topo):
    """Sanity check of the fixture: peer_ok2 (10.77.0.4, fd77::4) is on the same bridge; without
    proxyd all three peers reach a TCP and a UDP echo server on the host over both families, and
    the servers see each peer's own address (no NAT)."""
    ok2 = topo.add_peer_ok2()
    srv = tcp_echo(topo, topo.host, 5000)
    udp = udp_echo(topo, topo.host, 5001)
    for ns, v4, v6 in ((topo.peer_ok, OK_V4, OK_V6), (ok2, OK2_V4, OK2_V6), (topo.peer_bad, BAD_V4, BAD_V6)):
        assert tcp_outcome(topo, ns, HOST_V4, 5000) == "echo"
        assert srv.accepted[-1] == "::ffff:" + v4
        assert tcp_outcome(topo, ns, HOST_V6, 5000) == "echo"
        assert srv.accepted[-1] == v6
        assert udp_outcome(topo, ns, HOST_V4, 5001) == "reply"
        assert udp.senders[-1] == "::ffff:" + v4
        assert udp_outcome(topo, ns, HOST_V6, 5001) == "reply"
        assert udp.senders[-1] == v6
    # Nothing listens on 5002: UDP gets a port unreachable, TCP a reset (the kernel's own refusals).
    assert udp_outcome(topo, topo.peer_bad, HOST_V4, 5002) == "refused"
    assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 5002) == "refused"
    assert topo.table_listing() is None


@pytest.mark.usefixtures("torch_python")
def test_gloo_world_of_three_all_reduces_and_its_listeners_are_open_to_peer_bad_without_a_fence(topo, peers):
    """No proxyd: rank 0 in host (TCPStore on 29500, MASTER_ADDR = 10.77.0.1), ranks 1 and 2 in
    peer_ok and peer_ok2; the group forms and all_reduce gives 6. While it is held open, the host
    lists the store's listener and one of gloo's own on an ephemeral port (owned by rank 0), and
    peer_bad can connect to both (a stray connection does not disturb gloo): the fence test below
    refuses what is open here."""
    ok2 = topo.add_peer_ok2()
    world = GlooWorld(peers, topo, ok2)
    world.formed()
    tcp = listeners(topo, topo.host, "tcp")
    rank0 = f"pid={world.pids[0]},"
    assert any(port == STORE_PORT for _, port, _ in tcp), tcp
    gloo_ports = [port for _, port, proc in tcp if rank0 in proc and port != STORE_PORT]
    assert gloo_ports and all(port >= 1024 for port in gloo_ports), f"no gloo listener of rank 0: {tcp}"
    assert topo.connect_outcome(topo.peer_bad, HOST_V4, STORE_PORT) == "connected"
    assert topo.connect_outcome(topo.peer_bad, HOST_V6, STORE_PORT) == "connected"
    probed = set()
    for bound, port, proc in tcp:
        if rank0 in proc and port != STORE_PORT:
            for addr in families_to_probe(bound):
                assert topo.connect_outcome(topo.peer_bad, addr, port) == "connected", (bound, port)
                probed.add(port)
    assert probed == set(gloo_ports), (probed, tcp)
    world.finish()
    assert topo.table_listing() is None


@pytest.mark.usefixtures("torch_python")
def test_gloo_world_of_three_all_reduces_through_the_host_guard_and_peer_bad_reaches_only_the_public_port(topo, peers):
    """A host guard allows peer_ok and peer_ok2 (@workers, both families), public = [8000] (an
    HTTP server on TCP, a UDP echo on UDP). A real gloo world of three forms through it (rank 0
    in host with its TCPStore on 29500, ranks 1 and 2 in the allowed peers, gloo on ephemeral
    ports it picks itself) and all_reduce sums to 6. While the world is held open, peer_bad is
    refused with a reset by EVERY TCP listener of the host but the public one — the store,
    gloo's ephemeral listener of rank 0, an echo listener bound to port 0 — over every family
    each listens on, and a real torch TCPStore client in peer_bad fails at connect; a UDP echo
    on an ephemeral port never answers it (IPv4 and IPv6), while it answers both allowed peers.
    The public port answers peer_bad and the allowed peers, TCP (HTTP GET) and UDP, over both
    families. Then the world finishes: a barrier and a second all_reduce pass."""
    ok2 = topo.add_peer_ok2()
    http_server(topo, topo.host, HTTP_PORT)
    public_udp = udp_echo(topo, topo.host, HTTP_PORT)
    ephemeral = tcp_echo(topo, topo.host, 0)
    udp = udp_echo(topo, topo.host, 0)
    d = topo.start_proxyd(host_policy())
    log = lambda: f"proxyd log:\n{d.log()[-3000:]}"  # noqa: E731

    world = GlooWorld(peers, topo, ok2)
    world.formed(context=log)

    tcp = listeners(topo, topo.host, "tcp")
    rank0 = f"pid={world.pids[0]},"
    gloo_ports = [port for _, port, proc in tcp if rank0 in proc and port != STORE_PORT]
    assert gloo_ports, f"no gloo listener of rank 0: {tcp}"
    probed = set()
    for bound, port, proc in tcp:
        if port == HTTP_PORT:
            continue
        for addr in families_to_probe(bound):
            outcome = tcp_outcome(topo, topo.peer_bad, addr, port)
            assert outcome == "refused", f"peer_bad -> [{addr}]:{port} ({proc}): {outcome}\n{log()}"
            probed.add(port)
    assert {STORE_PORT, ephemeral.port, *gloo_ports} <= probed, (probed, tcp)

    # The allowed peers do reach the ephemeral listener (so the refusal above is the fence's).
    for ns in (topo.peer_ok, ok2):
        for addr in (HOST_V4, HOST_V6):
            assert tcp_outcome(topo, ns, addr, ephemeral.port) == "echo", (ns, addr)
            assert udp_outcome(topo, ns, addr, udp.port) == "reply", (ns, addr)
    for addr in (HOST_V4, HOST_V6):
        assert udp_outcome(topo, topo.peer_bad, addr, udp.port) in ("refused", "timeout"), addr
    assert not [sender for sender in udp.senders if sender in ("::ffff:" + BAD_V4, BAD_V6)], udp.senders

    # A real TCPStore client from peer_bad: refused at connect, quickly.
    bad = peers.start(topo.peer_bad, "tcpstore_client.py", HOST_V4, STORE_PORT, "--timeout", 3, "--tag", "bad",
                      name="client_bad")
    refused = bad.read_json(40)
    assert refused["ok"] is False and refused.get("stage") == "connect", refused
    assert refused["elapsed"] < 10, refused
    assert bad.wait(10) == 1

    for ns in (topo.peer_bad, topo.peer_ok, ok2):
        for addr in (HOST_V4, HOST_V6):
            assert http_get(topo, ns, addr) == b"ringfence public port\n", (ns, addr)
            assert udp_outcome(topo, ns, addr, HTTP_PORT) == "reply", (ns, addr)
    assert BAD_V6 in public_udp.senders and "::ffff:" + BAD_V4 in public_udp.senders

    world.finish(context=log)
    assert_alive(d)


@pytest.mark.parametrize("peer_addr", FAMILIES)
def test_connections_the_host_opens_to_peer_bad_work_over_tcp_and_udp_but_only_replies_come_back(topo, peer_addr):
    """A host guard that does not allow peer_bad. The host connects OUT to a TCP echo server in
    peer_bad and gets its bytes back; it sends a UDP request to a UDP echo server in peer_bad and
    gets the reply (on an unconnected socket). A datagram peer_bad sends to that same host socket
    from another port is not a reply and never arrives. peer_bad's pings are answered (ICMP
    passes), peer_bad is still refused on the host's ports, and the host reaches its own
    listeners over loopback and its own addresses."""
    bad_addr = BAD_V4 if peer_addr == HOST_V4 else BAD_V6
    tcp_echo(topo, topo.peer_bad, 6000)
    udp_echo(topo, topo.peer_bad, 6001)
    tcp_echo(topo, topo.host, 5000)
    d = topo.start_proxyd(host_policy())

    out = topo.connect(topo.host, bad_addr, 6000)
    for i in range(3):
        assert echo_on(out, b"outbound %d" % i) == b"outbound %d" % i
    out.close()

    family = socket.AF_INET6 if ":" in bad_addr else socket.AF_INET
    s = new_socket(topo.host, family, socket.SOCK_DGRAM)
    topo.sockets.append(s)
    s.bind((peer_addr, 0))
    s.settimeout(2.0)
    s.sendto(b"udp request", (bad_addr, 6001))
    data, sender = s.recvfrom(65536)
    assert data == b"udp request" and sender[0] == bad_addr and sender[1] == 6001, (data, sender)
    host_port = s.getsockname()[1]
    # Not a reply: peer_bad writes to the host's client port from a fresh socket.
    stray = new_socket(topo.peer_bad, family, socket.SOCK_DGRAM)
    topo.sockets.append(stray)
    stray.sendto(b"unsolicited", (peer_addr, host_port))
    s.settimeout(1.0)
    with pytest.raises((socket.timeout, TimeoutError)):
        got = s.recvfrom(65536)
        pytest.fail(f"an unsolicited datagram from peer_bad reached the host: {got}")

    assert ping(topo, topo.peer_bad, peer_addr), "peer_bad's ping was not answered"
    assert tcp_outcome(topo, topo.peer_bad, peer_addr, 5000) == "refused"
    for addr in ("127.0.0.1", "::1", HOST_V4, HOST_V6):
        assert tcp_outcome(topo, topo.host, addr, 5000) == "echo", addr
    assert_alive(d)


def test_deny_drop_makes_peer_bad_time_out_on_tcp_and_get_no_answer_on_udp(topo):
    """[firewall] deny = "drop": peer_bad's connect to a host port times out (no reset) and its
    datagram gets neither a reply nor a port unreachable, over both families, while peer_ok
    echoes on both protocols."""
    tcp_echo(topo, topo.host, 5000)
    udp_echo(topo, topo.host, 5001)
    d = topo.start_proxyd(host_policy(deny="drop"))
    for addr in (HOST_V4, HOST_V6):
        assert tcp_outcome(topo, topo.peer_ok, addr, 5000) == "echo", addr
        assert udp_outcome(topo, topo.peer_ok, addr, 5001) == "reply", addr
        assert tcp_outcome(topo, topo.peer_bad, addr, 5000) == "timeout", addr
        assert udp_outcome(topo, topo.peer_bad, addr, 5001) == "timeout", addr
    assert_alive(d)


def test_reload_removing_a_peer_from_the_host_allowlist_cuts_its_established_flows(topo):
    """peer_ok and peer_ok2, both allowed, each hold an echoing connection to a host port per
    family. `proxyctl reload` with a policy whose workers are peer_ok only: peer_ok2's
    established connections stop echoing (reset or silence) and its new connections are
    refused; peer_ok's carry on."""
    ok2 = topo.add_peer_ok2()
    tcp_echo(topo, topo.host, 5000)
    d = topo.start_proxyd(host_policy())
    held = {}
    for ns in (topo.peer_ok, ok2):
        for addr in (HOST_V4, HOST_V6):
            s = topo.connect(ns, addr, 5000)
            assert echo_on(s, b"before") == b"before"
            held[(ns, addr)] = s

    topo.write_policy(host_policy(workers=[OK_V4, OK_V6]))
    reply = reload(d)
    assert reply["ok"] is True, reply

    for (ns, addr), s in held.items():
        if ns == ok2:
            assert not still_echoes(s, timeout=2.0), f"peer_ok2's connection over {addr} still echoes"
            assert tcp_outcome(topo, ok2, addr, 5000) == "refused", addr
        else:
            assert still_echoes(s), f"peer_ok's connection over {addr} was lost"
    assert_alive(d)
