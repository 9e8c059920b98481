"""A rendezvous at scale through the TCPStore gate: 4,096 real torch TCPStore clients, from four
namespaces, connected through the relay at once, each completing a set and a get."""

import os
import time

import pytest

from conftest import HOST_V4, OK_V4, OK_V6
from relaykit import (OK2_V4, OK2_V6, RELAY_PORT, STORE_PORT, add_peer, assert_alive, events, peers,  # noqa: F401
                      proxyd_pid, relay_policy, rss_bytes, ss_established, start_relay, torch_python)

pytestmark = pytest.mark.usefixtures("torch_python")

NAMESPACES = 4
CLIENTS_PER_NAMESPACE = 1024
TOTAL = NAMESPACES * CLIENTS_PER_NAMESPACE
OK3_V4, OK3_V6 = "10.77.0.5", "fd77::5"
OK4_V4, OK4_V6 = "10.77.0.6", "fd77::6"


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_4096_tcpstore_clients_from_four_namespaces_connect_at_once_and_each_sets_and_gets(topo, peers):
    """A real TCPStore server (torch 2.13, libuv) on the host behind a kind = "tcp",
    protocol = "tcpstore" guard with the default max_connections; four allowed namespaces each
    run one process holding 1,024 TCPStore clients (4,096 in all, a 512-node job of 8 ranks a
    node; the per-peer caps are raised because each namespace stands for 256 nodes). All 4,096
    connect and stay connected at once (the host sees 4,096 established connections on the
    relay's port), then each sets a key of its own and gets the same value back. proxyd holds
    about two descriptors per idle relayed connection (pipes only while bytes move), logs no
    resource failure, and stays up. Bounded: well under two minutes."""
    began = time.monotonic()
    extra = [("oktwo", OK2_V4, OK2_V6), ("okthree", OK3_V4, OK3_V6), ("okfour", OK4_V4, OK4_V6)]
    namespaces = [topo.peer_ok] + [add_peer(topo, role, v4, v6) for role, v4, v6 in extra]
    allowed = [OK_V4, OK_V6] + [a for _, v4, v6 in extra for a in (v4, v6)]
    peers.store_server(topo.host)
    d = start_relay(topo, relay_policy(ok_peers=allowed, max_connections_per_peer=CLIENTS_PER_NAMESPACE,
                                       accept_rate_per_peer=100000))
    pid = proxyd_pid(d)
    fds_before, rss_before = descriptors(pid), rss_bytes(pid)

    swarms = [peers.start(ns, "tcpstore_swarm.py", HOST_V4, STORE_PORT, CLIENTS_PER_NAMESPACE, "--tag", f"ns{i}",
                          "--timeout", 60, name=f"swarm{i}")
              for i, ns in enumerate(namespaces)]
    for swarm in swarms:
        hello = swarm.read_json(90)
        assert hello["connected"] == CLIENTS_PER_NAMESPACE and hello["failures"] == 0, (
            f"{hello}\n{swarm.describe()}\nproxyd log:\n{d.log()[-4000:]}")

    on_relay = ss_established(topo, topo.host, RELAY_PORT)
    assert len(on_relay) == TOTAL, f"{len(on_relay)} connections on the relay's port, not {TOTAL}"
    fds, rss = descriptors(pid), rss_bytes(pid)
    # Two sockets per idle connection; pipes are borrowed only while bytes move.
    assert fds - fds_before <= 2 * TOTAL + 256, f"proxyd holds {fds - fds_before} more descriptors for {TOTAL} idle connections"
    print(f"\nproxyd, {TOTAL} idle relayed connections: {(fds - fds_before) / TOTAL:.2f} descriptors and "
          f"{(rss - rss_before) / TOTAL / 1024:.1f} KiB RSS each")

    for swarm in swarms:
        swarm.proc.stdin.write("go\n")
        swarm.proc.stdin.flush()
    for swarm in swarms:
        result = swarm.read_json(60)
        assert result["ok"] is True and result["done"] == CLIENTS_PER_NAMESPACE, (
            f"{result}\n{swarm.describe()}\nproxyd log:\n{d.log()[-4000:]}")

    assert not events(d, "connection closed: out of resources"), d.log()[-4000:]
    assert not events(d, "connection closed: protocol violation"), d.log()[-4000:]
    assert_alive(d)
    assert time.monotonic() - began < 110, f"took {time.monotonic() - began:.0f}s"
