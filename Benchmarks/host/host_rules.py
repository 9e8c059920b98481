"""What the host benchmark loads: its allowlists (random blocks), the nftables rulesets it
applies itself (the comparison ladder and the reference copy of the host guard's rules), and
proxyd's policy. No side effects here: bench_host.py applies them.
"""

from __future__ import annotations

import ipaddress
import random
from ipaddress import IPv4Network

HOST_IP, PEER_IP, STRANGER_IP = "10.77.0.1", "10.77.0.2", "10.77.0.3"
SUBNET_BITS = 24
FENCED_PORT, PUBLIC_PORT = 29600, 22
AVOID = ipaddress.ip_network("10.77.0.0/16")  # the benchmark's own addresses: no block covers them
TABLE = "ringfence"  # proxyd's default table name; the reference ruleset uses it too
LADDER_TABLE = "rfhbench"


def random_blocks(count: int, seed: int) -> list[IPv4Network]:
    """`count` distinct random IPv4 blocks, /16 to /32 (prefix length uniform), in 1.0.0.0 -
    223.255.255.255 less 127/8 and AVOID. They may overlap or touch one another, as a real
    list might; collapsed() merges them where nft needs it."""
    rng = random.Random(seed)
    blocks: dict[IPv4Network, None] = {}
    for _ in range(count * 20):  # bounded: rejections are rare
        if len(blocks) == count:
            break
        prefix = rng.randint(16, 32)
        address = rng.getrandbits(32) & ~((1 << (32 - prefix)) - 1) & 0xFFFFFFFF
        net = IPv4Network((address, prefix))
        first = address >> 24
        if first == 0 or first == 127 or first >= 224 or net.overlaps(AVOID):
            continue
        blocks[net] = None
    if len(blocks) != count:
        raise ValueError(f"drew only {len(blocks)} of {count} blocks")
    return list(blocks)


class Allowlists:
    """The peer plus `count` random blocks, and the variants the reloads alternate between:
    base[:-changed] + one of two `changed`-block tails (a small change), and the whole list
    against an entirely different one of the same size (a full change)."""

    def __init__(self, count: int, changed: int, seed: int = 20_777):
        pool = random_blocks(2 * count + changed, seed)
        self.count, self.changed = count, changed
        self.main = pool[:count]
        self.tail_b = pool[count:count + changed]
        self.other = pool[count + changed:]

    def variant(self, kind: str, odd: bool) -> list[IPv4Network]:
        if kind == "small":
            return self.main[:self.count - self.changed] + (self.tail_b if odd else self.main[self.count - self.changed:])
        return self.other if odd else self.main


def peer_list(blocks: list[IPv4Network]) -> list[IPv4Network]:
    return [IPv4Network(PEER_IP)] + blocks


def collapsed(blocks: list[IPv4Network]) -> list[IPv4Network]:
    """Overlapping and adjacent blocks merged: an nft interval set without auto-merge refuses
    overlaps in one transaction."""
    return list(ipaddress.collapse_addresses(blocks))


def elements(blocks: list[IPv4Network]) -> str:
    return ", ".join(str(b.network_address) if b.prefixlen == 32 else str(b) for b in blocks)


# --------------------------------------------------------------------------------------------
# Rulesets the benchmark loads itself (`nft -f -` in the host namespace)


def ladder_ruleset(conntrack: bool) -> str:
    """An empty prerouting chain (the hook alone), or one with a single ct rule, which turns
    conntrack on in the namespace as every fence does."""
    rule = "\n        ct direction reply accept" if conntrack else ""
    return (f"table inet {LADDER_TABLE} {{\n    chain pre {{\n"
            f"        type filter hook prerouting priority -150; policy accept;{rule}\n    }}\n}}\n")


def fence_ruleset(blocks: list[IPv4Network]) -> str:
    """The host guard's rules as given in the benchmark's brief (what proxyd is to load),
    allow = the peer plus `blocks`."""
    allow = elements(collapsed(peer_list(blocks)))
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  set host_v4 {{ type ipv4_addr; flags interval; elements = {{ {allow} }} }}
  set host_v6 {{ type ipv6_addr; flags interval; }}
  set bans.v4 {{ type ipv4_addr; flags interval, timeout; }}
  set bans.v6 {{ type ipv6_addr; flags interval, timeout; }}
  set host.seen_v4 {{ type ipv4_addr . inet_proto . inet_service; flags dynamic, timeout; timeout 1d; size 16384; counter; }}
  set host.first_v4 {{ type ipv4_addr . inet_proto . inet_service; flags dynamic, timeout; timeout 1d; size 16384; }}
  chain host.refuse_v4 {{
    update @host.seen_v4 {{ ip saddr . meta l4proto . th dport }}
    add @host.first_v4 {{ ip saddr . meta l4proto . th dport }}
    meta l4proto tcp reject with tcp reset
    reject
  }}
  chain fence {{
    type filter hook prerouting priority -150; policy accept;
    iif "lo" accept
    tcp flags rst accept
    ip saddr @bans.v4 reject with tcp reset
    ip6 saddr @bans.v6 reject with tcp reset
    ct direction reply accept
    meta l4proto != {{ tcp, udp }} accept
    th dport {{ {PUBLIC_PORT} }} accept
    fib daddr type != local accept
    meta nfproto ipv4 ip saddr != @host_v4 jump host.refuse_v4
  }}
}}
"""


def with_fast_path(ruleset: str) -> str:
    """`ruleset` with `ct state established accept` right after its `ct direction reply accept`:
    the allowlist is then looked up once per connection (its first packet) rather than on every
    packet; bans, named guards' ports and loopback still come first. The benchmark's proposal,
    not what proxyd loads (a peer dropped from the allowlist would keep its open connections
    unless a reload also cut them, e.g. conntrack entries deleted and sockets destroyed)."""
    lines = ruleset.splitlines()
    at = next((i for i, line in enumerate(lines) if "ct direction reply accept" in line), None)
    if at is None:
        raise ValueError("no `ct direction reply accept` rule to put the fast path after")
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, f'{indent}ct state established accept comment "fast path (benchmark)"')
    return "\n".join(lines) + "\n"


def set_change_script(old: list[IPv4Network], new: list[IPv4Network], flush: bool) -> tuple[str, int]:
    """The nft script that turns the reference ruleset's allowlist `old` into `new` in one
    transaction, and how many elements it deletes and adds. Only the differing elements, as a
    netlink diff does; or, with `flush`, flush the set and add the whole new list (nft itself
    checks added intervals against the elements still in the set, deleted ones included, so
    it refuses a diff whose new blocks overlap old ones, as a full change's do)."""
    a, b = set(collapsed(peer_list(old))), set(collapsed(peer_list(new)))
    if flush:
        return (f"flush set inet {TABLE} host_v4\n"
                f"add element inet {TABLE} host_v4 {{ {elements(sorted(b))} }}\n"), len(a) + len(b)
    gone, added = sorted(a - b), sorted(b - a)
    lines = []
    if gone:
        lines.append(f"delete element inet {TABLE} host_v4 {{ {elements(gone)} }}")
    if added:
        lines.append(f"add element inet {TABLE} host_v4 {{ {elements(added)} }}")
    return "\n".join(lines) + "\n", len(gone) + len(added)


# --------------------------------------------------------------------------------------------
# proxyd's policy


def host_policy(blocks: list[IPv4Network], control_socket: str) -> str:
    """The host guard of the brief: peer group `workers` = the peer plus `blocks` (as drawn,
    overlaps included: merging is the daemon's job), everything but port 22 fenced."""
    entries = [f'"{b.network_address if b.prefixlen == 32 else b}"' for b in peer_list(blocks)]
    rows = ",\n  ".join(", ".join(entries[i:i + 8]) for i in range(0, len(entries), 8))
    return f"""# Written by Benchmarks/host/bench_host.py for one run; the host namespace is the benchmark's own.
[firewall]
remove_on_exit = true  # the next configuration starts from no table

[daemon]
control_socket = "{control_socket}"

[peers]
workers = [
  {rows},
]

[[guard]]
name = "host"
kind = "host"
public = [{PUBLIC_PORT}]
allow = ["@workers"]
"""
