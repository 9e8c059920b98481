#!/usr/bin/env bash
# Ringfence demo (what `make demo` runs): the whole story of a multi-node vLLM host, in network
# namespaces, in about a minute. As root, after `swift build` and `make venv`:
#
#   bash scripts/demo.sh [BIN_DIR]        # BIN_DIR defaults to .build/debug in the repository
#
# The story:
#  1. Five namespaces on one bridge: the engine's host (proxyd, the engine with its TCPStore and
#     its broadcast XPUB), reader A and reader B (the other nodes), a denied host, and an idle
#     host (allowed, but it subscribes and never reads). proxyd's policy: a zmq-xpub guard with
#     discover = true (vLLM 0.33 binds its XPUB on port 0: no policy can name the port), a tcp
#     guard with the TCPStore gate in front of the real torch TCPStore on vLLM's master port, and
#     a host guard fencing every other port; short limits so that it all fits in a minute.
#  2. The engine binds its XPUB on port 0, as vLLM 0.33's MessageQueue does; proxyd notices the
#     listener, probes it, and brokers it: `proxyctl listeners` shows it (docs/discovery.md).
#  3. The writer waits for one subscription per remote reader (vLLM's wait_until_ready counts any
#     subscription message) and then publishes READY: "taking a reader slot" is getting one
#     subscription counted there, in a real reader's place (docs/zmtp.md §6). A squatter from the
#     denied host cannot: the kernel refuses it, and the broker forwards subscriptions only for
#     subscribers it admitted. A second subscriber from reader A's host, once A holds its slot, is
#     refused by the broker (max_subscribers_per_peer = 1); one that came before A would have
#     taken A's place: against an allowed host the allowlist is the boundary. Readers A and B
#     then get READY and every message.
#  4. The idle host subscribes and never reads: `proxyctl status` shows the engine held back
#     for it, then, after max_stall, the idle subscriber evicted and banned, while A and B got
#     every message.
#  5. A real torch TCPStore client works through the relay's TCPStore gate; a scanner and a client
#     that sends a key declaring 1 GiB are cut off and logged; the good client carries on
#     (docs/tcpstore.md).
#  6. `proxyctl audit` (what the kernel refused, and from whom) and `proxyctl listeners`.
#  7. `proxyctl reload` with a policy without reader B: B's connection is cut, B is refused,
#     A carries on.
# Each step prints an [ok] or [FAIL] line per check; the demo exits non-zero if any check failed.
# Everything is removed on exit, also on failure or Ctrl-C. The peers (the engine, the readers, the
# TCPStore client) are the integration tests' own, in Tests/integration/peers (they are what the
# tests prove behaves as vLLM 0.33 and torch do); what only the demo needs is in scripts/demo/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${1:-$REPO/.build/debug}"
PY="$REPO/.venv/bin/python"      # with torch (make venv) and pyzmq
PEERS="$REPO/Tests/integration/peers"
DEMO="$REPO/scripts/demo"
# Every process the demo starts carries this in its environment (the test looks for it).
export RINGFENCE_DEMO_RUN="${RINGFENCE_DEMO_RUN:-$$}"

HOST=rfdemo-host A=rfdemo-a B=rfdemo-b BAD=rfdemo-bad IDLE=rfdemo-idle
NAMESPACES=("$HOST" "$A" "$B" "$BAD" "$IDLE")
HOST_V4=10.77.0.1 A_V4=10.77.0.2 B_V4=10.77.0.3 BAD_V4=10.77.0.4 IDLE_V4=10.77.0.5
STORE_PORT=29501   # vLLM's --master-port default: the rendezvous TCPStore
TABLE=rfdemo
MAX_STALL=3   # seconds: long enough to read proxyctl status while the engine is held, on a busy machine
STEP_STARTED=$SECONDS

if [ -t 1 ]; then
    B_=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
    B_="" G="" R="" D="" N=""
fi

step() { printf '\n%s==> %s%s\n' "$B_" "$*" "$N"; }
say() { printf '    %s\n' "$*" | fold -s -w 100 | sed -e 's/ $//' -e '2,$s/^/    /'; }
info() { printf '    %s\n' "$*"; }
indent() { sed 's/^/    /'; }
dim() { printf '%s' "$D"; indent; printf '%s' "$N"; }
die() { printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

FAILURES=0
CHECKS=0
SUMMARY_PRINTED=""
RESULTS=()
# expect WHAT EXPECTED ACTUAL: prints one result line and counts mismatches.
expect() {
    CHECKS=$((CHECKS + 1))
    if [ "$2" = "$3" ]; then
        printf '    %s[ok]%s   %-60s %s\n' "$G" "$N" "$1" "$3"
        RESULTS+=("ok    $1")
    else
        printf '    %s[FAIL]%s %-60s %s (expected %s)\n' "$R" "$N" "$1" "$3" "$2"
        RESULTS+=("FAIL  $1")
        FAILURES=$((FAILURES + 1))
    fi
}

# ---------------------------------------------------------------------------------------------
# Preconditions

[ "$(id -u)" -eq 0 ] || die "run as root (it creates network namespaces and loads nftables rules)"
[ -x "$BIN_DIR/proxyd" ] || die "$BIN_DIR/proxyd not found: run \`swift build\` first, or pass the bin dir"
[ -x "$BIN_DIR/proxyctl" ] || die "$BIN_DIR/proxyctl not found: run \`swift build\` first"
[ -x "$PY" ] || die "$PY not found: run \`make venv\` (torch for the TCPStore, pyzmq for the readers)"
"$PY" -c "import torch.distributed, zmq" 2>/dev/null || die "$PY cannot import torch and zmq: run \`make venv\`"
command -v ip >/dev/null || die "ip (iproute2) not found"
command -v nft >/dev/null || die "nft (nftables) not found"

# The namespace names are fixed: one demo at a time on this machine, from whichever checkout
# (so the lock is a file of the machine's, not this script; background children do not inherit it).
mkdir -p /run/lock
exec 9>>/run/lock/ringfence-demo.lock
flock -w 3 9 || die "another demo is running (/run/lock/ringfence-demo.lock is held)"

# ---------------------------------------------------------------------------------------------
# Cleanup: always, on success, failure or Ctrl-C

WORK=""
PROXYD_PID=""
declare -A PID_OF=()   # peer name -> pid
declare -A IN_FD=()    # peer name -> the fd of its standard input (a FIFO) in this shell

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
    # A second Ctrl-C must not leave namespaces behind: the cleanup is bounded (seconds), so it
    # runs to the end.
    trap - EXIT
    trap '' INT TERM
    set +e
    local name
    for name in "${!PID_OF[@]}"; do stop_pid "${PID_OF[$name]}"; done
    stop_pid "$PROXYD_PID"
    for ns in "${NAMESPACES[@]}"; do remove_netns "$ns"; done
    if [ "$rc" -ne 0 ] && [ -n "$WORK" ] && [ -s "$WORK/proxyd.log" ]; then
        printf '\n%sThe end of proxyd'"'"'s log:%s\n' "$D" "$N" >&2
        tail -n 25 "$WORK/proxyd.log" | cut -c1-200 | indent >&2
    fi
    [ -n "${RFDEMO_KEEP:-}" ] && [ -n "$WORK" ] && cp "$WORK/proxyd.log" "$RFDEMO_KEEP"
    [ -n "$WORK" ] && rm -rf "$WORK"
    if [ "$rc" -ne 0 ] && [ -z "$SUMMARY_PRINTED" ]; then
        printf '\n%sDemo FAILED (exit status %d): see the messages above.%s\n' "$R$B_" "$rc" "$N" >&2
    fi
    local left
    left="$(ip netns list 2>/dev/null | grep -E '^rfdemo-' || true)"
    if [ -n "$left" ]; then
        printf '%sdemo: could not remove namespaces:%s\n%s\n' "$R" "$N" "$left" >&2
        [ "$rc" -eq 0 ] && rc=1
    else
        printf '\n%s(cleaned up: namespaces %s removed, with the nftables table in %s; processes stopped)%s\n' \
            "$D" "${NAMESPACES[*]}" "$HOST" "$N"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

# A previous demo that was killed hard may have left its namespaces and work directory: they
# are the demo's own, and the lock above says no other demo is using them.
for ns in "${NAMESPACES[@]}"; do remove_netns "$ns"; done
rm -rf /tmp/rfdemo.??????

WORK="$(mktemp -d /tmp/rfdemo.XXXXXX)"
POLICY="$WORK/policy.toml"
LOG="$WORK/proxyd.log"
SOCK="$WORK/control.sock"

# ---------------------------------------------------------------------------------------------
# Helpers: peers (Python processes in the namespaces, driven by JSON lines), proxyd's log

# start_peer NAME NS SCRIPT ARGS...: runs SCRIPT in NS with its standard input a FIFO that this
# shell holds open (requests go there) and its standard output in $WORK/NAME.out.
start_peer() {
    local name=$1 ns=$2 script=$3 fd
    shift 3
    mkfifo "$WORK/$name.in"
    PYTHONPATH="$PEERS" GLOO_SOCKET_IFNAME=eth0 ip netns exec "$ns" "$PY" "$script" "$@" \
        <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.err" 9<&- &
    PID_OF[$name]=$!
    exec {fd}>"$WORK/$name.in"
    IN_FD[$name]=$fd
}

stop_peer() { # NAME
    stop_pid "${PID_OF[$1]:-}"
    unset "PID_OF[$1]"
}

peer_failed() { # NAME WHAT
    printf '%sdemo: %s: %s%s\n' "$R" "$1" "$2" "$N" >&2
    indent <"$WORK/$1.err" | tail -n 20 >&2
}

# wait_output NAME REGEX TIMEOUT: waits for a line matching REGEX in NAME's output.
wait_output() {
    local name=$1 regex=$2 tries=$(($3 * 10))
    for _ in $(seq "$tries"); do
        grep -Eq "$regex" "$WORK/$name.out" && return 0
        if ! kill -0 "${PID_OF[$name]}" 2>/dev/null; then
            peer_failed "$name" "exited before printing /$regex/"
            return 1
        fi
        sleep 0.1
    done
    peer_failed "$name" "did not print /$regex/ within $3 s"
    return 1
}

# request NAME JSON [TIMEOUT]: sends one request line to NAME and prints its one-line answer.
request() {
    local name=$1 json=$2 timeout=${3:-10} out="$WORK/$1.out" n
    n=$(wc -l <"$out")
    # A write to the FIFO of a peer that is gone would kill this shell (SIGPIPE).
    if ! kill -0 "${PID_OF[$name]}" 2>/dev/null; then
        peer_failed "$name" "exited before $json"
        return 1
    fi
    printf '%s\n' "$json" >&"${IN_FD[$name]}"
    for _ in $(seq $((timeout * 10))); do
        if [ "$(wc -l <"$out")" -gt "$n" ]; then
            sed -n "$((n + 1))p" "$out"
            return 0
        fi
        kill -0 "${PID_OF[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    peer_failed "$name" "no answer to $json within $timeout s"
    return 1
}

# jget JSON KEY...: the value at that path (strings bare, anything else as compact JSON).
jget() {
    /usr/bin/python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))' "$@"
}

# count_msgs NAME: the vLLM messages (READY and work items) NAME has printed.
count_msgs() { grep -c '"type": "msg"' "$WORK/$1.out" || true; }
got_ready() { grep -q '"f0": "5245414459"' "$WORK/$1.out" && echo READY || echo nothing; }

log_size() { stat -c %s "$LOG"; }
# wait_for_log REGEX [SINCE_BYTES [TIMEOUT]]: waits for REGEX in proxyd's log.
wait_for_log() {
    local regex=$1 since=${2:-0} timeout=${3:-10}
    for _ in $(seq $((timeout * 10))); do
        tail -c +"$((since + 1))" "$LOG" | grep -Eq "$regex" && return 0
        if ! kill -0 "$PROXYD_PID" 2>/dev/null; then
            echo "proxyd exited; its log:" >&2; indent <"$LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "proxyd did not log /$regex/ within $timeout s" >&2
    return 1
}
log_since() { tail -c +"$(($1 + 1))" "$LOG"; }
show_log() { log_since "$1" | { grep -E "$2" || true; } | sed -E 's/^ts=[^ ]+ //' | cut -c1-160 | dim; }
# show ARGS...: proxyctl ARGS, dimmed (a failure shows, and the checks that follow fail).
show() { "$BIN_DIR/proxyctl" "$@" --control-socket "$SOCK" 2>&1 | dim || true; }

# query COMMAND QUERY [ARG]: one fact from `proxyctl COMMAND --json` (scripts/demo/ctl_query.py).
query() {
    { "$BIN_DIR/proxyctl" "$1" --control-socket "$SOCK" --json 2>/dev/null || true; } |
        /usr/bin/python3 "$DEMO/ctl_query.py" "$2" "${3:-}"
}

# One connection attempt from NS: connected | refused | timeout.
try_connect() { # NS ADDR PORT
    ip netns exec "$1" /usr/bin/python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(2.0)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("timeout")' "$2" "$3" 2>&1 || true
}

write_policy() { # READER_ADDRESSES...: the [peers] readers group
    local list="" a
    for a in "$@"; do list="$list${list:+, }\"$a\""; done
    cat >"$POLICY.tmp" <<EOF
# Ringfence demo policy: the engine's host of a two-node vLLM deployment.
[firewall]
table = "$TABLE"
deny = "reject"

[daemon]
control_socket = "$SOCK"

[peers]
readers = [$list]       # the other nodes of the deployment

# vLLM 0.33's broadcast XPUB binds port 0: every ZMTP XPUB of the engine is brokered.
[[guard]]
name = "tp"
kind = "zmq-xpub"
discover = true
process = "vllm_engine"
allow = ["@readers"]
max_subscribers_per_peer = 1    # one remote rank per node here
hwm_messages = 16               # short, so the idle subscriber reaches its mark at once
max_stall = "${MAX_STALL}s"

# The rendezvous TCPStore (torch), behind the relay's TCPStore gate.
[[guard]]
name = "store"
kind = "tcp"
port = $STORE_PORT
protocol = "tcpstore"
allow = ["@readers"]

# Every other port of the host (gloo, NCCL, the engine's other sockets).
[[guard]]
name = "host"
kind = "host"
public = [22]
allow = ["@readers"]
EOF
    mv "$POLICY.tmp" "$POLICY"
}

# ---------------------------------------------------------------------------------------------
step "1. The hosts: five network namespaces on one bridge, and proxyd with its policy"
say "The engine's host runs vLLM's engine (its TCPStore and its broadcast XPUB) and proxyd. Readers A and B are the other nodes; the denied host is any other machine on the network; the idle host is an allowed node that misbehaves."

for ns in "${NAMESPACES[@]}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$HOST" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$HOST" addr add "$HOST_V4/24" dev br0
ip -n "$HOST" link set br0 up
for spec in "vh_a $A $A_V4" "vh_b $B $B_V4" "vh_bad $BAD $BAD_V4" "vh_idle $IDLE $IDLE_V4"; do
    read -r veth ns v4 <<<"$spec"
    ip -n "$HOST" link add "$veth" type veth peer name eth0 netns "$ns"
    ip -n "$HOST" link set "$veth" master br0 up
    ip -n "$ns" addr add "$v4/24" dev eth0
    ip -n "$ns" link set eth0 up
done
info "$HOST  $HOST_V4   proxyd; the engine: TCPStore on $STORE_PORT, the XPUB on port 0"
info "$A     $A_V4   reader A (allowed)"
info "$B     $B_V4   reader B (allowed)"
info "$BAD   $BAD_V4   a denied host"
info "$IDLE  $IDLE_V4   an allowed host that subscribes and never reads"

write_policy "$A_V4" "$B_V4" "$IDLE_V4"
grep -vE '^\s*$' "$POLICY" | dim
expect "proxyctl check" valid "$("$BIN_DIR/proxyctl" check "$POLICY" >/dev/null 2>&1 && echo valid || echo invalid)"

ip netns exec "$HOST" "$BIN_DIR/proxyd" --policy "$POLICY" --log-level debug 2>"$LOG" 9<&- &
PROXYD_PID=$!
wait_for_log 'msg=running' || die "proxyd did not start"
wait_for_log 'msg="discovery watching listeners"' || die "proxyd's discovery did not start"
show_log 0 'msg=(running|"discovery watching listeners")'

# ---------------------------------------------------------------------------------------------
step "2. The engine binds its broadcast XPUB on port 0, as vLLM 0.33's MessageQueue does"
say "No policy can name a port the kernel picks at bind time. proxyd notices the new listener, holds its port, probes it (ZMTP, socket type XPUB) and puts a broker of its own in front of it before any reader arrives."

start_peer engine "$HOST" "$PEERS/vllm_engine.py" "$HOST_V4" "$STORE_PORT"
wait_output engine '"store_port"' 60 || die "the engine did not start its TCPStore"
# The TCPStore client of step 5 imports torch meanwhile.
start_peer store_client "$A" "$PEERS/tcpstore_client.py" "$HOST_V4" "$STORE_PORT" --loop --tag demo
SINCE=$(log_size)
BIND=$(request engine '{"op": "bind", "key": "xpub0"}' 10) || die "the engine could not bind its XPUB"
XPUB_PORT=$(jget "$BIND" port)
info "the engine's XPUB: tcp://$HOST_V4:$XPUB_PORT (its port published in the TCPStore, as vLLM's handle is)"
wait_for_log 'msg="XPUB discovered and brokered"' "$SINCE" || true
show_log "$SINCE" 'msg="XPUB discovered and brokered"'
show listeners
expect "proxyctl listeners: port $XPUB_PORT" "zmtp XPUB: brokered by tp/$HOST_V4:$XPUB_PORT" \
    "$(query listeners listener "$XPUB_PORT")"

# ---------------------------------------------------------------------------------------------
step "3. The handshake: the writer waits for two readers; squatters cannot take a slot"
say "vLLM's writer calls recv() once per expected remote reader and counts any subscription message as a reader, then publishes READY. A squatter counted in a real reader's place would leave that reader waiting for a READY that never comes, and would receive every work item the engine broadcasts."

say "First a squatter on the denied host (a libzmq SUB that knows the port and retries every 100 ms)."

start_peer squatter_bad "$BAD" "$PEERS/broker_reader.py" "$HOST_V4" "$XPUB_PORT"
expect "denied host -> $HOST_V4:$XPUB_PORT" refused "$(try_connect "$BAD" "$HOST_V4" "$XPUB_PORT")"
DRAIN=$(request engine '{"op": "drain", "key": "xpub0", "wait": 1.0}' 5) || die "the engine did not answer"
expect "subscriptions counted while the denied squatter retries" "[]" "$(jget "$DRAIN" subs)"

say "Reader A learns the port from the TCPStore (through the relay) and subscribes."
start_peer reader_a "$A" "$PEERS/vllm_rank.py" "$HOST_V4" "$STORE_PORT" "$HOST_V4" xpub0
SUBS=$(request engine '{"op": "subs", "key": "xpub0", "n": 1, "within": 30}' 35) || die "the engine did not answer"
expect "the writer counts reader A" '["01"]' "$(jget "$SUBS" subs)"

say "A second subscriber from reader A's host tries for the remaining slot. The allowlist admits the host, so what stops it is max_subscribers_per_peer = 1: A holds its host's one slot. (Had it come before A, it would have taken that slot: against an allowed host, the allowlist is the boundary.)"
SINCE=$(log_size)
start_peer squatter_a "$A" "$PEERS/broker_reader.py" "$HOST_V4" "$XPUB_PORT"
wait_for_log "msg=\"connection denied\".*peer=$A_V4 reason=peer-limit" "$SINCE" 5 || true
DRAIN=$(request engine '{"op": "drain", "key": "xpub0", "wait": 0.5}' 5) || die "the engine did not answer"
stop_peer squatter_a
show_log "$SINCE" "msg=\"connection denied\".*peer=$A_V4"
expect "subscriptions counted from the squatter on A's host" "[]" "$(jget "$DRAIN" subs)"
expect "proxyd: squatter on A's host denied" peer-limit \
    "$(log_since "$SINCE" | grep -Eo "msg=\"connection denied\".*peer=$A_V4 reason=peer-limit" | grep -Eo 'peer-limit' | head -n1)"

say "Reader B learns the port and subscribes: the writer has its two readers and publishes READY, then work items."
start_peer reader_b "$B" "$PEERS/vllm_rank.py" "$HOST_V4" "$STORE_PORT" "$HOST_V4" xpub0
SUBS=$(request engine '{"op": "subs", "key": "xpub0", "n": 1, "within": 30}' 35) || die "the engine did not answer"
expect "the writer counts reader B: two of two" '["01"]' "$(jget "$SUBS" subs)"
request engine '{"op": "ready", "key": "xpub0"}' 5 >/dev/null || die "the engine did not send READY"
wait_output reader_a '5245414459' 10 || true
wait_output reader_b '5245414459' 10 || true
expect "reader A receives" READY "$(got_ready reader_a)"
expect "reader B receives" READY "$(got_ready reader_b)"
SENT=$(request engine '{"op": "stream", "key": "xpub0", "count": 10, "sizes": [1048576]}' 30) ||
    die "the engine could not send"
expect "reader A: work items (1 MiB each), in order, intact" "10 of 10" \
    "$("$PY" "$DEMO/check_stream.py" "$SENT" "$WORK/reader_a.out" --wait 20 || true)"
expect "reader B: work items (1 MiB each), in order, intact" "10 of 10" \
    "$("$PY" "$DEMO/check_stream.py" "$SENT" "$WORK/reader_b.out" --wait 20 || true)"
expect "the denied squatter received" "0 messages" "$(count_msgs squatter_bad) messages"

# ---------------------------------------------------------------------------------------------
step "4. The idle host subscribes and never reads"
say "CVE-2025-30202: subscribers that never read slow down or block the publisher. The broker is lossless (on_overflow = \"block\": a vLLM reader cannot skip a message), so it holds the engine while a queue is full, but for at most max_stall = ${MAX_STALL}s; then it evicts the idle subscriber and bans its host from the XPUB."

start_peer idle "$IDLE" "$DEMO/idle_subscriber.py" "$HOST_V4" "$XPUB_PORT"
SUBS=$(request engine '{"op": "subs", "key": "xpub0", "n": 1, "within": 10}' 15) || die "the engine did not answer"
expect "the idle subscriber's subscription reaches the writer" '["01"]' "$(jget "$SUBS" subs)"
SINCE=$(log_size)
SENT=$(request engine '{"op": "stream", "key": "xpub0", "count": 40, "sizes": [1048576]}' 30) ||
    die "the engine could not send"
# Before: the idle subscriber's queue at its mark, the engine held.
HELD=no
for _ in $(seq 20); do
    HELD=$(query status held)
    [ "$HELD" = yes ] && break
    sleep 0.1
done
QUEUE=$(query peers queue "$IDLE_V4")
info "proxyctl status, before max_stall (the broker's row: connected ... (held ...)):"
show status
info "proxyctl peers:"
show peers
expect "proxyctl status: the engine held back" yes "$HELD"
expect "proxyctl peers: the idle subscriber's queue at its mark" 16/16 "$QUEUE"
wait_for_log "msg=\"subscriber evicted: no progress\".*peer=$IDLE_V4" "$SINCE" 10 || true
show_log "$SINCE" 'msg="(subscriber evicted|peer banned by guard|engine held back)'
info "proxyctl status, after:"
show status
expect "proxyctl status: the broker" "2 subscribers, 1 evicted" "$(query status broker)"
expect "the idle subscriber evicted" max_stall \
    "$(log_since "$SINCE" | grep -E "msg=\"subscriber evicted: no progress\".*peer=$IDLE_V4" | grep -Eo 'rule=max_stall' | cut -d= -f2 | head -n1)"
expect "reader A: all 40 work items, in order, intact" "40 of 40" \
    "$("$PY" "$DEMO/check_stream.py" "$SENT" "$WORK/reader_a.out" --wait 20 || true)"
expect "reader B: all 40 work items, in order, intact" "40 of 40" \
    "$("$PY" "$DEMO/check_stream.py" "$SENT" "$WORK/reader_b.out" --wait 20 || true)"
info "proxyctl bans:"
show bans
expect "idle host -> $HOST_V4:$XPUB_PORT (banned: stalled-engine)" refused "$(try_connect "$IDLE" "$HOST_V4" "$XPUB_PORT")"
stop_peer idle

# ---------------------------------------------------------------------------------------------
step "5. The TCPStore: a real torch client through the gate; hostile clients cut off"
say "The rendezvous store answers anyone who reaches it, and a key or value length is whatever the client claims. The relay's gate checks every command before it reaches the store: VALIDATE first, known commands, keys and values within their caps."

wait_output store_client '"connected"' 60 || die "the TCPStore client did not connect"
ROUND=$(request store_client round 15) || die "the TCPStore client did not answer"
expect "torch client: set/get/add/check/wait/multi_get/compare_set" true "$(jget "$ROUND" ok)"
SINCE=$(log_size)
expect "scanner (HTTP request) -> the store" closed \
    "$(ip netns exec "$IDLE" "$PY" "$DEMO/hostile_store_client.py" "$HOST_V4" "$STORE_PORT" scanner)"
expect "VALIDATE, then SET of a key declaring 1 GiB -> the store" closed \
    "$(ip netns exec "$IDLE" "$PY" "$DEMO/hostile_store_client.py" "$HOST_V4" "$STORE_PORT" huge-key)"
wait_for_log 'msg="connection closed: protocol violation".*rule=key-size' "$SINCE" 5 || true
show_log "$SINCE" 'msg="connection closed: protocol violation"'
expect "proxyd's rules" "validate-first key-size" \
    "$(log_since "$SINCE" | grep -E 'msg="connection closed: protocol violation"' | grep -Eo 'rule=[a-z-]+' | cut -d= -f2 | paste -sd' ')"
ROUND=$(request store_client round 15) || die "the TCPStore client did not answer"
expect "the torch client carries on" true "$(jget "$ROUND" ok)"

# ---------------------------------------------------------------------------------------------
step "6. What the fence refused, and what covers each listener"
say "The denied host also tries the TCPStore. proxyctl audit lists what the kernel refused, by guard and source: the squatter's retries on the XPUB and this attempt. proxyctl listeners is the host's attack surface: every listener, what it is and what covers it."

expect "denied host -> $HOST_V4:$STORE_PORT" refused "$(try_connect "$BAD" "$HOST_V4" "$STORE_PORT")"
stop_peer squatter_bad
info "proxyctl audit:"
show audit
expect "audit: guards that refused $BAD_V4" "store tp" "$(query audit audit "$BAD_V4")"
info "proxyctl listeners:"
show listeners
expect "listeners: the TCPStore on $STORE_PORT" "unprobed: relayed by store" "$(query listeners listener "$STORE_PORT")"

# ---------------------------------------------------------------------------------------------
step "7. proxyctl reload: reader B's node leaves the deployment"
say "The policy is rewritten without reader B and reloaded. Its live connection to the broker is cut at once (a fence that only stops new connections would leave a removed node reading every work item), and it is refused from then on; reader A carries on."

write_policy "$A_V4" "$IDLE_V4"
info "$(grep '^readers' "$POLICY" | sed 's/^/[peers] /')"
SINCE=$(log_size)
B_BEFORE=$(count_msgs reader_b)
"$BIN_DIR/proxyctl" reload --control-socket "$SOCK" --json >"$WORK/reload.json" 2>&1 || true
wait_for_log 'msg="(policy reloaded|reload refused)' "$SINCE" || true
expect "proxyctl reload: the connections it cut" "store tp" \
    "$(/usr/bin/python3 "$DEMO/ctl_query.py" cut "$B_V4" <"$WORK/reload.json")"
expect "proxyd says" "policy reloaded" "$(log_since "$SINCE" | grep -Eo 'policy reloaded|reload refused' | head -n1)"
wait_for_log "msg=\"subscriber closed\".*peer=$B_V4" "$SINCE" 5 || true
show_log "$SINCE" "peer=$B_V4"
expect "proxyd: reader B's subscriber closed" "no longer allowed by the policy" \
    "$(log_since "$SINCE" | grep -E "msg=\"subscriber closed\".*peer=$B_V4" | grep -Eo 'reason="[^"]*"' | cut -d'"' -f2 | head -n1)"
expect "proxyctl peers: the broker's subscribers" "$A_V4" "$(query peers subscribers)"
expect "reader B -> $HOST_V4:$XPUB_PORT" refused "$(try_connect "$B" "$HOST_V4" "$XPUB_PORT")"
SENT=$(request engine '{"op": "stream", "key": "xpub0", "count": 5, "sizes": [1048576]}' 30) ||
    die "the engine could not send"
expect "reader A: the next 5 work items" "5 of 5" \
    "$("$PY" "$DEMO/check_stream.py" "$SENT" "$WORK/reader_a.out" --wait 20 || true)"
sleep 0.3
expect "reader B: work items after the reload" 0 "$(($(count_msgs reader_b) - B_BEFORE))"

# ---------------------------------------------------------------------------------------------
echo
printf '%sSummary (%d s):%s\n' "$B_" "$((SECONDS - STEP_STARTED))" "$N"
for line in "${RESULTS[@]}"; do info "$line"; done
echo
if [ "$FAILURES" -eq 0 ]; then
    printf '%sDemo OK: all %d checks behaved as told.%s\n' "$G$B_" "$CHECKS" "$N"
else
    printf '%sDemo FAILED: %d of %d checks did not behave as told.%s\n' "$R$B_" "$FAILURES" "$CHECKS" "$N"
    SUMMARY_PRINTED=1
    exit 1
fi
