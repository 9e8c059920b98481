"""Bad input at the edges (issue 16, item 5; docs/reliability.md, "Bad input at the edges"):
a policy of a million CIDRs, a 100 MB policy file, a symlink loop, unreadable policy paths, a
flooded control socket, /metrics scraped by 64 clients at once during reloads, and a ZMTP peer
(a subscriber, and an engine upstream) declaring a frame of 2^63 - 1 bytes. Each gets a clear error or service bounded in time and
memory, never a crash; and a relayed echo (or a brokered reader) keeps being served meanwhile.

The data path is probed by `EchoProbe`: one connection from peer_ok through guard store
(protocol "none", an echo server behind it) that sends a ping every 50 ms and records the
slowest round trip; each test asserts it never failed and never took more than PROBE_BOUND.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from brokerkit import (Reader, Writer, ZmtpPeer, broker_policy, greeting, narrow_host_port_range, ready, start_broker,
                       subscribe_cmd)
from conftest import HOST_V4, OK_V4, OK_V6, PROXYCTL, PROXYD, new_socket, recv_exactly
from controlkit import proxyctl, reload, status, two_guard_policy
from relaykit import (STORE_PORT, Repeating, assert_alive, peers, proxyd_pid, relay_policy, rss_bytes, wait_closed,  # noqa: F401
                      wait_event)

MiB = 1 << 20
LIMIT = 64 * MiB  # the policy file size limit (PolicyFile.maxBytes)
NOBODY = 65534
NET_ADMIN_ONLY = ("setpriv", "--bounding-set=-all,+net_admin", "--inh-caps=-all")
PROBE_BOUND = 1.0  # seconds: the slowest echo round trip allowed while an edge is hit
METRICS_PORT = 9464


class EchoProbe(Repeating):
    """A relayed echo from peer_ok every 50 ms on one connection, in a thread: the data path."""

    def __init__(self, topo, port: int = STORE_PORT):
        super().__init__(0.05)
        self.sock = topo.connect(topo.peer_ok, HOST_V4, port)
        self.sock.settimeout(10)
        self.slowest = 0.0
        self.count = 0
        self.error: str | None = None
        self.start()

    def step(self) -> bool:
        payload = f"ping {self.count}".encode()
        started = time.monotonic()
        try:
            self.sock.sendall(payload)
            got = recv_exactly(self.sock, len(payload))
        except Exception as exc:  # noqa: BLE001 - reported by stop()
            self.error = f"echo {self.count} failed: {exc!r}"
            return False
        if got != payload:
            self.error = f"echo {self.count}: {got!r}"
            return False
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.count += 1
        return True

    def stop(self, bound: float = PROBE_BOUND) -> None:
        """Stops the probe (after at least 3 echoes) and asserts every echo came back, the
        slowest within `bound`."""
        deadline = time.monotonic() + 5
        while self.count < 3 and self.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        self.halt(timeout=15)
        self.sock.close()
        assert self.error is None, self.error
        assert self.count >= 3, f"only {self.count} echoes"
        assert self.slowest <= bound, f"an echo took {self.slowest:.3f}s (bound {bound}s, {self.count} echoes)"


def start_echo_relay(topo, text: str | None = None, **kwargs):
    """proxyd with guard store (protocol none) in front of an echo server on 29500."""
    topo.echo_server(STORE_PORT)
    d = topo.start_proxyd(text or relay_policy(protocol="none"), **kwargs)
    wait_event(d, "relay listening", guard="store")
    return d


def check_measured(path: Path, timeout: float = 120.0) -> tuple[subprocess.CompletedProcess, float, int]:
    """`proxyctl check PATH` under /usr/bin/time: the result, wall time and peak RSS (bytes)."""
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib=%M", str(PROXYCTL), "check", str(path)],
                          capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    found = re.search(r"maxrss_kib=(\d+)", proc.stderr)
    assert found, proc.stderr
    return proc, elapsed, int(found.group(1)) * 1024


def start_refused(topo, path: Path) -> subprocess.CompletedProcess:
    """`proxyd --policy PATH` in the host namespace, expected to refuse to start (within 30 s)."""
    return subprocess.run(["ip", "netns", "exec", topo.host, str(PROXYD), "--policy", str(path),
                           "--control-socket", f"/tmp/rfit-edges-{os.getpid()}.sock"],
                          capture_output=True, text=True, timeout=30)


def million_cidrs() -> list[str]:
    """1,000,000 distinct, non-adjacent /32s in 10.0.0.0/8 (every other address: the interval
    merge cannot collapse them)."""
    return [f"10.{(i >> 15) & 255}.{(i >> 7) & 255}.{(i & 127) * 2}/32" for i in range(1_000_000)]


def wait_reload_outcome(d, since: int, timeout: float) -> str:
    return d.wait_for_log(r'msg="(policy reloaded|reload refused)', since=since, timeout=timeout)


# -- 1. a policy of a million CIDRs ---------------------------------------------------------------

def test_policy_of_a_million_cidrs_is_checked_and_applied_within_bounds_and_the_relay_keeps_echoing(topo):
    """[peers] ok = peer_ok + 1,000,000 non-adjacent /32s (18 MB of TOML). It is a valid policy,
    so it is accepted, not refused: `proxyctl check` says ok within 60 s and 768 MiB (debug
    build: ~6 s, ~280 MiB); a reload to it (SIGHUP) applies within 120 s (~15 s), its set
    elements changed over netlink in one transaction, while a relayed echo keeps answering within 1 s; proxyd's RSS after is under 1 GiB (~340 MiB); a reload back to the small policy applies too; peer_ok is
    allowed throughout and proxyd stays up."""
    small = relay_policy(protocol="none")
    d = start_echo_relay(topo, small)
    big = relay_policy(protocol="none", ok_peers=[OK_V4, OK_V6, *million_cidrs()])
    big_path = topo.tmp / "million.toml"
    big_path.write_text(big)
    assert 16 * MiB < len(big) < LIMIT

    proc, elapsed, rss = check_measured(big_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ok: 1 guard" in proc.stdout, proc.stdout
    assert elapsed < 60, f"proxyctl check took {elapsed:.1f}s"
    assert rss < 768 * MiB, f"proxyctl check peaked at {rss / MiB:.0f} MiB"

    probe = EchoProbe(topo)
    since = d.log_size()
    started = time.monotonic()
    topo.write_policy(big)
    d.proc.send_signal(signal.SIGHUP)
    log = wait_reload_outcome(d, since, timeout=120)
    took = time.monotonic() - started
    probe.stop()
    assert 'msg="policy reloaded' in log, log[-3000:]
    # Over netlink, in one transaction: the acks of its ~8,000 messages fit the receive buffer
    # (they once overflowed it, and the reload fell back to nft's slower refill).
    assert 'change="set elements changed"' in log and "tried the next way" not in log, log[-3000:]
    assert took < 120, f"the reload took {took:.1f}s"
    rss_after = rss_bytes(proxyd_pid(d))
    assert rss_after < 1024 * MiB, f"proxyd holds {rss_after / MiB:.0f} MiB after the reload"
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, b"allowed") == b"allowed"

    topo.write_policy(small)
    since = d.log_size()
    d.proc.send_signal(signal.SIGHUP)
    assert 'msg="policy reloaded' in wait_reload_outcome(d, since, timeout=120)
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, b"after") == b"after"
    assert_alive(d)


# -- 2. a 100 MB policy file ----------------------------------------------------------------------

def test_policy_file_of_100_mb_is_refused_by_the_size_limit_naming_file_and_limit_before_reading_it(topo):
    """A valid policy followed by a 100 MiB comment. `proxyctl check` refuses it at once (under
    5 s, under 64 MiB of RSS: it is not read) with FILE: file: cannot read: N bytes, over the
    limit of 67108864 bytes (64 MiB); proxyd refuses to start on it with the same line; a
    running proxyd refuses a reload to it (the policy in force stays, the relay keeps echoing)."""
    d = start_echo_relay(topo)
    huge = topo.tmp / "huge.toml"
    with open(huge, "w") as f:
        f.write(relay_policy(protocol="none"))
        line = "#" + "x" * 1023 + "\n"
        for _ in range(100 * 1024):
            f.write(line)
    size = huge.stat().st_size
    expected = f"{huge}: file: cannot read: {size} bytes, over the limit of {LIMIT} bytes (64 MiB) for a policy file"

    proc, elapsed, rss = check_measured(huge)
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr[-2000:]
    assert elapsed < 5 and rss < 64 * MiB, (elapsed, rss)

    probe = EchoProbe(topo)
    os.replace(huge, topo.policy_path)
    reply = reload(d)
    probe.stop()
    assert reply["ok"] is False and reply["error"]["code"] == "policy-refused", reply
    assert "policy in force stays" in reply["error"]["message"]
    assert any(line.endswith(expected.split(": file: ", 1)[1]) for line in reply["error"]["details"]), reply
    assert rss_bytes(proxyd_pid(d)) < 256 * MiB
    assert_alive(d)

    started = start_refused(topo, topo.policy_path)
    assert started.returncode == 1, started
    assert f"{topo.policy_path}: file: cannot read: {size} bytes, over the limit" in started.stderr, started.stderr[-2000:]
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, b"still") == b"still"


# -- 3. a symlink loop ----------------------------------------------------------------------------

def test_symlink_loop_as_policy_is_refused_at_check_start_and_reload_naming_the_loop(topo):
    """policy.toml -> loop.toml -> policy.toml. `proxyctl check`, proxyd's start and a reload
    each say FILE: file: cannot read: Too many levels of symbolic links; the running proxyd keeps
    its policy and the relay keeps echoing."""
    d = start_echo_relay(topo)
    loop_dir = topo.tmp / "loop"
    loop_dir.mkdir()
    a, b = loop_dir / "policy.toml", loop_dir / "loop.toml"
    a.symlink_to(b)
    b.symlink_to(a)
    expected = "file: cannot read: Too many levels of symbolic links"

    checked = subprocess.run([str(PROXYCTL), "check", str(a)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 1 and f"{a}: {expected}" in checked.stderr, checked
    started = start_refused(topo, a)
    assert started.returncode == 1 and f"{a}: {expected}" in started.stderr, started.stderr[-2000:]

    probe = EchoProbe(topo)
    link = topo.policy_path.with_suffix(".link")
    link.symlink_to(loop_dir / "loop.toml")
    os.replace(link, topo.policy_path)  # policy.toml -> loop/loop.toml -> loop/policy.toml -> …
    reply = reload(d)
    probe.stop()
    assert reply["ok"] is False and reply["error"]["code"] == "policy-refused", reply
    assert f"{topo.policy_path}: {expected}" in reply["error"]["details"], reply
    assert topo.echo_roundtrip(topo.peer_ok, HOST_V4, STORE_PORT, b"kept") == b"kept"
    assert_alive(d)


def assert_reload_refused_at_once(d, problem: str) -> None:
    started = time.monotonic()
    reply = reload(d)
    assert time.monotonic() - started < 2, f"the reload refusing {problem!r} took too long"
    assert reply["ok"] is False and reply["error"]["code"] == "policy-refused", reply
    assert f"{d.policy}: file: cannot read: {problem}" in reply["error"]["details"], reply


# -- 4. unreadable policy paths -------------------------------------------------------------------

def test_unreadable_policy_paths_are_refused_clearly_and_at_once_and_the_policy_in_force_stays(topo):
    """Honest ways to be unable to read a policy as root, each a clear refusal and the policy in
    force kept: (a) a 0600 file read by `proxyctl check` as nobody: Permission denied; (b) a
    file of mode 000 read by a proxyd that runs as root with CAP_NET_ADMIN alone (no
    CAP_DAC_OVERRIDE, as deploy/kubernetes runs it): a reload says Permission denied; (c) a FIFO
    with no writer (before this test it blocked `proxyctl check` and the reload for ever): "a
    FIFO, not a regular file" within 2 s; (d) a directory: "a directory, not a regular file"."""
    private = topo.tmp / "private.toml"
    private.write_text(relay_policy(protocol="none"))
    private.chmod(0o600)
    as_nobody = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                str(PROXYCTL), "check", str(private)], capture_output=True, text=True, timeout=30)
    assert as_nobody.returncode == 1, as_nobody
    assert f"{private}: file: cannot read: Permission denied" in as_nobody.stderr, as_nobody.stderr

    fifo = topo.tmp / "fifo.toml"
    os.mkfifo(fifo)
    started = time.monotonic()
    checked = subprocess.run([str(PROXYCTL), "check", str(fifo)], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 2, "proxyctl check took too long on a FIFO"
    assert checked.returncode == 1 and f"{fifo}: file: cannot read: a FIFO, not a regular file" in checked.stderr, checked

    d = start_echo_relay(topo, wrapper=NET_ADMIN_ONLY)
    probe = EchoProbe(topo)
    topo.policy_path.chmod(0o000)
    reply = reload(d)
    assert reply["ok"] is False and reply["error"]["code"] == "policy-refused", reply
    assert f"{topo.policy_path}: file: cannot read: Permission denied" in reply["error"]["details"], reply

    os.unlink(topo.policy_path)
    os.mkfifo(topo.policy_path)
    assert_reload_refused_at_once(d, "a FIFO, not a regular file")
    os.unlink(topo.policy_path)
    topo.policy_path.mkdir()
    assert_reload_refused_at_once(d, "a directory, not a regular file")
    probe.stop()
    assert status(d)["reloads_refused"] == 3
    assert_alive(d)


# -- 5. the control socket flooded ----------------------------------------------------------------

def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_control_socket_flooded_by_2000_held_connections_stays_bounded_and_answers_after_the_request_timeout(topo):
    """2,000 connections to the control socket that send nothing or half a request and stay
    open, then 500 that connect and close at once. proxyd serves at most 16 control clients
    (ControlServer.maxClients) and closes the rest at accept, so its descriptors grow by at most
    16 + a few; each held client is answered `timeout` after 5 s and dropped by 10 s. During
    the flood, `proxyctl status` either answers or fails within 5 s (never hangs); once the
    flood's held connections have been timed out it answers again, within 12 s of the flood; the
    relayed echo never takes over 1 s; proxyd stays up."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    d = start_echo_relay(topo)
    pid = proxyd_pid(d)
    assert status(d)["guards"][0]["name"] == "store"
    probe = EchoProbe(topo)
    time.sleep(0.2)
    fds_before = fd_count(pid)

    held: list[socket.socket] = []
    fds_peak = fds_before
    try:
        for i in range(2000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(d.control_socket)
                if i % 2:
                    s.send(b'{"version": 1, "comm')  # half a request
            except OSError:
                s.close()
                continue
            held.append(s)
            if i % 100 == 0:
                fds_peak = max(fds_peak, fd_count(pid))
        for _ in range(500):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(d.control_socket)
            except OSError:
                pass
            s.close()
        flood_done = time.monotonic()
        fds_peak = max(fds_peak, fd_count(pid))
        assert fds_peak <= fds_before + 16 + 6, f"proxyd's descriptors went from {fds_before} to {fds_peak}"

        answered_after = None
        while time.monotonic() - flood_done < 12:
            started = time.monotonic()
            proc = proxyctl(d, "status", "--json", timeout=10)
            assert time.monotonic() - started < 5, "proxyctl status hung on the flooded socket"
            if proc.returncode == 0:
                answered_after = time.monotonic() - flood_done
                break
            time.sleep(0.2)
        assert answered_after is not None, f"status never answered within 12 s of the flood:\n{proc.stderr}"
    finally:
        for s in held:
            s.close()
    probe.stop()
    assert fd_count(pid) <= fds_before + 2
    assert "control socket: too many clients" in d.log()
    assert "control socket: request not received in time" in d.log()
    assert_alive(d)


# -- 6. /metrics hammered during reloads ----------------------------------------------------------

def scrape_once(topo) -> str:
    s = topo.connect(topo.peer_ok, HOST_V4, METRICS_PORT, timeout=5)
    s.settimeout(5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: proxyd\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    topo.sockets.remove(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), head[:200]
    return body.decode()


def test_metrics_scraped_by_64_clients_at_once_during_reloads_gives_valid_pages_and_the_relay_keeps_echoing(topo):
    """[daemon] metrics_listen on 10.77.0.1:9464, allowed to peer_ok. 64 threads each scrape
    /metrics from peer_ok 10 times back to back while the policy is reloaded 6 times (a limit
    changing between two values). Every scrape is a 200 whose body parses as Prometheus text
    and holds ringfence_reloads_total; all 6 reloads are applied; the relayed echo never takes
    over 1 s; proxyd stays up."""
    policy = lambda n: f'[daemon]\nmetrics_listen = "{HOST_V4}:{METRICS_PORT}"\n\n' + relay_policy(  # noqa: E731
        protocol="none", max_connections_per_peer=n)
    d = start_echo_relay(topo, policy(100))
    wait_event(d, "metrics listening")
    probe = EchoProbe(topo)
    pages: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(10):
            try:
                body = scrape_once(topo)
                names = {f.name for f in text_string_to_metric_families(body)}
                assert "ringfence_reloads" in names or "ringfence_reloads_total" in names, sorted(names)[:10]
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                with lock:
                    failures.append(repr(exc)[:300])
                continue
            with lock:
                pages.append(len(body))

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(64)]
    for t in threads:
        t.start()
    applied = 0
    for i in range(6):
        topo.write_policy(policy(101 + i))
        reply = reload(d)
        applied += reply["ok"] is True
    for t in threads:
        t.join(60)
    probe.stop()
    assert not failures, f"{len(failures)} of 640 scrapes failed, e.g. {failures[:3]}"
    assert len(pages) == 640
    assert applied == 6
    assert status(d)["reloads_applied"] == 6
    assert_alive(d)


# -- 7. a ZMTP frame length of 2^63 - 1, then nothing ---------------------------------------------

def test_subscriber_declaring_a_frame_of_2_pow_63_minus_1_bytes_is_closed_at_once_and_readers_keep_receiving(topo, peers):
    """A raw SUB from peer_ok completes the handshake through the broker, then sends a data
    frame header with the largest legal size, 2^63 - 1, and nothing else. It is closed within
    2 s with `subscriber closed: protocol violation` rule=frame-size naming the size; proxyd's
    RSS grows by under 16 MiB (nothing of that size is allocated); a real libzmq reader
    connected before receives every message the writer streams meanwhile and after."""
    narrow_host_port_range(topo)
    writer = Writer(peers, topo.host)
    d = start_broker(topo, broker_policy(writer.port), writer.port + 10000)
    reader = Reader(peers, topo.peer_ok, writer.port, name="steady")
    assert writer.wait_subs(1, 10) == [b"\x01"]
    writer.ready()
    reader.expect_ready(10)
    pid = proxyd_pid(d)
    rss_before = rss_bytes(pid)

    writer.stream_bg([1024], 0.02)
    try:
        conn = ZmtpPeer(topo, topo.peer_ok, writer.port).open()
        since = d.log_size()
        conn.sendall(bytes([0x02]) + struct.pack(">Q", (1 << 63) - 1))
        how, elapsed = wait_closed(conn.sock, 2.0)
        event = wait_event(d, "subscriber closed: protocol violation", since, guard="bus", peer=OK_V4)
        assert event.get("rule") == "frame-size", event
        assert str((1 << 63) - 1) in event.get("detail", ""), event
        time.sleep(0.5)
    finally:
        sent = writer.stop_bg()
    assert sent.digests
    reader.expect_stream(sent, 20)
    reader.expect_stream(writer.stream(5, [1024]), 20)
    grown = rss_bytes(pid) - rss_before
    assert grown < 16 * MiB, f"proxyd's RSS grew by {grown / MiB:.1f} MiB"
    assert_alive(d)


class FakeEngine:
    """A hand-written XPUB "engine" in the host namespace on 10.77.0.1:PORT: it answers the
    broker's upstream connection with a greeting and READY (Socket-Type XPUB), then sends a data
    frame header declaring 2^63 - 1 bytes and nothing more, and holds the connection open."""

    def __init__(self, topo, port: int):
        self.listener = new_socket(topo.host, socket.AF_INET)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST_V4, port))
        self.listener.listen(4)
        self.listener.settimeout(15)
        self.sent_header = threading.Event()
        self.conns: list[socket.socket] = []
        self._hello = greeting() + ready(b"XPUB")
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.conns.append(conn)
        conn.settimeout(10)
        conn.sendall(self._hello)
        got = b""
        while len(got) < 64:  # the broker's greeting; its READY follows
            chunk = conn.recv(4096)
            if not chunk:
                return
            got += chunk
        conn.sendall(bytes([0x02]) + struct.pack(">Q", (1 << 63) - 1))
        self.sent_header.set()

    def close(self) -> None:
        for s in [self.listener, *self.conns]:
            s.close()


def test_engine_declaring_a_frame_of_2_pow_63_minus_1_bytes_is_not_allocated_and_the_relay_keeps_echoing(topo):
    """The broker's upstream side: guard bus in front of a fake XPUB engine that sends a data
    frame header of 2^63 - 1 bytes after the handshake, then nothing. The broker reads past an
    oversized upstream message instead of refusing the engine (docs/broker.md), so it waits for
    the body without allocating it: proxyd's RSS grows by under 16 MiB over 2 s, it stays up,
    `proxyctl status` answers, and guard store's relayed echo keeps answering within 1 s."""
    bus_port = 31555
    topo.echo_server(STORE_PORT)
    engine = FakeEngine(topo, bus_port)
    try:
        d = topo.start_proxyd(two_guard_policy(bus_port, store_protocol="none"))
        wait_event(d, "relay listening", guard="store")
        pid = proxyd_pid(d)
        probe = EchoProbe(topo)
        # The broker connects upstream when it starts or when a subscriber comes: bring one.
        sub = ZmtpPeer(topo, topo.peer_ok, bus_port)
        sub.sendall(greeting() + ready(b"SUB") + subscribe_cmd(b""))
        assert engine.sent_header.wait(15), f"the broker never completed a handshake with the engine:\n{d.log()[-3000:]}"
        rss_before = rss_bytes(pid)
        time.sleep(2)
        grown = rss_bytes(pid) - rss_before
        assert grown < 16 * MiB, f"proxyd's RSS grew by {grown / MiB:.1f} MiB"
        assert status(d)["guards"][0]["name"] == "store"
        probe.stop()
        assert_alive(d)
    finally:
        engine.close()
