# Shared code of the live-update tests (bash; sourced by
# tests/update/*.sh). A test drives the real `liveup` ($LIVEUP) against
# the test services in $UPD_DIR and prints TAP on stdout.
#
# Each test gets its own runtime folder ($T/run, via LIVEUP_RUNTIME_DIR)
# so keepers of different tests never meet. The keeper's stdout (where
# the services print their events: "ready gen=...", "frozen pid=...",
# "cancelled pid=... reason=...") is a FIFO the test reads on fd 7, so it
# waits on events, not on sleeps; every wait is bounded (read -t).
#
#   keeper_start NAME [RUN-OPTIONS] -- CMD...  start `liveup run`, K_PID
#   expect PATTERN [SECS]   read keeper stdout until a line matches the
#                           extended regex; the line in $LINE (fails on
#                           timeout or end of file); skipped lines in $SKIPPED
#   ask REQUEST...          upd-client on $SOCK; answers on stdout
#   conn_open / conn_ask REQUEST / conn_close
#                           one persistent connection (fds 8/9), answer in $REPLY
#   field LINE KEY          value of KEY=VALUE in LINE
#   st NAME KEY             a field of `liveup status NAME --json`

set -u
if [ -z "${LIVEUP:-}" ] || [ -z "${UPD_DIR:-}" ]; then
        echo "1..0 # SKIP LIVEUP and UPD_DIR not set"
        exit 0
fi
PYTHON=${PYTHON:-python3}
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/../tap.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/liveup-upd.XXXXXX")
export LIVEUP_RUNTIME_DIR=$T/run
SOCK=$T/svc.sock
SVC=$UPD_DIR/upd-svc
SDSVC=$UPD_DIR/upd-sdsvc
K_PID=
C_PID=
EXTRA_PIDS=

cleanup() {
        [ -n "$C_PID" ] && kill -9 "$C_PID" 2>/dev/null
        if [ -n "$K_PID" ]; then
                kill -TERM "$K_PID" 2>/dev/null
                wait "$K_PID" 2>/dev/null
        fi
        for p in $EXTRA_PIDS; do kill -9 "$p" 2>/dev/null; done
        # Services whose keeper was killed on purpose.
        for f in "$T"/pids.*; do
                [ -e "$f" ] && kill -9 $(cat "$f") 2>/dev/null
        done
        rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

keeper_start() {
        name=$1
        shift
        rm -f "$T/k.out"
        mkfifo "$T/k.out" || return 1
        "$LIVEUP" run --name "$name" "$@" > "$T/k.out" 2> "$T/k.err" &
        K_PID=$!
        exec 7< "$T/k.out"
}

# Wait for the keeper to exit; its status in $K_STATUS.
keeper_wait() {
        wait "$K_PID"
        K_STATUS=$?
        K_PID=
        exec 7<&-
}

expect() {
        SKIPPED=
        while IFS= read -r -t "${2:-10}" LINE <&7; do
                if echo "$LINE" | grep -Eq -- "$1"; then
                        return 0
                fi
                SKIPPED="$SKIPPED$LINE
"
        done
        diag "expected a line matching '$1'; got: $(echo "$SKIPPED" | tr '\n' '|')"
        diag "keeper log: $(tail -n 5 "$T/k.err" | tr '\n' '|')"
        return 1
}

field() {
        echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

ask() {
        "$UPD_DIR/upd-client" "$SOCK" "$@"
}

# The counter value the next "get" returns.
get() {
        ask get | cut -d' ' -f1
}

conn_open() {
        rm -f "$T/c.in" "$T/c.out"
        mkfifo "$T/c.in" "$T/c.out"
        "$UPD_DIR/upd-client" -i "$SOCK" < "$T/c.in" > "$T/c.out" &
        C_PID=$!
        exec 8> "$T/c.in"
        exec 9< "$T/c.out"
        IFS= read -r -t 10 REPLY <&9 && [ "$REPLY" = connected ]
}

conn_ask() {
        echo "$1" >&8 && IFS= read -r -t 10 REPLY <&9
}

conn_close() {
        exec 8>&-
        wait "$C_PID" 2>/dev/null
        C_PID=
        exec 9<&-
}

st() {
        "$LIVEUP" status "$1" --json | "$PYTHON" -c "
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split('.'):
    v = v[int(k)] if isinstance(v, list) else v[k]
print('null' if v is None else v)" "$2"
}

# Running (a zombie is not: once the keeper is killed, nobody may reap
# its orphans in a container whose init does not).
alive() {
        kill -0 "$1" 2>/dev/null || return 1
        s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/"$1"/status 2>/dev/null)
        [ -n "$s" ] && [ "$s" != Z ]
}

# Poll (bounded, about 5 s) until process $1 is gone (it is not our
# child: the keeper reaps it).
gone() {
        i=0
        while [ $i -lt 100 ]; do
                alive "$1" || return 0
                sleep 0.05
                i=$((i + 1))
        done
        return 1
}

# Run CMD..., keep its stderr in $ERR and its status in $RC.
run() {
        "$@" 2> "$T/err"
        RC=$?
        ERR=$(cat "$T/err")
}
