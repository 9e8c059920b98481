"""Did a reader get a stream whole? Compares what the engine sent with what a reader printed.

Usage: check_stream.py SENT_JSON READER_OUTPUT [--wait SECONDS]

SENT_JSON is the engine's answer to a `stream` request (Tests/integration/peers/broker_writer.py:
"first_seq", "sent", "digests", the sha256 of every frame of every message); READER_OUTPUT is
the file a reader (vllm_rank.py, broker_reader.py) prints its messages to, one JSON line each.
Waits up to SECONDS (default 20) for the last message, then prints one line, "N of N" when the
reader got every message of the stream, in order and every frame intact, otherwise what it got
(with exit status 1).
"""

import json
import sys
import time


def received(path: str, first: int) -> list[dict]:
    messages = []
    with open(path) as f:
        for line in f:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("type") == "msg" and m.get("seq") is not None and m["seq"] >= first:
                messages.append(m)
    return messages


def main() -> int:
    sent = json.loads(sys.argv[1])
    path = sys.argv[2]
    wait = float(sys.argv[sys.argv.index("--wait") + 1]) if "--wait" in sys.argv else 20.0
    first, digests = sent["first_seq"], sent["digests"]
    deadline = time.monotonic() + wait
    while True:
        got = received(path, first)
        if len(got) >= len(digests) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    expected = list(range(first, first + len(digests)))
    seqs = [m["seq"] for m in got]
    if seqs != expected:
        missing = sorted(set(expected) - set(seqs))
        print(f"{len(got)} of {len(digests)} (missing {len(missing)}, first {missing[:3]}; extra or out of order: "
              f"{[s for s in seqs if s not in expected][:3] or seqs[:0]})")
        return 1
    bad = [m["seq"] for m, d in zip(got, digests) if m["sha"] != d]
    if bad:
        print(f"{len(got)} of {len(digests)}, but {len(bad)} differ from what was sent (seq {bad[:3]})")
        return 1
    print(f"{len(got)} of {len(digests)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
