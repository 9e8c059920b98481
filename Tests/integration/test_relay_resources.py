"""The relay's use of the machine: out of file descriptors it neither crashes nor spins, says so
in the log, and serves the connections that waited once descriptors are free again; busy polling
stops when a connection goes quiet."""

import os
import time

from conftest import HOST_V4, recv_exactly, run
from relaykit import STORE_PORT, assert_alive, msg_ping, msg_validate, relay_policy, start_relay


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def echo(s, data: bytes) -> bytes:
    s.sendall(data)
    return recv_exactly(s, len(data))


def test_relay_out_of_descriptors_pauses_accepting_without_spinning_and_recovers(topo):
    topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy(protocol="none", max_connections_per_peer=1000, accept_rate_per_peer=1000))
    pid = d.proc.pid
    first = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    first.settimeout(5)
    assert echo(first, b"one") == b"one"

    # No descriptor to spare: every accept now fails with EMFILE while connections queue up.
    run("prlimit", "--pid", str(pid), f"--nofile={len(os.listdir(f'/proc/{pid}/fd'))}:")
    waiting = [topo.connect(topo.peer_ok, HOST_V4, STORE_PORT) for _ in range(5)]
    time.sleep(0.3)
    before = cpu_seconds(pid)
    time.sleep(1.0)
    used = cpu_seconds(pid) - before
    assert used < 0.3, f"proxyd used {used:.2f} s of CPU in 1 s while out of descriptors: spinning"
    assert_alive(d)
    assert 'reason="accept-failed: Too many open files"' in d.log(), d.log()[-2000:]
    assert echo(first, b"still relayed") == b"still relayed"

    run("prlimit", "--pid", str(pid), "--nofile=4096:")
    for s in waiting:
        s.settimeout(5)
        assert echo(s, b"served after all") == b"served after all"
    assert_alive(d)


def test_busy_poll_stops_when_the_connection_goes_quiet_and_bytes_still_flow_after(topo):
    """busy_poll (200us by default with the TCPStore gate) keeps proxyd polling an active
    connection; once no byte has moved for that long it must go back to sleep: an idle relayed
    connection costs no CPU. The next command after the pause still gets through (the suspended
    read sources resumed)."""
    topo.echo_server(STORE_PORT)
    d = start_relay(topo, relay_policy())
    pid = d.proc.pid
    s = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    s.settimeout(5)
    assert echo(s, msg_validate()) == msg_validate()
    busy_before = cpu_seconds(pid)
    for nonce in range(2000):
        assert echo(s, msg_ping(nonce)) == msg_ping(nonce)
    busy = cpu_seconds(pid) - busy_before

    time.sleep(0.3)
    before = cpu_seconds(pid)
    time.sleep(1.0)
    idle = cpu_seconds(pid) - before
    assert idle < 0.05, f"proxyd used {idle:.2f} s of CPU in 1 s with its only connection idle: still polling"
    assert echo(s, msg_ping(7)) == msg_ping(7)
    s.close()
    assert_alive(d)
    print(f"2000 pings: proxyd CPU {busy:.3f} s; idle second: {idle:.3f} s")
