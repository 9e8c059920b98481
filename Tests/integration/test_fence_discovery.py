"""A discover guard's kernel part (issue 13): proxyd fills its run-time sets (`GUARD.ports`,
`GUARD.hold`, `GUARD.divert`, `GUARD.listen`) as it discovers XPUBs; here `proxyctl discovered`
makes the same changes (`Firewall.change`), and plain TCP servers stand in for the engine's XPUB
and for its broker. Real connections from an allowed and a denied namespace prove what each
change does, that reloads keep the elements, and that proxyd starts, reloads and stops with a
discover guard in its policy (brokers are not made yet: that is the daemon's discovery part)."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from pathlib import Path

from conftest import BAD_V4, HOST_V4, HOST_V6, OK_V4, OK_V6, PROXYCTL, Topology, family_of, new_socket, run
from relaykit import _Listener
from test_fence_in_place import assert_same_as_fresh

XPUB_PORT = 25557  # the "engine's XPUB"
OTHER_PORT = 25558  # a second listener of the guard
LISTEN_PORT = 35557  # the "broker" of XPUB_PORT
GUARD = "xpubs"


def discover_policy(allow: list[str], extra: str = "") -> str:
    quoted = ", ".join(f'"{a}"' for a in allow)
    return (
        '[[guard]]\nname = "ssh"\nkind = "firewall"\nport = 22\nallow = []\n'
        f'\n[[guard]]\nname = "{GUARD}"\nkind = "zmq-xpub"\ndiscover = true\nprocess = "python"\nallow = [{quoted}]\n'
        + extra
    )


class BannerServer(_Listener):
    """A dual-stack TCP server that sends `banner` to each connection and closes it: which
    server a client reached, the XPUB itself or its broker, is what it reads."""

    def __init__(self, ns: str, port: int, banner: bytes):
        self.banner = banner
        super().__init__(ns, port)

    def serve(self, conn: socket.socket) -> None:
        conn.sendall(self.banner)
        conn.close()


def reached(ns: str, address: str, port: int, timeout: float = 1.0) -> str:
    """The banner of the server a connection from `ns` reached, or "refused" / "timeout"."""
    s = new_socket(ns, family_of(address))
    try:
        s.settimeout(timeout)
        try:
            s.connect((address, port))
            return s.recv(64).decode()
        except ConnectionRefusedError:
            return "refused"
        except (socket.timeout, TimeoutError):
            return "timeout"
    finally:
        s.close()


def discovered(topo: Topology, *changes: str, each: bool = False) -> dict:
    """`proxyctl discovered GUARD CHANGES...` in the host namespace: the sets afterwards."""
    args = [str(PROXYCTL), "discovered", GUARD, *(["--each"] if each else []), *changes]
    return json.loads(topo.exec(topo.host, *args).stdout)


def test_discover_guard_sets_fence_hold_divert_and_release_real_connections(topo):
    servers = [BannerServer(topo.host, XPUB_PORT, b"xpub"), BannerServer(topo.host, OTHER_PORT, b"other"),
               BannerServer(topo.host, LISTEN_PORT, b"broker")]
    try:
        d = topo.start_proxyd(discover_policy(["@ok"], extra=f'\n[peers]\nok = ["{OK_V4}", "{OK_V6}"]\n'))
        listing = topo.table_listing()
        for name in ("xpubs.ports", "xpubs.hold", "xpubs.listen"):
            assert f"set {name} {{" in listing, listing
        assert "map xpubs.divert {" in listing, listing
        assert discovered(topo) == {"ports": [], "hold": [], "divert": {}, "change_us": []}

        # Not discovered yet: the discover guard does not fence the port (no host guard here).
        assert reached(topo.peer_bad, HOST_V4, XPUB_PORT) == "xpub"

        # Held: the allowed peer's SYN is dropped (it waits), the denied one is refused.
        assert discovered(topo, f"hold:{XPUB_PORT}")["hold"] == [XPUB_PORT]
        assert reached(topo.peer_ok, HOST_V4, XPUB_PORT) == "timeout"
        assert reached(topo.peer_bad, HOST_V4, XPUB_PORT) == "refused"

        # A client held while classifying gets through once the redirect is live: its TCP
        # retries the SYN (about 1 s later) and reaches the broker.
        result: list[str] = []
        waiting = threading.Thread(target=lambda: result.append(reached(topo.peer_ok, HOST_V4, XPUB_PORT, timeout=5.0)))
        waiting.start()
        time.sleep(0.3)
        state = discovered(topo, f"divert:{XPUB_PORT}:{LISTEN_PORT}")
        assert state == {"ports": [XPUB_PORT], "hold": [], "divert": {str(XPUB_PORT): LISTEN_PORT},
                         "change_us": state["change_us"]}
        waiting.join(timeout=6)
        assert result == ["broker"]

        # Diverted: the allowed peer reaches the broker over both families, the denied one is
        # refused, and the broker's port refuses everyone who comes to it directly.
        assert reached(topo.peer_ok, HOST_V4, XPUB_PORT) == "broker"
        assert reached(topo.peer_ok, HOST_V6, XPUB_PORT) == "broker"
        assert reached(topo.peer_bad, HOST_V4, XPUB_PORT) == "refused"
        assert reached(topo.peer_ok, HOST_V4, LISTEN_PORT) == "refused"
        assert reached(topo.peer_bad, HOST_V4, LISTEN_PORT) == "refused"
        # Local processes keep reaching the XPUB itself.
        assert reached(topo.host, "127.0.0.1", XPUB_PORT) == "xpub"

        # A port the guard covers but that is neither held nor in the map passes on, undiverted,
        # to its own listener, still fenced by the allowlist.
        discovered(topo, f"hold:{OTHER_PORT}")
        topo.nft("delete", "element", "inet", "ringfence", "xpubs.hold", "{", str(OTHER_PORT), "}")
        assert reached(topo.peer_ok, HOST_V4, OTHER_PORT) == "other"
        assert reached(topo.peer_bad, HOST_V4, OTHER_PORT) == "refused"

        # Repeating a change, or releasing a port the kernel does not hold, is no error.
        discovered(topo, f"hold:{OTHER_PORT}", f"hold:{OTHER_PORT}", "release:40000:40001")
        discovered(topo, f"release:{OTHER_PORT}", f"release:{OTHER_PORT}")

        # An allowlist reload (elements over netlink) and a structural one (a guard added:
        # chains rewritten) keep the run-time elements; the new allowlist applies to them.
        before = discovered(topo)
        topo.write_policy(discover_policy(["@ok", BAD_V4], extra=f'\n[peers]\nok = ["{OK_V4}", "{OK_V6}"]\n'))
        log = d.reload()
        assert 'msg="policy reloaded"' in log and "set elements changed" in log, log
        assert discovered(topo) == before
        assert reached(topo.peer_bad, HOST_V4, XPUB_PORT) == "broker"
        topo.write_policy(discover_policy(
            ["@ok"], extra=f'\n[peers]\nok = ["{OK_V4}", "{OK_V6}"]\n'
            '\n[[guard]]\nname = "more"\nkind = "firewall"\nport = 23\nallow = []\n'))
        log = d.reload()
        assert 'msg="policy reloaded"' in log and "chains rewritten" in log, log
        assert discovered(topo) == before
        assert reached(topo.peer_bad, HOST_V4, XPUB_PORT) == "refused"
        assert reached(topo.peer_ok, HOST_V4, XPUB_PORT) == "broker"

        # Released: no longer diverted (nor fenced by this guard).
        state = discovered(topo, f"release:{XPUB_PORT}:{LISTEN_PORT}")
        assert (state["ports"], state["hold"], state["divert"]) == ([], [], {})
        assert "elements" not in topo.nft("list", "set", "inet", "ringfence", "xpubs.listen").stdout
        assert reached(topo.peer_ok, HOST_V4, XPUB_PORT) == "xpub"

        # Removing the guard deletes its sets; proxyd stops cleanly.
        topo.write_policy('[[guard]]\nname = "ssh"\nkind = "firewall"\nport = 22\nallow = []\n')
        assert 'msg="policy reloaded"' in d.reload()
        assert "xpubs." not in topo.table_listing()
        assert d.terminate() == 0, d.log()
    finally:
        for server in servers:
            server.close()


def test_one_discovery_change_takes_well_under_a_millisecond(topo):
    """Each change (one transaction, sets read first) timed inside one process, as proxyd makes
    them: hold, divert and release of 20 ports."""
    d = topo.start_proxyd(discover_policy([OK_V4]))
    changes = []
    for k in range(20):
        port = 26000 + k
        changes += [f"hold:{port}", f"divert:{port}:{port + 10000}", f"release:{port}:{port + 10000}"]
    timings = discovered(topo, *changes, each=True)["change_us"]
    steady = timings[1:]  # the first opens the socket
    print(f"\ndiscovery change, µs: first {timings[0]}, median {statistics.median(steady)}, max {max(steady)}")
    assert statistics.median(steady) < 1000, timings
    assert discovered(topo)["ports"] == []
    assert d.terminate() == 0, d.log()


def test_discover_guard_tables_load_and_reloads_build_the_table_a_fresh_start_does(topo, scratch_netns):
    """`proxyctl nft` of the golden discover policies loads in a fresh namespace; a discover
    guard added, changed (audit mode, a host guard beside it) and removed by reloads leaves,
    each time, exactly the table nft builds from `proxyctl nft` of the same policy."""
    golden = Path(__file__).resolve().parents[1] / "RingfenceFirewallTests" / "Golden"
    for name in ("discover", "discover-host", "discover-audit"):
        script = run(PROXYCTL, "nft", golden / f"{name}.toml").stdout
        run("ip", "netns", "exec", scratch_netns, "nft", "-f", "-", input=script)

    ssh_only = '[[guard]]\nname = "ssh"\nkind = "firewall"\nport = 22\nallow = []\n'
    d = topo.start_proxyd(ssh_only)
    host = f'\n[[guard]]\nname = "host"\nkind = "host"\npublic = [8000]\nallow = ["{OK_V4}"]\n'
    for text in (discover_policy([OK_V4]), discover_policy([OK_V4, BAD_V4], extra='mode = "audit"\n' + host),
                 discover_policy([OK_V4]), ssh_only):
        topo.write_policy(text)
        log = d.reload()
        assert 'msg="policy reloaded"' in log and "table replaced" not in log, log
        assert_same_as_fresh(topo, scratch_netns)
    assert d.terminate() == 0, d.log()
