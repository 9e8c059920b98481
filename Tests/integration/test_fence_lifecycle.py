"""proxyd's life cycle and the kernel: it touches no other table, fails closed on SIGTERM
unless told to remove its table, and refuses to start (applying nothing) on a bad policy or when
another proxyd already holds its listen port."""

import os
import tempfile

import pytest

from conftest import EXAMPLE_POLICY, HOST_V4, HOST_V6, PROXYD, Proxyd, policy_toml, run
from relaykit import RELAY_PORT, STORE_PORT, assert_alive, relay_policy, start_relay

OTHER_TABLES = """\
table inet othertable {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 9999 counter
    }
}
table ip keepme {
    set blocked {
        type ipv4_addr
        elements = { 192.0.2.1 }
    }
    chain out {
        type filter hook output priority 0; policy accept;
        ip daddr @blocked counter drop
    }
}
"""


@pytest.mark.parametrize("remove_on_exit", [False, True], ids=["keep_on_exit", "remove_on_exit"])
def test_other_tables_survive_start_reload_and_stop(topo, remove_on_exit):
    """(e) `table inet othertable` and `table ip keepme`, made before proxyd starts, are
    listed identically after start, after a reload and after SIGTERM (also when SIGTERM
    deletes Ringfence's own table)."""
    topo.nft("-f", "-", input=OTHER_TABLES)
    before = {name: topo.table_listing(name, family) for family, name in (("inet", "othertable"), ("ip", "keepme"))}
    assert all(before.values()), before
    assert "tcp dport 9999 counter" in before["othertable"]
    assert "ip daddr @blocked counter" in before["keepme"]

    def others():
        return {name: topo.table_listing(name, family) for family, name in (("inet", "othertable"), ("ip", "keepme"))}

    d = topo.start_proxyd(policy_toml(remove_on_exit=remove_on_exit))
    assert topo.table_listing() is not None
    assert others() == before, "starting proxyd changed another table"

    topo.write_policy(policy_toml(remove_on_exit=remove_on_exit, ports=[29500, 29501]))
    assert 'msg="policy reloaded"' in d.reload()
    assert others() == before, "reloading changed another table"

    assert d.terminate() == 0, d.log()
    assert others() == before, "stopping proxyd changed another table"
    assert (topo.table_listing() is None) == remove_on_exit


def test_sigterm_exits_zero_and_leaves_fence_standing_by_default(topo):
    """(f) remove_on_exit defaults to false: SIGTERM makes proxyd exit 0, the table stays, and
    the denied peer is still refused after proxyd is gone (fail closed); the allowed peer still
    gets through."""
    topo.echo_server(29500)
    d = topo.start_proxyd(policy_toml())
    before = topo.table_listing()

    assert d.terminate() == 0, d.log()
    assert "fence left in place" in d.log()
    assert topo.table_listing() == before
    for host_addr in (HOST_V4, HOST_V6):
        assert topo.connect_outcome(topo.peer_bad, host_addr, 29500) == "refused", host_addr
        assert topo.echo_roundtrip(topo.peer_ok, host_addr, 29500, b"after exit") == b"after exit"


def test_sigterm_with_remove_on_exit_deletes_the_table(topo):
    """(f) remove_on_exit = true: SIGTERM makes proxyd exit 0 and delete its table, so the
    formerly denied peer gets through again."""
    topo.echo_server(29500)
    d = topo.start_proxyd(policy_toml(remove_on_exit=True))
    assert topo.table_listing() is not None
    assert topo.connect_outcome(topo.peer_bad, HOST_V4, 29500) == "refused"

    assert d.terminate() == 0, d.log()
    assert "fence removed" in d.log()
    assert topo.table_listing() is None
    assert topo.echo_roundtrip(topo.peer_bad, HOST_V4, 29500, b"open") == b"open"


INVALID_POLICIES = {
    "invalid_cidr": policy_toml(ok_peers=["10.77.0.2/33"]),
    "toml_syntax_error": "[firewall\ndeny = \"reject\"\n",
    "unknown_key": policy_toml().replace("[firewall]\n", "[firewall]\nremove_on_exti = true\n"),
    "bad_deny_value": policy_toml(deny="ignore"),
    "port_out_of_range": policy_toml(ports=[70000]),
    "unknown_peer_group": policy_toml(allow=["@nobody"]),
    # Valid, but its relay cannot start: the upstream's name does not resolve.
    "guard_cannot_start": policy_toml(extra="")
    + '\n[[guard]]\nname = "relay"\nkind = "tcp"\nport = 29501\nallow = []\nupstream = "no-such-host.invalid:1"\n',
}


@pytest.mark.parametrize("case", list(INVALID_POLICIES), ids=list(INVALID_POLICIES))
def test_proxyd_refuses_to_start_on_invalid_policy_and_creates_no_table(scratch_netns, tmp_path, case):
    """(j) proxyd exits 1 with a message on stderr, and no nftables table at all exists in its
    namespace afterwards (nothing was applied)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(INVALID_POLICIES[case])
    d = Proxyd(scratch_netns, policy, tmp_path / "proxyd.log")
    try:
        rc = d.wait_exit()
    finally:
        d.kill()
    log = d.log()
    assert rc == 1, log
    assert "not started" in log, log
    assert "msg=running" not in log and "fence applied" not in log, log

    tables = run("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout
    assert tables.strip() == "", f"tables exist after a refused start:\n{tables}"


def test_proxyd_refuses_a_missing_policy_file(scratch_netns, tmp_path):
    """(j) A policy path that does not exist: exit 1, nothing applied."""
    d = Proxyd(scratch_netns, tmp_path / "does-not-exist.toml", tmp_path / "proxyd.log")
    try:
        rc = d.wait_exit()
    finally:
        d.kill()
    assert rc == 1, d.log()
    assert run("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout.strip() == ""


def test_proxyd_runs_every_guard_of_the_documented_example(scratch_netns, tmp_path):
    """policy.example.toml has a firewall, a tcp, a zmq-xpub and a host guard: proxyd starts them all
    (the relay and the broker listen on their listen ports), applies the table, and stops on
    SIGTERM with exit code 0."""
    d = Proxyd(scratch_netns, EXAMPLE_POLICY, tmp_path / "proxyd.log")
    try:
        d.wait_running()
        log = d.log()
        assert 'msg="relay listening" guard=tcpstore' in log and "port=39600" in log, log
        assert 'msg="broker listening"' in log and "guard=tp-broadcast" in log and "port=15557" in log, log
        assert "fence applied" in log, log
        assert "table inet ringfence" in run("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout
        assert d.terminate() == 0, d.log()
    finally:
        d.kill()


def test_proxyd_without_cap_net_admin_exits_with_nftables_error_text(scratch_netns):
    """nft's own error text reaches the log, with a hint, when the kernel refuses: here proxyd runs
    as the unprivileged user nobody inside a scratch namespace, and no table appears there."""
    # pytest's tmp_path is private to root; nobody must be able to read the policy.
    with tempfile.NamedTemporaryFile("w", suffix=".toml", dir="/tmp") as policy:
        policy.write(policy_toml())
        policy.flush()
        os.chmod(policy.name, 0o644)
        result = run(
            "ip", "netns", "exec", scratch_netns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            str(PROXYD), "--policy", policy.name, "--control-socket", f"/tmp/rfit-nobody-{os.getpid()}.sock",
            check=False, timeout=30)
    assert result.returncode == 1, result.stderr
    assert not os.path.exists(f"/tmp/rfit-nobody-{os.getpid()}.sock"), "the control socket outlived the failed start"
    assert "nftables refused the ruleset (run as root or with CAP_NET_ADMIN)" in result.stderr, result.stderr
    assert "Operation not permitted" in result.stderr
    assert run("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout.strip() == ""


def test_a_second_proxyd_on_the_same_listen_port_fails_to_start_clearly_and_the_first_keeps_serving(topo):
    """A first proxyd relays port 29500 through listen port 39500. A second one, with its own
    control socket and the same policy, exits 1 at once with a message naming the port and
    saying what to do, having changed nothing: the fence is the first's, byte for byte, and
    every connection still reaches the echo server through the first (with SO_REUSEPORT the
    second used to start and take a share of them)."""
    topo.echo_server(STORE_PORT)
    policy = relay_policy(protocol="none")
    first = start_relay(topo, policy)
    fence = topo.table_listing()
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, b"before") == b"before"

    second = topo.start_proxyd(policy, wait=False)
    assert second.control_socket != first.control_socket
    assert second.wait_exit() == 1, second.log()
    log = second.log()
    assert f"cannot listen on 0.0.0.0:{RELAY_PORT}" in log, log
    assert f"holds port {RELAY_PORT}; stop it, or set listen_port to a free port" in log, log
    assert "msg=running" not in log, log

    assert topo.table_listing() == fence
    for i in range(20):
        payload = f"after {i}".encode()
        assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, payload) == payload
    assert_alive(first)
    assert run(str(PROXYD.parent / "proxyctl"), "status", "--control-socket", first.control_socket).returncode == 0
