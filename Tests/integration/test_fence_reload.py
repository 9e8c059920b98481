"""SIGHUP reloads: a good policy replaces the fence (and cuts live connections of removed
peers); a bad one is refused and changes nothing at all."""

import socket

import pytest

from conftest import HOST_V4, HOST_V6, policy_toml, recv_exactly

# peer_ok's addresses replaced by ones no namespace has.
WITHOUT_PEER_OK = policy_toml(ok_peers=["10.77.0.4", "fd77::4"])


def test_reload_removing_peer_cuts_its_established_connections_and_refuses_new_ones(topo):
    """(c) peer_ok holds an echoing connection per family; the policy file is rewritten without
    peer_ok and SIGHUP sent: the log says "policy reloaded", the next send on each established
    connection gets no echo (reset, or at worst a timeout), and new connects are refused."""
    topo.echo_server(29500)
    d = topo.start_proxyd(policy_toml())

    live = {}
    for host_addr in (HOST_V4, HOST_V6):
        s = topo.connect(topo.peer_ok, host_addr, 29500)
        s.sendall(b"before reload")
        assert recv_exactly(s, 13) == b"before reload"
        live[host_addr] = s

    topo.write_policy(WITHOUT_PEER_OK)
    log = d.reload()
    assert 'msg="policy reloaded"' in log, log
    assert "reload refused" not in log, log

    for host_addr, s in live.items():
        s.settimeout(2.0)
        with pytest.raises((ConnectionError, socket.timeout)):  # reset, broken pipe, or no answer
            s.sendall(b"after reload")
            # The segment reaches the host's fence, which answers with a reset instead of
            # delivering it: no echo ever comes back.
            data = s.recv(64)
            if data == b"":
                raise ConnectionError("closed by peer")
            pytest.fail(f"established connection over {host_addr} still echoes after the reload: {data!r}")
        assert topo.connect_outcome(topo.peer_ok, host_addr, 29500) == "refused", host_addr

    assert d.proc.poll() is None, "proxyd stopped after the reload"


BAD_POLICIES = {
    "invalid_cidr": policy_toml(ok_peers=["10.77.0.2/33", "fd77::2"]),
    "toml_syntax_error": policy_toml() + "\n[[guard]\nname = \"oops\n",
    "unknown_key": policy_toml(extra='alow = ["10.77.0.3"]\n'),
    "duplicate_port": policy_toml() + '\n[[guard]]\nname = "again"\nkind = "firewall"\nport = 29500\nallow = []\n',
    # Valid, but its relay cannot listen: the echo server holds 29500.
    "relay_port_in_use": policy_toml()
    + '\n[[guard]]\nname = "relay"\nkind = "tcp"\nport = 29501\nlisten_port = 29500\nallow = ["@ok"]\n',
    # An empty or truncated file must not open every guarded port.
    "empty_file": "",
    "no_guards_left": "[firewall]\ndeny = \"reject\"\n",
    # Inputs toml++ aborted the process on (found by fuzzing): refused like any other error.
    "table_header_without_key": policy_toml() + "\n[   # a header that lost its name\n",
    "control_character": policy_toml().replace("[firewall]", "[fire\x1ewall]"),
}


@pytest.mark.parametrize("bad", list(BAD_POLICIES), ids=list(BAD_POLICIES))
def test_bad_policy_on_reload_is_refused_and_changes_nothing(topo, bad):
    """(d) A bad file on SIGHUP: the log says "reload refused", proxyd keeps running, the
    ruleset (`nft list table inet ringfence`) is identical before and after, the allowed
    peer's established connection and new connections still work and the denied peer is still
    refused. Rewriting a good file afterwards reloads again."""
    topo.echo_server(29500)
    d = topo.start_proxyd(policy_toml())
    before = topo.table_listing()
    assert before is not None and "ringfence" in before

    held = topo.connect(topo.peer_ok, HOST_V4, 29500)
    held.sendall(b"held")
    assert recv_exactly(held, 4) == b"held"

    topo.write_policy(BAD_POLICIES[bad])
    log = d.reload()
    assert 'msg="reload refused' in log, log
    assert "policy reloaded" not in log, log
    assert d.proc.poll() is None, f"proxyd exited after a refused reload:\n{d.log()}"

    assert topo.table_listing() == before
    held.sendall(b"still held")
    assert recv_exactly(held, 10) == b"still held"
    for host_addr in (HOST_V4, HOST_V6):
        assert topo.echo_roundtrip(topo.peer_ok, host_addr, 29500, b"ok") == b"ok"
        assert topo.connect_outcome(topo.peer_bad, host_addr, 29500) == "refused"

    # The daemon is not wedged: a good file is taken on the next SIGHUP.
    topo.write_policy(WITHOUT_PEER_OK)
    assert 'msg="policy reloaded"' in d.reload()
    assert topo.table_listing() != before
    assert topo.connect_outcome(topo.peer_ok, HOST_V4, 29500) == "refused"


def test_reload_renaming_the_table_removes_the_old_one(topo):
    """A reload with `[firewall] table` changed replaces the old table by the new one in the
    same transaction: no old fence is left behind, and the new one guards."""
    topo.echo_server(29500)
    d = topo.start_proxyd(policy_toml())
    assert topo.table_listing("ringfence") is not None

    topo.write_policy(policy_toml().replace("[firewall]\n", '[firewall]\ntable = "ringfence2"\n'))
    assert 'msg="policy reloaded"' in d.reload()
    assert topo.table_listing("ringfence") is None
    assert topo.table_listing("ringfence2") is not None
    assert topo.connect_outcome(topo.peer_bad, HOST_V4, 29500) == "refused"
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, 29500, b"x") == b"x"
