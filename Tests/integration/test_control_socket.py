"""The control socket, the metrics endpoint and systemd integration of a running proxyd: only
root and the daemon's own user may use the socket; garbage, oversized and silent requests get
error replies and the daemon carries on; `proxyctl status` and `peers` print readable tables
and say clearly when no daemon runs; /metrics parses as Prometheus text and its counters match
the traffic sent, across reloads, and a second proxyd cannot take its port; readiness, watchdog,
reload and stop reach NOTIFY_SOCKET; and `--log-format json` writes one JSON object per line."""

import json
import os
import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from brokerkit import Writer, ZmtpPeer, narrow_host_port_range, subscribe_cmd
from conftest import HOST_V4, OK_V4, recv_exactly
from controlkit import (BUS_GUARD, STORE_GUARD, guard_status, metrics_page, mode_of, proxyctl, raw_request, reload, status,
                        two_guard_policy)
from relaykit import STORE_PORT, assert_alive, peers, relay_policy, wait_event  # noqa: F401

NOBODY = 65534
METRICS_PORT = 9464


def start(topo, text: str, writer: Writer, **kwargs):
    d = topo.start_proxyd(text, **kwargs)
    wait_event(d, "broker listening", guard=BUS_GUARD, port=str(writer.port + 10000))
    return d


def relay_and_subscribe(topo, writer: Writer):
    """From peer_ok: a connection relayed through guard store (one echoed ping) and a ZMTP
    subscriber to guard bus that the engine has seen subscribe; both returned, open."""
    relayed = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    relayed.sendall(b"ping")
    assert recv_exactly(relayed, 4) == b"ping"
    sub = ZmtpPeer(topo, topo.peer_ok, writer.port).open()
    sub.sendall(subscribe_cmd(b""))
    assert writer.wait_subs(1, 10) == [b"\x01"]
    return relayed, sub


def test_control_socket_refuses_other_users_and_survives_garbage_oversized_and_silent_clients(topo, peers):
    """The socket is mode 0600. proxyctl run as nobody is refused by the file mode with a clear
    message; with the mode opened to 0666 the daemon itself refuses nobody (peer credentials)
    with a not-permitted reply. Garbage, an unsupported version, an unknown command, an empty
    request and a 1 MiB request each get an error reply; a client that connects and says
    nothing does not stop others being served; proxyd stays up and answers status."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start(topo, two_guard_policy(writer.port), writer)
    path = d.control_socket
    assert mode_of(path) == 0o600

    denied = proxyctl(d, "status", user=NOBODY)
    assert denied.returncode == 1 and "not permitted to use" in denied.stderr, denied
    assert "Traceback" not in denied.stderr and "Fatal" not in denied.stderr
    os.chmod(path, 0o666)
    refused = proxyctl(d, "status", user=NOBODY)
    assert refused.returncode == 1, refused
    assert f"uid {NOBODY} may not use the control socket" in refused.stderr, refused.stderr
    os.chmod(path, 0o600)

    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(path)
    try:
        for data, code in [(b"garbage\n", "bad-request"),
                           (b'{"version": 7, "command": "status"}\n', "unsupported-version"),
                           (b'{"version": 1, "command": "format-disk"}\n', "bad-request"),
                           (b"", "bad-request"),
                           (b"x" * (1 << 20), "too-large")]:
            reply = raw_request(path, data)
            assert reply["ok"] is False and reply["error"]["code"] == code, (data[:40], reply)
        assert raw_request(path, b'{"version": 1, "command": "status"}')["ok"] is True
    finally:
        silent.close()
    assert status(d)["guards"][0]["name"] == STORE_GUARD
    assert_alive(d)


def test_status_and_peers_print_tables_and_a_clear_message_when_no_daemon_runs(topo, peers):
    """With a subscriber and a relayed connection from peer_ok: `proxyctl status` prints one row
    per guard with its kind, ports, state, upstream and connection count; `proxyctl peers` one
    row per connection with its queue against its limits. After SIGTERM both say that proxyd is
    not running, without a stack trace, and exit 1."""
    narrow_host_port_range(topo)
    topo.echo_server(STORE_PORT)
    writer = Writer(peers, topo.host)
    # max_connections as it defaulted to when this test was written (the default is 8192 now).
    d = start(topo, two_guard_policy(writer.port, store_protocol="none", store={"max_connections": 1024}), writer)
    relayed, sub = relay_and_subscribe(topo, writer)

    table = proxyctl(d, "status")
    assert table.returncode == 0, table
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line.split()[:1] in ([STORE_GUARD], [BUS_GUARD])}
    assert "tcp" in rows[STORE_GUARD] and f"{STORE_PORT}" in rows[STORE_GUARD] and "1/1024" in rows[STORE_GUARD], table.stdout
    assert "zmq-xpub" in rows[BUS_GUARD] and "connected" in rows[BUS_GUARD] and "1/32" in rows[BUS_GUARD], table.stdout
    listing = proxyctl(d, "peers")
    assert listing.returncode == 0, listing
    assert f"{OK_V4}:" in listing.stdout and "/1000" in listing.stdout and "2 connections from 2 peers" in listing.stdout, \
        listing.stdout

    assert d.terminate() == 0
    for command in ("status", "peers", "reload"):
        gone = proxyctl(d, command)
        assert gone.returncode == 1 and "proxyd is not running" in gone.stderr, gone
        assert "Traceback" not in gone.stderr


def raw_scrape(topo) -> str:
    """GET /metrics from the host namespace: the page's text (the reply must be 200)."""
    return metrics_page(topo, HOST_V4, METRICS_PORT)


def scrape(topo) -> dict[tuple[str, tuple], float]:
    """GET /metrics from the host namespace; samples by (name, sorted labels)."""
    samples = {}
    for family in text_string_to_metric_families(raw_scrape(topo)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric(samples, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{key} not in /metrics: {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def test_metrics_parse_as_prometheus_text_and_count_what_was_sent_across_reloads(topo, peers):
    """[daemon] metrics_listen = "10.77.0.1:9464". peer_ok relays exactly 10,000 bytes through
    guard store and gets them back; a second connection from peer_ok is refused by
    max_connections_per_peer = 1; a ZMTP subscriber receives READY and 10 messages of 100 B
    through guard bus. /metrics parses with prometheus_client and says so exactly: bytes each
    way, one accepted, one denied for peer-limit, 11 messages, 11 deliveries, upstream up, one
    live connection per guard and per peer. After a reload that changes a limit (in place) and
    then one that moves store's listen port (the guard restarts), no counter went backwards."""
    narrow_host_port_range(topo)
    topo.echo_server(STORE_PORT)
    writer = Writer(peers, topo.host)
    text = two_guard_policy(writer.port, store_protocol="none", store={"max_connections_per_peer": 1},
                            daemon={"metrics_listen": f"{HOST_V4}:{METRICS_PORT}"})
    d = start(topo, text, writer)
    wait_event(d, "metrics listening")
    relayed = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
    payload = bytes(range(250)) * 40
    relayed.sendall(payload)
    assert recv_exactly(relayed, len(payload)) == payload
    try:  # refused by the relay at accept: a reset (or EOF), which may reach connect() itself
        extra = topo.connect(topo.peer_ok, HOST_V4, STORE_PORT)
        extra.settimeout(3)
        assert extra.recv(10) == b""
    except ConnectionResetError:
        pass
    sub = ZmtpPeer(topo, topo.peer_ok, writer.port).open()
    sub.sendall(subscribe_cmd(b""))
    assert writer.wait_subs(1, 10) == [b"\x01"]
    writer.ready()
    for i in range(10):
        writer.send(b"m" * 100)
    for _ in range(11):
        sub.read_message(5)

    m = scrape(topo)
    assert metric(m, "ringfence_guard_peer_received_bytes_total", guard=STORE_GUARD) == len(payload)
    assert metric(m, "ringfence_guard_peer_sent_bytes_total", guard=STORE_GUARD) == len(payload)
    assert metric(m, "ringfence_guard_accepted_total", guard=STORE_GUARD) == 1
    assert metric(m, "ringfence_guard_denied_total", guard=STORE_GUARD, reason="peer-limit") == 1
    assert metric(m, "ringfence_guard_denied_total", guard=STORE_GUARD, reason="not-allowed") == 0
    assert metric(m, "ringfence_broker_messages_total", guard=BUS_GUARD) == 11
    assert metric(m, "ringfence_broker_deliveries_total", guard=BUS_GUARD) == 11
    assert metric(m, "ringfence_broker_upstream_up", guard=BUS_GUARD) == 1
    assert metric(m, "ringfence_guard_connections", guard=STORE_GUARD) == 1
    assert metric(m, "ringfence_peer_connections", guard=BUS_GUARD, peer=OK_V4) == 1
    assert metric(m, "ringfence_reloads_total", result="applied") == 0

    topo.write_policy(text.replace("max_connections_per_peer = 1", "max_connections_per_peer = 2"))
    assert reload(d)["ok"] is True
    after_update = scrape(topo)
    topo.write_policy(text.replace("max_connections_per_peer = 1", "max_connections_per_peer = 2\nlisten_port = 39555"))
    reply = reload(d)
    assert reply["ok"] is True and reply["reload"]["restarted"] == [STORE_GUARD], reply
    assert [c["guard"] for c in reply["reload"]["cut"]] == [STORE_GUARD], reply
    after_restart = scrape(topo)
    for key, value in m.items():
        if key[0].endswith("_total"):
            assert after_update.get(key, 0) >= value and after_restart.get(key, 0) >= value, (key, value)
    assert metric(after_restart, "ringfence_guard_peer_received_bytes_total", guard=STORE_GUARD) == len(payload)
    assert metric(after_restart, "ringfence_reloads_total", result="applied") == 2
    assert guard_status(d, STORE_GUARD)["counters"]["accepted"] == 1
    assert_alive(d)


def test_metrics_peer_series_leave_with_their_peer_and_daemon_events_count_as_they_happen(topo, peers):
    """/metrics with a relayed connection and a subscriber from peer_ok: each guard has
    ringfence_peer_connections{peer=peer_ok} = 1, and every family has a HELP line. `proxyctl
    kick peer_ok` closes both: the peer's series leave the page (only connected peers have
    series), ringfence_kicks_total is 1 and ringfence_bans_total 0. A reload of a broken policy
    is refused and counted: ringfence_reloads_total{result="refused"} = 1, applied still 0."""
    narrow_host_port_range(topo)
    topo.echo_server(STORE_PORT)
    writer = Writer(peers, topo.host)
    text = two_guard_policy(writer.port, store_protocol="none", daemon={"metrics_listen": f"{HOST_V4}:{METRICS_PORT}"})
    d = start(topo, text, writer)
    wait_event(d, "metrics listening")
    relayed, sub = relay_and_subscribe(topo, writer)

    m = scrape(topo)
    for guard in (STORE_GUARD, BUS_GUARD):
        assert metric(m, "ringfence_peer_connections", guard=guard, peer=OK_V4) == 1
    assert metric(m, "ringfence_kicks_total") == 0
    body = raw_scrape(topo)
    for family in text_string_to_metric_families(body):
        assert family.documentation, f"{family.name} has no HELP line"

    assert proxyctl(d, "kick", OK_V4).returncode == 0
    deadline = time.monotonic() + 5
    while True:
        after = scrape(topo)
        peer_series = [key for key in after if key[0].startswith("ringfence_peer_") and ("peer", OK_V4) in key[1]]
        if not peer_series or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert peer_series == [], peer_series
    assert metric(after, "ringfence_kicks_total") == 1 and metric(after, "ringfence_bans_total") == 0

    topo.write_policy(text + "\n[[guard]]\nname = 1\n")
    assert reload(d)["ok"] is False
    refused = scrape(topo)
    assert metric(refused, "ringfence_reloads_total", result="refused") == 1
    assert metric(refused, "ringfence_reloads_total", result="applied") == 0
    assert_alive(d)


def test_a_second_proxyd_on_the_same_metrics_port_fails_to_start_and_removes_its_control_socket(topo):
    """A first proxyd serves /metrics on 10.77.0.1:9464. A second one with its own control
    socket and the same metrics_listen exits 1 naming the port and what to do, and leaves no
    control socket file behind (it had opened its control socket first); the first's /metrics
    still answers."""
    policy = f'[daemon]\nmetrics_listen = "{HOST_V4}:{METRICS_PORT}"\n\n' + relay_policy(protocol="none")
    first = topo.start_proxyd(policy)
    wait_event(first, "metrics listening")
    scrape(topo)

    second = topo.start_proxyd(policy, wait=False)
    assert second.wait_exit() == 1, second.log()
    log = second.log()
    assert f"cannot serve metrics on {HOST_V4}:{METRICS_PORT}" in log, log
    assert f"holds port {METRICS_PORT}; stop it, or change metrics_listen" in log, log
    assert not os.path.exists(second.control_socket), "the failed start left its control socket behind"
    scrape(topo)
    assert_alive(first)


def test_systemd_notifications_and_json_logs(topo, peers, tmp_path):
    """Run with NOTIFY_SOCKET (a datagram socket the test binds), WATCHDOG_USEC = 400 ms and
    --log-format json: READY=1 with a status line arrives once running, WATCHDOG=1 arrives at
    least every 200 ms or so, a SIGHUP sends RELOADING=1 then READY=1, SIGTERM sends
    STOPPING=1; every log line is one JSON object with ts, level and msg."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    notify_path = f"/tmp/rfit-notify-{os.getpid()}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        notify.settimeout(5)
        try:
            d = topo.start_proxyd(two_guard_policy(writer.port), extra_args=("--log-format", "json"),
                                  env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"})

            def next_message() -> str:
                return notify.recv(4096).decode()

            ready = next_message()
            assert ready.startswith("READY=1\nSTATUS=serving 2 guards") and f"MAINPID={d.proc.pid}" in ready, ready
            pings, started = 0, time.monotonic()
            while pings < 4:
                assert next_message() == "WATCHDOG=1"
                pings += 1
            assert time.monotonic() - started < 2.0, "watchdog pings too slow"

            d.proc.send_signal(1)  # SIGHUP
            seen = [next_message() for _ in range(6)]
            reloading = [i for i, m in enumerate(seen) if m.startswith("RELOADING=1\nMONOTONIC_USEC=")]
            assert reloading and any(m.startswith("READY=1") for m in seen[reloading[0]:]), seen
            assert d.terminate() == 0
            rest = []
            with_timeout = time.monotonic() + 3
            while time.monotonic() < with_timeout:
                try:
                    rest.append(next_message())
                except socket.timeout:
                    break
                if rest[-1] == "STOPPING=1":
                    break
            assert "STOPPING=1" in rest, rest
        finally:
            os.unlink(notify_path)

    lines = d.log().splitlines()
    assert len(lines) > 5
    for line in lines:
        event = json.loads(line)
        assert {"ts", "level", "msg"} <= event.keys(), line
    assert any(json.loads(line)["msg"] == "policy reloaded" for line in lines)
