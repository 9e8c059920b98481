"""proxyd needs CAP_NET_ADMIN and nothing else, as the Kubernetes sidecar and the DaemonSet run it
(deploy/kubernetes: `capabilities: {drop: [ALL], add: [NET_ADMIN]}`): started as root with every
other capability dropped from its bounding set, it applies the fence, relays, finds and brokers
an XPUB that another user's process bound on port 0, fences the host's other ports, and reloads.
Discovery then polls (tracefs cannot be mounted without CAP_SYS_ADMIN), which it says."""

import re
import subprocess

from conftest import BAD_V4, HOST_V4, OK_V4, OK_V6, PROXYCTL
from hostkit import tcp_echo, wait_until

NET_ADMIN_ONLY = ("setpriv", "--bounding-set=-all,+net_admin", "--inh-caps=-all")
CAP_NET_ADMIN = 1 << 12

POLICY = f"""
[[guard]]
name = "store"
kind = "tcp"
port = 29500
allow = ["{OK_V4}", "{OK_V6}"]

[[guard]]
name = "xpubs"
kind = "zmq-xpub"
discover = true
allow = ["{OK_V4}", "{OK_V6}"]

[[guard]]
name = "host"
kind = "host"
public = [8000]
allow = ["{OK_V4}", "{OK_V6}"]
"""

XPUB = """
import sys, zmq
socket = zmq.Context().socket(zmq.XPUB)
print(socket.bind_to_random_port("tcp://*"), flush=True)
sys.stdin.readline()
"""


def capabilities(pid: int) -> dict[str, int]:
    text = open(f"/proc/{pid}/status").read()
    return {key: int(value, 16) for key, value in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", text, re.M)}


def test_proxyd_with_net_admin_alone_fences_relays_discovers_and_reloads(topo):
    tcp_echo(topo, topo.host, 29500)
    tcp_echo(topo, topo.host, 29600)  # another port of the host: the host guard's
    d = topo.start_proxyd(POLICY, wrapper=NET_ADMIN_ONLY)
    caps = capabilities(d.proc.pid)
    assert caps["CapEff"] == CAP_NET_ADMIN and caps["CapBnd"] == CAP_NET_ADMIN, caps

    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, 29500, b"through the relay") == b"through the relay"
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, 29600, b"host guard") == b"host guard"
    for port in (29500, 29600):
        assert topo.connect_outcome(topo.peer_bad, HOST_V4, port) == "refused", port

    engine = subprocess.Popen(
        ["ip", "netns", "exec", topo.host, "setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
         "/usr/bin/python3", "-c", XPUB], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(engine.stdout.readline())
        d.wait_for_log(rf'msg="XPUB discovered and brokered".*guard=xpubs/0\.0\.0\.0:{port}\b')
        listing = subprocess.run([str(PROXYCTL), "listeners", "--control-socket", d.control_socket],
                                 capture_output=True, text=True, timeout=15).stdout
        assert re.search(rf":{port}\s.*zmtp XPUB\s+brokered xpubs/", listing), listing
        assert topo.connect_outcome(topo.peer_bad, HOST_V4, port) == "refused"
    finally:
        engine.stdin.close()
        engine.wait(timeout=10)
    assert "mounting it failed (Operation not permitted)" in d.log()

    topo.write_policy(POLICY.replace(f'"{OK_V4}", "{OK_V6}"', f'"{OK_V4}", "{OK_V6}", "{BAD_V4}"'))
    assert 'msg="policy reloaded"' in d.reload()
    wait_until(lambda: topo.connect_outcome(topo.peer_bad, HOST_V4, 29600) == "connected", 3,
               "peer_bad admitted after the reload")
    assert d.proc.poll() is None
