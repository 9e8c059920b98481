"""One fact from a `proxyctl ... --json` reply (read on standard input), as one short line the
demo compares with what it expects. Python's json, so that the demo needs no jq.

Usage: proxyctl COMMAND --json | ctl_query.py QUERY [ARG]

  listener PORT   (listeners) what covers PORT: "CLASS[ SOCKET_TYPE]: COVERAGE by GUARD", one
                  per listener on that port, sorted and de-duplicated (IPv4 and IPv6 rows)
  held            (status) "yes" when a discovered broker (a guard "tp/...") holds its engine back
  queue ADDRESS   (peers) ADDRESS's broker subscriber's queue: "QUEUED/HWM" messages
  broker          (status) the discovered broker's "N subscribers, M evicted"
  subscribers     (peers) the addresses of the broker's subscribers, sorted, or "none"
  audit SOURCE    (audit) the guards that refused SOURCE, sorted, or "nothing"
  cut ADDRESS     (reload) the guards whose connections from ADDRESS the reload cut (a
                  discovered broker "tp/..." as "tp"), sorted, or "nothing"

A reply that is not as expected prints "no reply" or "absent" (never a traceback).
"""

import json
import sys


def brokers(reply: dict) -> list[dict]:
    return [g for g in (reply.get("status") or {}).get("guards", []) if g.get("name", "").startswith("tp/")]


def broker_peers(reply: dict) -> list[dict]:
    return [p for p in reply.get("peers") or [] if p.get("guard", "").startswith("tp/")]


def answer(query: str, arg: str, reply: dict) -> str:
    if query == "listener":
        rows = {f"{r.get('class')}{' ' + r['socket_type'] if r.get('socket_type') else ''}: "
                f"{r.get('coverage')} by {r.get('guard')}"
                for r in reply.get("listeners") or [] if r.get("port") == int(arg)}
        return " | ".join(sorted(rows)) or "absent"
    if query == "held":
        return "yes" if any((g.get("upstream") or {}).get("held_seconds") for g in brokers(reply)) else "no"
    if query == "queue":
        rows = [p for p in broker_peers(reply) if p.get("peer") == arg]
        return " ".join(f"{p.get('queued_messages')}/{p.get('hwm_messages')}" for p in rows) or "absent"
    if query == "broker":
        return " ".join(f"{g.get('connections')} subscribers, {(g.get('counters') or {}).get('evictions')} evicted"
                        for g in brokers(reply)) or "absent"
    if query == "subscribers":
        return " ".join(sorted({p.get("peer", "?") for p in broker_peers(reply)})) or "none"
    if query == "audit":
        return " ".join(sorted({r.get("guard", "?") for r in reply.get("audit") or [] if r.get("source") == arg})) \
            or "nothing"
    if query == "cut":
        cuts = (reply.get("reload") or {}).get("cut") or []
        return " ".join(sorted({c.get("guard", "?").split("/")[0] for c in cuts if c.get("peer") == arg})) or "nothing"
    raise SystemExit(f"unknown query {query!r}")


def main() -> int:
    query, arg = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    try:
        reply = json.load(sys.stdin)
    except ValueError:
        print("no reply")
        return 0
    print(answer(query, arg, reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
