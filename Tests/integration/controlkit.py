"""Helpers for the control-plane tests: a policy with a TCPStore relay guard ("store") and a
broker guard ("bus") side by side, proxyctl run against a daemon's control socket, and raw
requests on that socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from conftest import OK_V4, OK_V6, PROXYCTL, Proxyd, new_socket
from relaykit import STORE_PORT, _toml_value

BUS_GUARD = "bus"
STORE_GUARD = "store"


def two_guard_policy(bus_port: int, ok_peers: list[str] | None = None, *, store_protocol: str = "tcpstore",
                     store: dict | None = None, bus: dict | None = None, daemon: dict | None = None,
                     extra: str = "") -> str:
    """[peers] ok = OK_PEERS (default peer_ok's two addresses); guard "store" (kind tcp, port
    29500, relay 39500) and guard "bus" (kind zmq-xpub on BUS_PORT, listen BUS_PORT + 10000),
    both allowing @ok, with extra settings from `store` and `bus`; `daemon` fills [daemon]."""
    ok_peers = [OK_V4, OK_V6] if ok_peers is None else ok_peers
    lines = []
    if daemon:
        lines += ["[daemon]"] + [f"{k} = {_toml_value(v)}" for k, v in daemon.items()] + [""]
    lines += ["[peers]", f"ok = {_toml_value(ok_peers)}", "",
              "[[guard]]", f'name = "{STORE_GUARD}"', 'kind = "tcp"', f"port = {STORE_PORT}", 'allow = ["@ok"]',
              f'protocol = "{store_protocol}"']
    lines += [f"{k} = {_toml_value(v)}" for k, v in (store or {}).items()]
    lines += ["", "[[guard]]", f'name = "{BUS_GUARD}"', 'kind = "zmq-xpub"', f"port = {bus_port}", 'allow = ["@ok"]']
    lines += [f"{k} = {_toml_value(v)}" for k, v in (bus or {}).items()]
    return "\n".join(lines) + "\n" + extra


def proxyctl(d: Proxyd, *args: str, user: int | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """`proxyctl ARGS --control-socket D's socket`, optionally as uid/gid `user`."""
    command = [str(PROXYCTL), *args, "--control-socket", d.control_socket]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def proxyctl_json(d: Proxyd, *args: str) -> dict:
    """The JSON reply of `proxyctl ARGS --json` (exit 0 or 1: error replies are JSON too)."""
    proc = proxyctl(d, *args, "--json")
    assert proc.returncode in (0, 1), f"proxyctl {args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"proxyctl {args} printed no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def status(d: Proxyd) -> dict:
    reply = proxyctl_json(d, "status")
    assert reply["ok"] is True, reply
    return reply["status"]


def guard_status(d: Proxyd, name: str) -> dict:
    (found,) = [g for g in status(d)["guards"] if g["name"] == name]
    return found


def live_peers(d: Proxyd) -> list[dict]:
    reply = proxyctl_json(d, "peers")
    assert reply["ok"] is True, reply
    return reply["peers"]


def reload(d: Proxyd, *args: str) -> dict:
    """`proxyctl reload ARGS --json`: the whole reply (ok or not)."""
    return proxyctl_json(d, "reload", *args)


def raw_request(path: str, data: bytes, half_close: bool = True, timeout: float = 10.0) -> dict:
    """Sends `data` on the control socket as is and returns the JSON reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a request over the cap: the daemon stops reading, the reply is still there
        if half_close:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    finally:
        s.close()
    return json.loads(reply)


def mode_of(path: str) -> int:
    return os.stat(path).st_mode & 0o777


def metrics_page(topo, address: str, port: int) -> str:
    """GET /metrics at ADDRESS:PORT from the host namespace: the page's text (the reply must be 200)."""
    s = new_socket(topo.host, socket.AF_INET)
    s.settimeout(5)
    s.connect((address, port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: proxyd\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"text/plain; version=0.0.4" in head, head
    return body.decode()
