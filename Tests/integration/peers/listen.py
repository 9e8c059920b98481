"""A plain TCP listener that never speaks: HOST PORT. Prints "ready" once listening, accepts and
closes connections, and ends when its standard input closes. For the discovery tests, a process
whose command line no discover guard names."""

import select
import socket
import sys


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(16)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([server, sys.stdin], [], [])
        if sys.stdin in readable and not sys.stdin.readline():
            return 0
        if server in readable:
            conn, _ = server.accept()
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
