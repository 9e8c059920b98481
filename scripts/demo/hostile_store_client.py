"""The demo's hostile TCPStore client: one connection to the store (through the relay's
TCPStore gate) that sends what a scanner or an attacker would, then reports what became of it.

Usage: hostile_store_client.py HOST PORT scanner|huge-key

  scanner   an HTTP request where TCPStore expects its VALIDATE command (a port scanner or a
            crawler); the gate's rule: validate-first.
  huge-key  a proper VALIDATE (the magic 0x3C85F7CE), then a SET whose key declares 1 GiB;
            the gate refuses it from the length field alone, before a byte of the key is
            read (rule: key-size). The wire format: docs/tcpstore.md.

Prints one word: "closed" (EOF or reset within 3 s: the gate cut it), "open" (the connection
is still there after 3 s), "refused" or "timeout" (it never connected).
"""

import select
import socket
import struct
import sys

VALIDATE, SET = 0, 1
MAGIC = 0x3C85F7CE


def payload(kind: str) -> bytes:
    if kind == "scanner":
        return b"GET / HTTP/1.1\r\nHost: store\r\n\r\n"
    if kind == "huge-key":
        return (struct.pack("<BI", VALIDATE, MAGIC) + struct.pack("<B", SET)
                + struct.pack("<Q", 1 << 30) + b"k" * 1024)
    raise SystemExit(f"unknown kind {kind!r}")


def main() -> int:
    host, port, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(3.0)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        print("refused")
        return 0
    except OSError:
        print("timeout")
        return 0
    try:
        s.sendall(payload(kind))
        if not select.select([s], [], [], 3.0)[0]:
            print("open")
            return 0
        print("closed" if s.recv(4096) == b"" else "open")
    except (ConnectionResetError, BrokenPipeError):
        print("closed")
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
