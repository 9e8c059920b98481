"""The reload benchmark's processes inside namespaces.

  reload_agent.py echo PORT
      an echo server on all addresses (one thread, selectors), until killed;
  reload_agent.py clients HOST PORT N
      opens N connections to HOST:PORT and checks each echoes, prints {"ready": N}; then, per
      line on stdin: "start" (echo round-robin over all connections until "stop") / "stop"
      (prints {"echoes": E, "errors": [...]}) / "check" (one echo on every connection, prints
      {"ok": K, "lost": [...]}); ends at EOF.
"""

import json
import selectors
import socket
import sys
import threading


def echo(port: int) -> None:
    sel = selectors.DefaultSelector()
    srv = socket.create_server(("0.0.0.0", port), backlog=4096, reuse_port=False)
    srv.setblocking(False)
    sel.register(srv, selectors.EVENT_READ)
    print(json.dumps({"listening": port}), flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is srv:
                try:
                    conn, _ = srv.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            conn.setblocking(True)
            conn.sendall(data)
            conn.setblocking(False)


def one_echo(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = conn.recv(len(payload) - len(got))
        if not chunk:
            raise ConnectionError("EOF")
        got += chunk
    if got != payload:
        raise ValueError("echo differs")


def clients(host: str, port: int, n: int) -> None:
    conns = []
    for i in range(n):
        conn = socket.create_connection((host, port), timeout=10)
        conns.append(conn)
        one_echo(conn, b"hello %d" % i)
    print(json.dumps({"ready": len(conns)}), flush=True)
    state = {"stop": threading.Event(), "echoes": 0, "errors": []}
    worker = None

    def busy():
        i = 0
        while not state["stop"].is_set():
            conn = conns[i % len(conns)]
            try:
                one_echo(conn, b"x" * 64)
                state["echoes"] += 1
            except Exception as exc:  # report every failure: a lost connection is the finding
                state["errors"].append(f"connection {i % len(conns)}: {exc!r}")
                if len(state["errors"]) > 20:
                    return
            i += 1

    for line in sys.stdin:
        command = line.strip()
        if command == "start":
            state.update(stop=threading.Event(), echoes=0, errors=[])
            worker = threading.Thread(target=busy)
            worker.start()
        elif command == "stop":
            state["stop"].set()
            worker.join()
            print(json.dumps({"echoes": state["echoes"], "errors": state["errors"]}), flush=True)
        elif command == "check":
            lost = []
            for i, conn in enumerate(conns):
                try:
                    one_echo(conn, b"check %d" % i)
                except Exception as exc:
                    lost.append(f"connection {i}: {exc!r}")
            print(json.dumps({"ok": len(conns) - len(lost), "lost": lost[:20]}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(int(sys.argv[2]))
    else:
        clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
