"""The agents' side of the benchmarks' JSON-line protocol, shared by relay/bench_agent.py and
broker/bench_agent.py (the orchestrators' side is benchkit.Agent).

An agent runs inside a network namespace, started by its orchestrator as
`ip netns exec NS PYTHON bench_agent.py MODE ...`. It prints one JSON line when it is ready,
then answers one JSON request per line on stdin with one JSON answer per line on stdout, and
ends when stdin closes, so nothing outlives an orchestrator that died. Kept apart from benchkit
so that an agent loads nothing of the orchestrators' (namespaces, cleanup, subprocesses).
"""

from __future__ import annotations

import json
import sys
from typing import Callable


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(handler: Callable[[str | None, dict], dict | None]) -> int:
    """Answers requests until stdin closes. handler(op, request) returns the answer, or None
    for an op it does not know; a failure is answered {"ok": false, "error": "Type: message"}."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            result = handler(cmd.get("op"), cmd)
            if result is None:
                raise ValueError(f"unknown op {cmd.get('op')!r}")
            emit(result)
        except Exception as exc:
            emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]})
    return 0
