"""Reloads change the kernel's table in place, and always into exactly the table a fresh start
of the same policy builds with nft: set elements over netlink (libnftnl) when only allowlists
change, chain by chain when guards come and go, and the whole table again only when the
kernel's table is not what the daemon left there."""

from pathlib import Path

from conftest import OK_V4, OK_V6, PROXYCTL, recv_exactly, run


def firewall_guard(name: str, port: int, allow: list[str]) -> str:
    quoted = ", ".join(f'"{a}"' for a in allow)
    return f'\n[[guard]]\nname = "{name}"\nkind = "firewall"\nport = {port}\nallow = [{quoted}]\n'


def relay_guard(name: str, port: int, listen: int, allow: list[str]) -> str:
    quoted = ", ".join(f'"{a}"' for a in allow)
    return f'\n[[guard]]\nname = "{name}"\nkind = "tcp"\nport = {port}\nlisten_port = {listen}\nallow = [{quoted}]\n'


def blocks(count: int, shift: int = 0) -> list[str]:
    """`count` /25s that never merge: 10.(128 + k/256).(k%256).0/25."""
    return [f"10.{128 + k // 256}.{k % 256}.0/25" for k in range(shift, shift + count)]


def table_blocks(listing: str) -> list[str]:
    """`nft list table` as its set and chain blocks, sorted: a table changed in place lists its
    sets in the order they were made, a fresh one in policy order."""
    out, current = [], []
    for line in listing.splitlines():
        if line.startswith("\tset ") or line.startswith("\tchain "):
            current = [line]
        elif current:
            current.append(line)
            if line == "\t}":
                out.append("\n".join(current))
                current = []
    return sorted(out)


def fresh_table(scratch: str, policy: Path) -> list[str]:
    """The table nft itself builds from `proxyctl nft POLICY`, in a namespace of its own."""
    script = run(PROXYCTL, "nft", str(policy)).stdout
    run("ip", "netns", "exec", scratch, "nft", "-f", "-", input=script)
    return table_blocks(run("ip", "netns", "exec", scratch, "nft", "list", "table", "inet", "ringfence").stdout)


def assert_same_as_fresh(topo, scratch: str) -> None:
    reloaded = table_blocks(topo.table_listing())
    assert reloaded == fresh_table(scratch, topo.policy_path), "the reloaded table differs from a fresh one"


def test_in_place_reloads_leave_exactly_the_table_a_fresh_start_builds(topo, scratch_netns):
    """A policy is reloaded through allowlists with every edge of nft's interval encoding
    (address zero, the last address, single hosts, IPv6), a 3,000-block allowlist changed whole
    (flush and refill) and by 100 blocks (a diff in several messages), then guards added (a
    relay, so the divert and shield chains appear) and removed again. After each reload the
    kernel's table lists exactly as the one nft builds from `proxyctl nft` in a fresh
    namespace, the log names the in-place way taken, and peer_ok's connection, allowed by
    every policy, still echoes at the end."""
    topo.echo_server(29500)
    d = topo.start_proxyd(firewall_guard("store", 29500, [OK_V4, OK_V6]))
    live = topo.connect(topo.peer_ok, "10.77.0.1", 29500)

    steps = [
        ("set elements changed", firewall_guard("store", 29500, [
            "0.0.0.0/8", "10.77.0.0/30", "255.255.255.0/24", "::/8", "fd77::2", "ffff::/16"])),
        ("set elements changed", firewall_guard("store", 29500, [
            "10.77.0.2", "10.77.0.4/30", "255.255.255.255", "::1", "fd77::/64"])),
        ("set elements changed", firewall_guard("store", 29500, [OK_V4] + blocks(3000))),
        ("set elements changed", firewall_guard("store", 29500, [OK_V4] + blocks(2900) + blocks(100, 5000))),
        ("chains rewritten", firewall_guard("store", 29500, [OK_V4, "10.77.0.9"])
         + relay_guard("bus", 29501, 39501, ["10.77.0.0/24"]) + firewall_guard("extra", 7000, ["10.0.0.0/8"])),
        ("chains rewritten", firewall_guard("store", 29500, [OK_V4, OK_V6])),
        ("unchanged", firewall_guard("store", 29500, [OK_V4, OK_V6])),
    ]
    for number, (change, policy) in enumerate(steps, 1):
        topo.write_policy(policy)
        log = d.reload()
        assert 'msg="policy reloaded"' in log, f"step {number}:\n{log}"
        logged = f'change="{change}"' if " " in change else f"change={change}"
        assert logged in log, f"step {number}: expected {change}:\n{log}"
        assert "not the one last applied" not in log, f"step {number}:\n{log}"
        assert_same_as_fresh(topo, scratch_netns)
        live.sendall(b"step %d" % number)
        assert recv_exactly(live, 6) == b"step %d" % number, f"step {number}: peer_ok's connection stopped"


def test_a_set_changed_by_hand_is_put_right_by_the_next_reload(topo, scratch_netns):
    """peer_bad is added to the set by hand and peer_ok deleted from it; a reload of the same
    policy reads the set back, finds it changed and puts it right: peer_bad is refused again,
    peer_ok admitted, and the table is the fresh one."""
    topo.echo_server(29500)
    d = topo.start_proxyd(firewall_guard("store", 29500, [OK_V4, OK_V6]))
    topo.nft("add", "element", "inet", "ringfence", "store_v4", "{ 10.77.0.3 }")
    topo.nft("delete", "element", "inet", "ringfence", "store_v4", "{ 10.77.0.2 }")
    assert topo.connect_outcome(topo.peer_bad, "10.77.0.1", 29500) == "connected"

    log = d.reload()
    assert 'change="set elements changed"' in log, log
    assert_same_as_fresh(topo, scratch_netns)
    assert topo.connect_outcome(topo.peer_bad, "10.77.0.1", 29500) == "refused"
    assert topo.connect_outcome(topo.peer_ok, "10.77.0.1", 29500) == "connected"


def test_a_table_deleted_by_hand_is_made_again_by_the_next_reload(topo, scratch_netns):
    """With the table gone, reading its sets fails, nft's refill fails too, and the reload
    replaces the table whole, saying in the log why the gentler ways were refused."""
    topo.echo_server(29500)
    d = topo.start_proxyd(firewall_guard("store", 29500, [OK_V4, OK_V6]))
    topo.nft("delete", "table", "inet", "ringfence")
    assert topo.connect_outcome(topo.peer_bad, "10.77.0.1", 29500) == "connected"

    topo.write_policy(firewall_guard("store", 29500, [OK_V4]))
    log = d.reload()
    assert 'change="table replaced"' in log, log
    assert log.count("not the one last applied") == 2, log
    assert "cannot read set store_v" in log, log
    assert_same_as_fresh(topo, scratch_netns)
    assert topo.connect_outcome(topo.peer_bad, "10.77.0.1", 29500) == "refused"
