"""Real PyTorch 2.x peers through the TCPStore relay (kind = "tcp", protocol = "tcpstore"):
a TCPStore server on the host, clients in allowed namespaces reaching it at 10.77.0.1:29500 /
[fd77::1]:29500 (transparently redirected to the relay on 39500), a denied namespace refused,
and a whole gloo process group rendezvousing through the relay."""

import time

import pytest

from conftest import HOST_V4, HOST_V6, OK_V4, OK_V6
from relaykit import (OK2_V4, OK2_V6, RELAY_PORT, STORE_PORT, add_peer, assert_alive, events, peers,  # noqa: F401
                      relay_policy, ss_established, start_relay, torch_python)

pytestmark = pytest.mark.usefixtures("torch_python")


def test_allowed_peer_runs_tcpstore_commands_through_relay_and_denied_peer_is_refused(topo, peers):
    """A real TCPStore server on the host (libuv, dual stack), proxyd relaying port 29500 with
    the TCPStore gate. From peer_ok, fresh torch clients over IPv4 and IPv6 and one long-lived
    client all succeed at set/get/add/check/wait/multi_get/compare_set, and the host shows the
    long-lived client's connection landing on the relay's port 39500 (not the store's). From
    peer_bad, a raw connect is refused over both families and a torch client with a 3 s timeout
    fails to connect (DistNetworkError) within seconds instead of hanging."""
    peers.store_server(topo.host)
    d = start_relay(topo, relay_policy(handshake_timeout="2s", partial_timeout="2s"))

    bad = peers.start(topo.peer_bad, "tcpstore_client.py", HOST_V4, STORE_PORT, "--timeout", 3, "--tag", "bad",
                      name="client_bad")
    v4 = peers.start(topo.peer_ok, "tcpstore_client.py", HOST_V4, STORE_PORT, "--tag", "v4", name="client_v4")
    v6 = peers.start(topo.peer_ok, "tcpstore_client.py", HOST_V6, STORE_PORT, "--tag", "v6", name="client_v6")

    for host_addr in (HOST_V4, HOST_V6):
        with pytest.raises(ConnectionRefusedError):
            topo.connect(topo.peer_bad, host_addr, STORE_PORT)

    for client in (v4, v6):
        result = client.read_json(40)
        assert result["ok"] is True, f"{result}\n{client.describe()}\nproxyd log:\n{d.log()[-4000:]}"
        assert client.wait(10) == 0

    steady = peers.client_loop(topo.peer_ok, HOST_V4, tag="steady")
    for _ in range(3):
        result = steady.request("round")
        assert result["ok"] is True, f"{result}\nproxyd log:\n{d.log()[-4000:]}"
    on_relay = ss_established(topo, topo.host, RELAY_PORT)
    assert any(OK_V4 in remote for remote in on_relay), (
        f"peer_ok's connection is not on the relay's port {RELAY_PORT}: {on_relay}")

    refused = bad.read_json(40)
    assert refused["ok"] is False and refused.get("stage") == "connect", refused
    assert refused["error"] in ("DistNetworkError", "DistStoreError", "TimeoutError", "RuntimeError"), refused
    # Time spent in TCPStore(...) itself (torch retries a refused connect until its timeout).
    assert refused["elapsed"] < 10, f"denied client took {refused['elapsed']}s to give up"
    assert bad.wait(10) == 1
    assert_alive(d)


def test_gloo_process_group_of_three_ranks_rendezvouses_through_relay_and_all_reduces(topo, peers):
    """init_process_group("gloo", init_method="env://"), world size 3: rank 0 on the host hosts
    the TCPStore (MASTER_ADDR=10.77.0.1, MASTER_PORT=29500; its own client connects locally, so
    directly), ranks 1 and 2 in two different allowed namespaces reach the store only through the
    relay. The group forms, all_reduce of rank+1 gives 6 on every rank, a barrier passes and
    destroy_process_group returns; all within 60 s. (Gloo's own rank-to-rank connections use
    ephemeral ports, which the guard does not touch.)"""
    peer_ok2 = add_peer(topo, "oktwo", OK2_V4, OK2_V6)
    d = start_relay(topo, relay_policy(ok_peers=[OK_V4, OK_V6, OK2_V4, OK2_V6]))

    common = {"WORLD_SIZE": "3", "MASTER_ADDR": HOST_V4, "MASTER_PORT": str(STORE_PORT)}
    ranks = []
    for rank, ns, ifname in ((0, topo.host, "br0"), (1, topo.peer_ok, "eth0"), (2, peer_ok2, "eth0")):
        env = dict(common, RANK=str(rank), GLOO_SOCKET_IFNAME=ifname)
        ranks.append(peers.start(ns, "ddp_rank.py", env=env, name=f"rank{rank}"))

    deadline = time.monotonic() + 60
    results = []
    for p in ranks:
        result = p.read_json(max(1.0, deadline - time.monotonic()))
        results.append(result)
    for p, result in zip(ranks, results):
        assert result["ok"] is True, f"{result}\n{p.describe()}\nproxyd log:\n{d.log()[-4000:]}"
        assert result["sum"] == 6.0, result
        assert p.wait(max(1.0, deadline - time.monotonic())) == 0, p.describe()
    assert sorted(r["rank"] for r in results) == [0, 1, 2]
    # Ranks 1 and 2 went through the relay (proxyd's debug event for a relayed connection).
    relayed = [e.get("peer", "") for e in events(d, "connection relayed", guard="store")]
    for ip in (OK_V4, OK2_V4):
        assert any(p == ip or p.startswith(ip + ":") for p in relayed), f"{ip} not relayed: {relayed}\n{d.log()[-4000:]}"
    assert_alive(d)
