"""Audit mode, the way an operator adopts a default-deny fence: a host guard with mode = "audit"
refuses nothing and records what it would refuse (`proxyctl audit`); a reload to mode =
"enforce" then refuses those peers, records what it refused, and loses no allowed flow."""

import datetime
import time

from conftest import BAD_V4, BAD_V6, HOST_V4, HOST_V6, OK_V4, OK_V6
from controlkit import guard_status, reload, status
from hostkit import (HOST_GUARD, HTTP_PORT, ISO_Z, audit, audit_keys, echo_on, echoing_in_background, explain,
                     host_policy, http_get, http_server, still_echoes, tcp_echo, tcp_outcome, udp_echo, udp_outcome,
                     wait_audit, wait_until)
from relaykit import assert_alive

TCP_PORTS = (5000, 5001, 6000)
UDP_PORT = 7000


def parse_ts(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_audit_mode_refuses_nothing_and_records_every_port_peer_bad_tried_then_enforce_refuses_it_losing_no_allowed_flow(topo):
    """Host guard allowing peer_ok (@workers), public = [8000], mode = "audit"; TCP echo servers
    on 5000, 5001, 6000 and a UDP echo on 7000. peer_bad gets through everywhere: TCP echo on
    each port (5000 four times) and UDP over IPv4, TCP 5000 and UDP over IPv6, and the public
    HTTP port. `proxyctl audit --json` then lists, for guard host in mode audit, exactly
    10.77.0.3 on tcp 5000 (count 4), 5001, 6000 and udp 7000 and fd77::3 on tcp 5000 and udp
    7000 (count 1 each; one new flow each), busiest first, with UTC timestamps of this test's
    time — nothing for peer_ok (allowed) or for the public port. `status` shows the guard in
    mode audit, and `explain` says "audit" for peer_bad.

    Then the policy is rewritten with mode = "enforce" and `proxyctl reload` applied while
    peer_ok echoes on a connection opened before, without pause: every round succeeds. peer_bad
    is refused on TCP and gets no UDP reply, its connection opened in audit mode stops
    echoing, the public port still answers it, `audit` lists its refused attempts in mode
    enforce, `status` shows mode enforce and `explain` says "refused"."""
    for port in TCP_PORTS:
        tcp_echo(topo, topo.host, port)
    udp_echo(topo, topo.host, UDP_PORT)
    http_server(topo, topo.host, HTTP_PORT)
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    d = topo.start_proxyd(host_policy(workers=[OK_V4, OK_V6], mode="audit"))

    host = guard_status(d, HOST_GUARD)
    assert host["kind"] == "host" and host["mode"] == "audit", host
    allowed = topo.connect(topo.peer_ok, HOST_V4, 5000)
    assert echo_on(allowed, b"opened in audit mode") == b"opened in audit mode"
    assert udp_outcome(topo, topo.peer_ok, HOST_V4, UDP_PORT) == "reply"

    bad_kept = topo.connect(topo.peer_bad, HOST_V4, 6000)
    assert echo_on(bad_kept, b"audit lets me in") == b"audit lets me in"
    for _ in range(3):
        assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 5000) == "echo"
    assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 5001) == "echo"
    assert udp_outcome(topo, topo.peer_bad, HOST_V4, UDP_PORT) == "reply"
    assert tcp_outcome(topo, topo.peer_bad, HOST_V6, 5000) == "echo"
    assert udp_outcome(topo, topo.peer_bad, HOST_V6, UDP_PORT) == "reply"
    assert http_get(topo, topo.peer_bad, HOST_V4) == b"ringfence public port\n"
    # 5000 over IPv4: 4 flows (3 above, and one more now), the busiest entry.
    assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 5000) == "echo"

    want = {(BAD_V4, "tcp", 5000), (BAD_V4, "tcp", 5001), (BAD_V4, "tcp", 6000), (BAD_V4, "udp", UDP_PORT),
            (BAD_V6, "tcp", 5000), (BAD_V6, "udp", UDP_PORT)}
    entries = wait_audit(d, want, "audit", min_count={(BAD_V4, "tcp", 5000): 4})
    got = audit_keys(entries, "audit")
    assert set(got) == want, f"audit lists {sorted(got)}, expected exactly {sorted(want)}"
    assert not [e for e in entries if e["source"] in (OK_V4, OK_V6) or e["port"] == HTTP_PORT], entries
    counts = [e["count"] for e in entries]
    assert counts == sorted(counts, reverse=True), f"not busiest first: {entries}"
    assert got[(BAD_V4, "tcp", 5000)]["count"] == 4, got[(BAD_V4, "tcp", 5000)]
    assert entries[0]["source"] == BAD_V4 and entries[0]["port"] == 5000, entries
    for key in want - {(BAD_V4, "tcp", 5000)}:
        assert got[key]["count"] == 1, got[key]
    now = datetime.datetime.now(datetime.timezone.utc)
    for e in entries:
        assert ISO_Z.match(e["first_seen"]) and ISO_Z.match(e["last_seen"]), e
        first, last = parse_ts(e["first_seen"]), parse_ts(e["last_seen"])
        assert started - datetime.timedelta(seconds=2) <= first <= last <= now + datetime.timedelta(seconds=2), e

    ex = explain(d, BAD_V4, 5000)
    assert (ex["verdict"], ex["guard"]) == ("audit", HOST_GUARD), ex

    topo.write_policy(host_policy(workers=[OK_V4, OK_V6], mode="enforce"))
    with echoing_in_background(allowed) as kept:
        reply = reload(d)
        # A few more rounds after the reload, on the same connection.
        wanted, deadline = kept["rounds"] + 20, time.monotonic() + 10
        while kept["rounds"] < wanted and not kept["failures"] and time.monotonic() < deadline:
            time.sleep(0.02)
    assert reply["ok"] is True, reply
    assert kept["failures"] == [], f"peer_ok's connection lost rounds across the reload: {kept}\n{d.log()[-3000:]}"
    assert kept["rounds"] >= 20, kept
    assert still_echoes(allowed)

    assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 5001) == "refused"
    assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 5001) == "refused"
    assert tcp_outcome(topo, topo.peer_bad, HOST_V6, 5000) == "refused"
    assert udp_outcome(topo, topo.peer_bad, HOST_V4, UDP_PORT) in ("refused", "timeout")
    assert not still_echoes(bad_kept, b"after enforce"), "peer_bad's audit-mode connection still echoes"
    assert http_get(topo, topo.peer_bad, HOST_V4) == b"ringfence public port\n"
    assert tcp_outcome(topo, topo.peer_ok, HOST_V6, 5001) == "echo"

    enforced = {(BAD_V4, "tcp", 5001), (BAD_V6, "tcp", 5000), (BAD_V4, "udp", UDP_PORT)}
    entries = wait_audit(d, enforced, "enforce", min_count={(BAD_V4, "tcp", 5001): 2})
    assert all(e["guard"] == HOST_GUARD and e["mode"] in ("audit", "enforce") for e in entries), entries
    assert not [e for e in entries if e["source"] in (OK_V4, OK_V6)], entries
    counts = [e["count"] for e in entries]
    assert counts == sorted(counts, reverse=True), f"not busiest first: {entries}"

    assert guard_status(d, HOST_GUARD)["mode"] == "enforce"
    ex = explain(d, BAD_V4, 5000)
    assert (ex["verdict"], ex["guard"]) == ("refused", HOST_GUARD), ex
    assert status(d)["reloads_applied"] == 1
    assert_alive(d)


def test_status_lists_every_guard_with_its_mode_including_firewall_and_host_guards(topo):
    """A policy with a firewall guard in audit mode and a host guard in enforce mode (default):
    `proxyctl status --json` lists both, each with its kind and "mode"; the firewall guard in
    audit mode lets peer_bad reach its port, and audit lists that attempt under its name."""
    tcp_echo(topo, topo.host, 29500)
    store = ('[[guard]]\nname = "store"\nkind = "firewall"\nport = 29500\nallow = ["@workers"]\n'
             'mode = "audit"\n')
    d = topo.start_proxyd(host_policy(workers=[OK_V4, OK_V6], before=store))
    guards = {g["name"]: g for g in status(d)["guards"]}
    assert set(guards) == {"store", HOST_GUARD}, guards
    assert (guards["store"]["kind"], guards["store"]["mode"]) == ("firewall", "audit"), guards["store"]
    assert (guards[HOST_GUARD]["kind"], guards[HOST_GUARD]["mode"]) == ("host", "enforce"), guards[HOST_GUARD]

    assert tcp_outcome(topo, topo.peer_bad, HOST_V4, 29500) == "echo"
    wait_until(lambda: [e for e in audit(d) if (e["guard"], e["mode"], e["source"], e["protocol"], e["port"])
                        == ("store", "audit", BAD_V4, "tcp", 29500)], 10, "audit entry of guard store")
    assert_alive(d)
