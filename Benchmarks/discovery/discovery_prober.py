"""The benchmark's prober, in an allowed peer namespace: for each "PORT T0_NS" line on FIFO, it
connects to HOST:PORT again and again until proxyd's broker answers, and prints one JSON line.

Usage: discovery_prober.py HOST FIFO [--passive]

With --passive it only reports each port, connecting to nothing: the run then measures proxyd
alone, without the prober's own load on the machine's cores (see bench_discovery.py --passive).

What answers tells where the kernel sends the connection, without sending a byte: libzmq's XPUB
sends its 10-byte signature and waits for ours; proxyd's broker sends its whole 64-byte greeting
and its READY at once, unprompted. A SYN that gets no answer within ATTEMPT_S is a held port
(proxyd's hold drops it while it classifies). Each attempt is closed at once; attempts start at
most every PACE_S, so that the prober does not take a core from proxyd on a small machine.

Output per port: {"port", "t0_ns", "first_ns" (the first attempt), "hold_ns" (the first attempt
that met the hold), "broker_ns" (the start of the first attempt the broker answered: the redirect
was live by then, so broker_ns - t0_ns is an upper bound of the time to a live redirect),
"direct" (attempts the engine answered itself), "held", "attempts"}.
"""

import json
import select
import socket
import sys
import time

ATTEMPT_S = 0.00025    # a SYN unanswered this long: held (an answered one takes ~50 µs here)
MORE_S = 0.00015       # after exactly 10 bytes, wait this long for more before calling it the engine
GIVE_UP_S = 3.0
PACE_S = 0.0002        # attempts start at most this often: the prober must not take a core from proxyd


def attempt(host: str, port: int) -> str:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        _, writable, _ = select.select([], [s], [], ATTEMPT_S)
        if not writable:
            return "held"
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            return "refused"
        got = b""
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            readable, _, _ = select.select([s], [], [], MORE_S if len(got) >= 10 else max(0, deadline - time.monotonic()))
            if not readable:
                break
            chunk = s.recv(512)
            if not chunk:
                break
            got += chunk
            if len(got) > 10:
                return "broker"
        return "engine" if len(got) == 10 else f"other:{len(got)}"
    finally:
        s.close()


def main() -> int:
    host, fifo_path = sys.argv[1], sys.argv[2]
    passive = "--passive" in sys.argv[3:]
    with open(fifo_path) as fifo:
        for line in fifo:
            port, t0 = (int(x) for x in line.split())
            result = {"port": port, "t0_ns": t0, "direct": 0, "held": 0, "attempts": 0, "other": 0}
            if passive:
                print(json.dumps(result), flush=True)
                continue
            stop = time.monotonic() + GIVE_UP_S
            next_at = time.monotonic()
            while time.monotonic() < stop:
                wait = next_at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                next_at = time.monotonic() + PACE_S
                began = time.monotonic_ns()
                result.setdefault("first_ns", began)
                what = attempt(host, port)
                result["attempts"] += 1
                if what == "broker":
                    result["broker_ns"] = began
                    break
                if what == "held":
                    result["held"] += 1
                    result.setdefault("hold_ns", began)
                elif what == "engine":
                    result["direct"] += 1
                else:
                    result["other"] += 1
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
