#!/usr/bin/env bash
# Ringfence demo (what `make demo` runs). As root, after `swift build`:
#
#   bash scripts/demo.sh [BIN_DIR]        # BIN_DIR defaults to .build/debug in the repository
#
# Builds a host and two peers in network namespaces of its own (rfdemo-host, rfdemo-ok,
# rfdemo-bad), starts proxyd in the host with a policy that allows rfdemo-ok on port 29500, and
# shows: the allowed peer gets through, the other is refused, the nftables table proxyd made, and
# after a reload that removes the allowed peer, its live connection is cut and it is refused too.
# Everything is removed on exit, also on failure or Ctrl-C. Exits non-zero if anything did not
# behave as shown.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${1:-$REPO/.build/debug}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3 || true)"

HOST=rfdemo-host
OK=rfdemo-ok
BAD=rfdemo-bad
PORT=29500
HOST_V4=10.77.0.1 OK_V4=10.77.0.2 BAD_V4=10.77.0.3
HOST_V6=fd77::1 OK_V6=fd77::2 BAD_V6=fd77::3

if [ -t 1 ]; then
    B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
    B="" G="" R="" D="" N=""
fi

step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
info() { printf '    %s\n' "$*"; }
indent() { sed 's/^/    /'; }
die() { printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

FAILURES=0
SUMMARY_PRINTED=""
# expect WHAT EXPECTED ACTUAL: prints one result line and counts mismatches.
expect() {
    if [ "$2" = "$3" ]; then
        printf '    %s[ok]%s   %-52s %s\n' "$G" "$N" "$1" "$3"
    else
        printf '    %s[FAIL]%s %-52s %s (expected %s)\n' "$R" "$N" "$1" "$3" "$2"
        FAILURES=$((FAILURES + 1))
    fi
}

# ---------------------------------------------------------------------------------------------
# Preconditions

[ "$(id -u)" -eq 0 ] || die "run as root (it creates network namespaces and loads nftables rules)"
[ -x "$BIN_DIR/proxyd" ] || die "$BIN_DIR/proxyd not found: run \`swift build\` first, or pass the bin dir"
[ -x "$BIN_DIR/proxyctl" ] || die "$BIN_DIR/proxyctl not found: run \`swift build\` first"
[ -n "$PY" ] || die "python3 not found"
command -v ip >/dev/null || die "ip (iproute2) not found"
command -v nft >/dev/null || die "nft (nftables) not found"

# The namespace names are fixed: one demo at a time (the lock is on this script, so no file is
# left behind; background children do not inherit it).
exec 9<"${BASH_SOURCE[0]}"
flock -w 3 9 || die "another demo is running (scripts/demo.sh is locked)"

# ---------------------------------------------------------------------------------------------
# Cleanup: always, on success, failure or Ctrl-C

WORK=""
PROXYD_PID=""
SERVER_PID=""
HOLDER_PID=""

netns_exists() { [ -e "/run/netns/$1" ]; }

remove_netns() {
    local ns=$1 pid
    netns_exists "$ns" || return 0
    # Whatever still runs in the demo's namespaces was started by the demo: end it by pid.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 30); do
        [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
        sleep 0.1
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
}

stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_pid "$HOLDER_PID"
    stop_pid "$PROXYD_PID"
    stop_pid "$SERVER_PID"
    for ns in "$HOST" "$OK" "$BAD"; do remove_netns "$ns"; done
    [ -n "$WORK" ] && rm -rf "$WORK"
    if [ "$rc" -ne 0 ] && [ -z "$SUMMARY_PRINTED" ]; then
        printf '\n%sDemo FAILED (exit status %d): see the messages above.%s\n' "$R$B" "$rc" "$N" >&2
    fi
    local left
    left="$(ip netns list 2>/dev/null | grep -E '^rfdemo-' || true)"
    if [ -n "$left" ]; then
        printf '%sdemo: could not remove namespaces:%s\n%s\n' "$R" "$N" "$left" >&2
        [ "$rc" -eq 0 ] && rc=1
    else
        printf '\n%s(cleaned up: namespaces %s, %s, %s removed; processes stopped)%s\n' "$D" "$HOST" "$OK" "$BAD" "$N"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

# A previous demo that was killed hard may have left its namespaces and work directory: they
# are the demo's own, and the lock above says no other demo is using them.
for ns in "$HOST" "$OK" "$BAD"; do remove_netns "$ns"; done
rm -rf /tmp/rfdemo.??????

WORK="$(mktemp -d /tmp/rfdemo.XXXXXX)"
POLICY="$WORK/policy.toml"
LOG="$WORK/proxyd.log"

# ---------------------------------------------------------------------------------------------
# Helpers that run inside the namespaces

# Echo server: dual-stack on [::]:PORT, one thread per connection.
SERVER_PY='
import socket, sys, threading
port = int(sys.argv[1])
ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
ls.bind(("::", port))
ls.listen(64)
def serve(c):
    with c:
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                c.sendall(data)
            except OSError:
                return
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'

# One connection attempt: prints connected | refused | timeout (| error ...).
CLIENT_PY='
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.settimeout(2.0)
try:
    s.connect((addr, port))
    s.sendall(b"hello")
    print("connected" if s.recv(5) == b"hello" else "connected-but-no-echo")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error:" + (e.strerror or str(e)).replace(" ", "_"))
'

# Holds one connection open: echoes once, says "established", waits for the file $3 to
# appear, then sends again and prints what happened (still-echoing | reset | timeout | closed).
HOLDER_PY='
import os, socket, sys, time
addr, port, trigger = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.settimeout(2.0)
s.connect((addr, port))
s.sendall(b"first")
assert s.recv(5) == b"first"
print("established", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(trigger):
    if time.monotonic() > deadline:
        print("no-trigger", flush=True)
        sys.exit(1)
    time.sleep(0.05)
try:
    s.sendall(b"again")
    data = s.recv(5)
    print("still-echoing" if data == b"again" else "closed", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
except socket.timeout:
    print("timeout", flush=True)
except OSError as e:
    print("error:" + (e.strerror or str(e)).replace(" ", "_"), flush=True)
'

try_connect() { # NS ADDR
    ip netns exec "$1" "$PY" -c "$CLIENT_PY" "$2" "$PORT" 2>&1 || true
}

wait_for_log() { # REGEX [SINCE_BYTES]: waits up to 10 s for REGEX in proxyd's log
    local regex=$1 since=${2:-0}
    for _ in $(seq 100); do
        tail -c +"$((since + 1))" "$LOG" | grep -Eq "$regex" && return 0
        if ! kill -0 "$PROXYD_PID" 2>/dev/null; then
            echo "proxyd exited; its log:" >&2; indent <"$LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "proxyd did not log /$regex/ within 10 s; its log:" >&2; indent <"$LOG" >&2
    return 1
}

write_policy() { # ALLOWED_ADDRESSES... (the [peers] ok group)
    local list="" a
    for a in "$@"; do list="$list${list:+, }\"$a\""; done
    cat >"$POLICY.tmp" <<EOF
# Ringfence demo policy
[firewall]
table = "ringfence"
deny = "reject"

[peers]
ok = [$list]

[[guard]]
name = "store"
kind = "firewall"
port = $PORT
allow = ["@ok"]
EOF
    mv "$POLICY.tmp" "$POLICY"
}

# ---------------------------------------------------------------------------------------------
step "Topology: three network namespaces on one bridge"

for ns in "$HOST" "$OK" "$BAD"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$HOST" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$HOST" addr add "$HOST_V4/24" dev br0
ip -n "$HOST" addr add "$HOST_V6/64" dev br0 nodad
ip -n "$HOST" link set br0 up
for spec in "vh_ok $OK $OK_V4 $OK_V6" "vh_bad $BAD $BAD_V4 $BAD_V6"; do
    read -r veth ns v4 v6 <<<"$spec"
    ip -n "$HOST" link add "$veth" type veth peer name eth0 netns "$ns"
    ip -n "$HOST" link set "$veth" master br0 up
    ip -n "$ns" addr add "$v4/24" dev eth0
    ip -n "$ns" addr add "$v6/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
done
info "$HOST   br0   $HOST_V4  $HOST_V6   (runs proxyd and an echo server on port $PORT)"
info "$OK     eth0  $OK_V4  $OK_V6   (the allowed peer)"
info "$BAD    eth0  $BAD_V4  $BAD_V6   (any other machine)"

ip netns exec "$HOST" "$PY" -c "$SERVER_PY" "$PORT" 9<&- &
SERVER_PID=$!
for _ in $(seq 50); do
    ip netns exec "$HOST" ss -Hltn "sport = :$PORT" | grep -q LISTEN && break
    sleep 0.1
done
ip netns exec "$HOST" ss -Hltn "sport = :$PORT" | grep -q LISTEN || die "the echo server did not start"

step "Without Ringfence, port $PORT is open to everyone"
expect "$OK -> $HOST_V4:$PORT" connected "$(try_connect "$OK" "$HOST_V4")"
expect "$BAD -> $HOST_V4:$PORT" connected "$(try_connect "$BAD" "$HOST_V4")"

step "The policy: only $OK may reach port $PORT"
write_policy "$OK_V4" "$OK_V6"
indent <"$POLICY"
"$BIN_DIR/proxyctl" check "$POLICY" 2>&1 | indent

step "Start proxyd in $HOST"
ip netns exec "$HOST" "$BIN_DIR/proxyd" --policy "$POLICY" 2>"$LOG" 9<&- &
PROXYD_PID=$!
wait_for_log 'msg=running' || die "proxyd did not start"
printf '%s' "$D"; indent <"$LOG"; printf '%s' "$N"

step "With the fence: the allowed peer gets through, the other is refused"
expect "$OK -> $HOST_V4:$PORT (IPv4)" connected "$(try_connect "$OK" "$HOST_V4")"
expect "$OK -> [$HOST_V6]:$PORT (IPv6)" connected "$(try_connect "$OK" "$HOST_V6")"
expect "$BAD -> $HOST_V4:$PORT (IPv4)" refused "$(try_connect "$BAD" "$HOST_V4")"
expect "$BAD -> [$HOST_V6]:$PORT (IPv6)" refused "$(try_connect "$BAD" "$HOST_V6")"

step "The rules proxyd loaded: nft list table inet ringfence"
info "${D}(nft 1.0.6 lists the IPv4/IPv6 rules without their 'meta nfproto': a display quirk)${N}"
if ! ip netns exec "$HOST" nft list table inet ringfence 2>&1 | indent; then
    expect "table inet ringfence" present absent
fi

step "$OK opens a connection and keeps it open"
TRIGGER="$WORK/send-again"
HOLDER_OUT="$WORK/holder.out"
ip netns exec "$OK" "$PY" -c "$HOLDER_PY" "$HOST_V4" "$PORT" "$TRIGGER" >"$HOLDER_OUT" 2>&1 9<&- &
HOLDER_PID=$!
for _ in $(seq 50); do
    grep -q . "$HOLDER_OUT" && break
    sleep 0.1
done
expect "$OK's connection (echoed once)" established "$(head -n1 "$HOLDER_OUT")"

step "Reload: rewrite the policy without $OK, then SIGHUP"
write_policy "10.77.0.4" "fd77::4"
info "$(grep '^ok' "$POLICY" | sed 's/^/[peers] /')"
SINCE=$(stat -c %s "$LOG")
kill -HUP "$PROXYD_PID"
wait_for_log 'msg="(policy reloaded|reload refused)' "$SINCE" || die "no reload outcome in the log"
printf '%s' "$D"; tail -c +"$((SINCE + 1))" "$LOG" | indent; printf '%s' "$N"
expect "proxyd says" "policy reloaded" \
    "$(tail -c +"$((SINCE + 1))" "$LOG" | grep -Eo 'policy reloaded|reload refused' | head -n1)"

step "After the reload, $OK is out too, even its open connection"
touch "$TRIGGER"
wait "$HOLDER_PID" 2>/dev/null || true
HOLDER_PID=""
expect "$OK's open connection, sending again" reset "$(sed -n 2p "$HOLDER_OUT")"
expect "$OK -> $HOST_V4:$PORT (IPv4)" refused "$(try_connect "$OK" "$HOST_V4")"
expect "$OK -> [$HOST_V6]:$PORT (IPv6)" refused "$(try_connect "$OK" "$HOST_V6")"
expect "$BAD -> $HOST_V4:$PORT (IPv4)" refused "$(try_connect "$BAD" "$HOST_V4")"
expect "$HOST itself -> $HOST_V4:$PORT (loopback)" connected "$(try_connect "$HOST" "$HOST_V4")"

step "Stop proxyd (SIGTERM): the fence stays in place (remove_on_exit = false)"
kill -TERM "$PROXYD_PID"
rc=0
wait "$PROXYD_PID" || rc=$?
PROXYD_PID=""
printf '%s' "$D"; tail -n 2 "$LOG" | indent; printf '%s' "$N"
expect "proxyd exit status" 0 "$rc"
expect "table inet ringfence after exit" present \
    "$(ip netns exec "$HOST" nft list table inet ringfence >/dev/null 2>&1 && echo present || echo absent)"
expect "$BAD -> $HOST_V4:$PORT with proxyd stopped" refused "$(try_connect "$BAD" "$HOST_V4")"

echo
if [ "$FAILURES" -eq 0 ]; then
    printf '%sDemo OK: every check behaved as expected.%s\n' "$G$B" "$N"
else
    printf '%sDemo FAILED: %d check(s) did not behave as expected.%s\n' "$R$B" "$FAILURES" "$N"
    SUMMARY_PRINTED=1
    exit 1
fi
