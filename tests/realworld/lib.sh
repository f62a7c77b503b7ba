# Shared code of the real-world tests, sourced by tests/realworld/*.sh
# (POSIX sh). They live-patch a real program built by its own build
# system: Lua 5.4.4 as Debian bookworm ships it (scripts/fetch-lua.sh).
#
# Environment (tests/realworld/meson.build sets it):
#   LIVEUP                   the liveup executable
#   LIVEUP_REALWORLD_TESTS   this folder (the server, the diffs)
#   LIVEUP_REALWORLD_CACHE   where the fetched source stays between runs
#   LIVEUP_FETCH_LUA         scripts/fetch-lua.sh
#   PYTHON                   for the JSON checks
#
#   rw_fetch_lua              the pristine tree in $LUA_SRC; when it cannot
#                             be fetched, "1..0 # SKIP reason" and exit 0
#   rw_make_lua DIR [ARGS...] copy $LUA_SRC to DIR and run `make linux
#                             ARGS...` there (output in DIR.log), with as
#                             many jobs as CPUs (the same binary, sooner)
#   server_start LUA          run utf8-server.lua on LUA with its stdin on
#                             the FIFO $T/req (the test writes on fd 3) and
#                             its answers read by answers.py; SRV_PID
#                             is the Lua process; waits for "ready"
#   ask TAG HEX               one request, its answer (without the tag) in
#                             $REPLY; fails when the server has gone
#   load_start / load_stop    a background writer of valid requests
#                             "L<n> <hex>" (200 x U+4E2D), 20 per 10 ms;
#                             load_stop ends it and sets LOAD_SENT
#   load_sync                 a request after everything written so far;
#                             sets LOAD_N (load requests answered, each
#                             checked to be "L<n> OK 200" in order) and
#                             LOAD_BAD (the others: wrong, lost, reordered)
#   load_wait N               the same, answered once N load requests are
#                             (the filter holds the answer, blocking on the
#                             server's output: no polling), or after 10 s
#                             without them (LOAD_N < N then)
#   server_end                close its input; its exit status in $SRV_STATUS
#
# Every test runs in a scratch folder $T (also $TMPDIR), removed on exit
# with whatever is still running.

set -u

if [ -z "${LIVEUP:-}" ] || [ -z "${LIVEUP_REALWORLD_TESTS:-}" ] ||
        [ -z "${LIVEUP_REALWORLD_CACHE:-}" ]; then
        echo "1..0 # SKIP LIVEUP, LIVEUP_REALWORLD_TESTS and LIVEUP_REALWORLD_CACHE must be set"
        exit 0
fi
PYTHON=${PYTHON:-python3}
RW=$LIVEUP_REALWORLD_TESTS
FETCH_LUA=${LIVEUP_FETCH_LUA:-$RW/../../scripts/fetch-lua.sh}

. "$RW/../tap.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/liveup-rw.XXXXXX")
mkdir "$T/tmp"
TMPDIR=$T/tmp
export TMPDIR
SRV_PID=
FILTER_PID=
LOAD_PID=

rw_cleanup() {
        for p in $LOAD_PID $SRV_PID $FILTER_PID; do
                kill -9 "$p" 2> /dev/null
                wait "$p" 2> /dev/null
        done
        rm -rf "$T"
}
trap rw_cleanup EXIT
trap 'exit 1' INT TERM HUP

rw_fetch_lua() {
        "$FETCH_LUA" "$LIVEUP_REALWORLD_CACHE" 2> "$T/fetch.err"
        rc=$?
        if [ $rc -ne 0 ]; then
                if [ $rc -eq 77 ]; then
                        echo "1..0 # SKIP $(tail -n 1 "$T/fetch.err")"
                        exit 0
                fi
                echo "Bail out! $FETCH_LUA failed ($rc): $(tail -n 1 "$T/fetch.err")"
                exit 1
        fi
        LUA_SRC=$LIVEUP_REALWORLD_CACHE/lua5.4-src
        [ -f "$LIVEUP_REALWORLD_CACHE/lua5.4-src.info" ] &&
                diag "$(cat "$LIVEUP_REALWORLD_CACHE/lua5.4-src.info")"
        return 0
}

rw_make_lua() {
        dir=$1
        shift
        rm -rf "$dir"
        cp -R "$LUA_SRC" "$dir" || return 1
        if ! (cd "$dir" && make -j"$(nproc 2> /dev/null || echo 2)" linux "$@") > "$dir.log" 2>&1; then
                diag "make linux $* in $dir failed: $(tail -n 3 "$dir.log")"
                return 1
        fi
        return 0
}

# 200 x U+4E2D (e4 b8 ad), valid UTF-8: the server answers "OK 200".
LOAD_HEX=$(i=0; while [ $i -lt 200 ]; do printf e4b8ad; i=$((i + 1)); done)

server_start() {
        rm -f "$T/req" "$T/srv.out" "$T/replies"
        mkfifo "$T/req" "$T/srv.out" "$T/replies" || return 1
        # A simple command in the background: $! is the Lua process.
        "$1" "$RW/utf8-server.lua" < "$T/req" > "$T/srv.out" 2> "$T/srv.err" &
        SRV_PID=$!
        # The filter counts and checks the load's answers (in order: one
        # writer, one FIFO, one server) and passes every other answer on
        # to $T/replies, which it opens first (so that a reader of it sees
        # the end of file when the server's output ends).
        "$PYTHON" "$RW/answers.py" "$T/replies" < "$T/srv.out" 2> "$T/filter.err" &
        FILTER_PID=$!
        exec 3> "$T/req"
        exec 4< "$T/replies"
        IFS= read -r REPLY <&4 && [ "$REPLY" = ready ] && return 0
        diag "the server did not start: $(head -c 300 "$T/srv.err")"
        return 1
}

ask() {
        echo "$1 $2" >&3 || return 1
        IFS= read -r REPLY <&4 || return 1
        case $REPLY in
        "$1 "*) REPLY=${REPLY#"$1 "} ;;
        *)
                diag "answer to $1 is '$REPLY'"
                return 1
                ;;
        esac
        return 0
}

load_start() {
        rm -f "$T/load.stop" "$T/load.sent"
        (
                i=0
                while [ ! -e "$T/load.stop" ]; do
                        j=0
                        while [ $j -lt 20 ]; do
                                i=$((i + 1))
                                echo "L$i $LOAD_HEX" || exit 1
                                j=$((j + 1))
                        done
                        sleep 0.01
                done
                echo "$i" > "$T/load.sent"
        ) > "$T/req" &
        LOAD_PID=$!
}

load_stop() {
        : > "$T/load.stop"
        wait "$LOAD_PID"
        LOAD_PID=
        LOAD_SENT=$(cat "$T/load.sent" 2> /dev/null || echo 0)
}

# load_counts TAG: ask TAG (S, or W<n>) and read the filter's counts.
load_counts() {
        LOAD_N=-1
        LOAD_BAD=-1
        ask "$1" "" || return 1
        LOAD_N=$(echo "$REPLY" | sed -n 's/.*loads=\([0-9]*\).*/\1/p')
        LOAD_BAD=$(echo "$REPLY" | sed -n 's/.*bad=\([0-9]*\).*/\1/p')
        return 0
}

load_sync() {
        load_counts S
}

load_wait() {
        load_counts "W$1"
}

server_end() {
        exec 3>&-
        wait "$SRV_PID"
        SRV_STATUS=$?
        SRV_PID=
        exec 4<&-
        wait "$FILTER_PID"
        FILTER_PID=
}

alive() {
        kill -0 "$1" 2> /dev/null
}

# True when no thread of PID is traced.
untraced() {
        for s in /proc/"$1"/task/*/status; do
                t=$(sed -n 's/^TracerPid:[[:space:]]*//p' "$s" 2> /dev/null)
                [ -z "$t" ] || [ "$t" = 0 ] || return 1
        done
        return 0
}

# Run liveup: stdout, stderr and status in $T/lu.out, $T/lu.err, $LU_RC.
run_liveup() {
        "$LIVEUP" "$@" > "$T/lu.out" 2> "$T/lu.err" 3>&- 4<&-
        LU_RC=$?
        return 0
}

# json_check FILE PYTHON-CODE: the code sees `d` (the document) and
# calls fail(msg) on a failed check.
json_check() {
        "$PYTHON" - "$1" <<PYEOF
import json, sys
def fail(msg):
    print("# json check: %s" % msg)
    sys.exit(1)
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    fail("not one JSON document: %s" % e)
$2
PYEOF
}
