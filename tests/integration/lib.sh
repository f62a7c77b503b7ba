# Shared code of the integration tests, sourced by each tests/integration/*.sh
# (POSIX sh). A test drives the real `liveup` binary ($LIVEUP) against
# victim programs ($LIVEUP_VICTIM_DIR) and prints TAP on stdout; anything
# else goes to stderr or into "# " diagnostic lines.
#
# Victims talk through FIFOs, so the driver waits on events, not on sleeps:
#   victim_start ID PROGRAM ARGS...   starts it with stdin and stdout on
#                                     FIFOs held open on fds 3+2*ID (to its
#                                     stdin) and 4+2*ID (from its stdout);
#                                     sets V_PID_<ID>; ID is 0..2; with
#                                     V_NICE set, at that nice level
#   victim_read ID                    one line of its stdout into $REPLY
#                                     (fails at end of file)
#   victim_say ID LINE                one line to its stdin
#   victim_wait_ready ID              read until "ready" (fails otherwise)
# A victim dies with its parent (PR_SET_PDEATHSIG), i.e. with this shell;
# the EXIT trap also kills what is left and removes the scratch folder.
#
# TAP: plan N; ok CONDITION-STATUS DESCRIPTION; check DESCRIPTION CMD...;
# skip DESCRIPTION REASON; diag TEXT. The script ends with `done_testing`,
# which exits 1 when any test failed.

set -u

if [ -z "${LIVEUP:-}" ] || [ -z "${LIVEUP_VICTIM_DIR:-}" ]; then
        echo "Bail out! LIVEUP and LIVEUP_VICTIM_DIR must be set" >&2
        echo "1..0 # SKIP LIVEUP and LIVEUP_VICTIM_DIR not set"
        exit 0
fi

# Meson passes the Python it runs on; a bare "python3" may be a slow
# wrapper script (pyenv), which matters when busy victims fill the CPUs.
PYTHON=${PYTHON:-python3}

. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/../tap.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/liveup-it.XXXXXX")

cleanup() {
        for id in 0 1 2; do
                eval "p=\${V_PID_$id:-}"
                if [ -n "$p" ]; then
                        kill -9 "$p" 2>/dev/null
                        wait "$p" 2>/dev/null
                fi
        done
        rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP



# ok STATUS DESCRIPTION: passes when STATUS is 0.



victim_start() {
        id=$1
        prog=$2
        shift 2
        rm -f "$T/in.$id" "$T/out.$id"
        mkfifo "$T/in.$id" "$T/out.$id" || return 1
        # nice execs the victim: $! is the victim's pid either way.
        ${V_NICE:+nice -n "$V_NICE"} "$LIVEUP_VICTIM_DIR/$prog" "$@" \
                < "$T/in.$id" > "$T/out.$id" 2> "$T/err.$id" &
        eval "V_PID_$id=$!"
        # The victim's shell opens its stdin FIFO first, then its stdout:
        # open ours in the same order.
        eval "exec $((3 + 2 * id))> \"\$T/in.\$id\""
        eval "exec $((4 + 2 * id))< \"\$T/out.\$id\""
}

victim_pid() {
        eval "echo \${V_PID_$1}"
}

victim_read() {
        eval "IFS= read -r REPLY <&$((4 + 2 * $1))"
}

victim_say() {
        eval "echo \"\$2\" >&$((3 + 2 * $1))"
}

victim_wait_ready() {
        while victim_read "$1"; do
                [ "$REPLY" = ready ] && return 0
        done
        echo "victim $1 ended before it was ready: $(cat "$T/err.$1" 2>/dev/null)" >&2
        return 1
}

# Close the victim's stdin and reap it; its exit status in $V_STATUS.
victim_end() {
        eval "exec $((3 + 2 * $1))>&-"
        eval "p=\${V_PID_$1}"
        wait "$p"
        V_STATUS=$?
        eval "V_PID_$1="
}

# Send a command and read the one-line answer into $REPLY.
victim_ask() {
        victim_say "$1" "$2" && victim_read "$1"
}

# Value of key=value in a report line: field LINE KEY
field() {
        echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

alive() {
        kill -0 "$1" 2>/dev/null
}

# True when no thread of PID is traced.
untraced() {
        for s in /proc/"$1"/task/*/status; do
                t=$(sed -n 's/^TracerPid:[[:space:]]*//p' "$s" 2>/dev/null)
                [ -z "$t" ] || [ "$t" = 0 ] || return 1
        done
        return 0
}

# utime+stime of a process in clock ticks (its name has no blanks).
cpu_ticks() {
        awk '{ print $14 + $15 }' /proc/"$1"/stat
}

# Poll (bounded, about 5 s) until the process has used more CPU than $2.
cpu_grows() {
        i=0
        while [ $i -lt 100 ]; do
                [ "$(cpu_ticks "$1")" -gt "$2" ] && return 0
                sleep 0.05
                i=$((i + 1))
        done
        return 1
}

# Poll (bounded, about 5 s) until /proc says thread $2 of $1 is in state $3.
wait_state() {
        i=0
        while [ $i -lt 100 ]; do
                s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/"$1"/task/"$2"/status 2>/dev/null)
                [ "$s" = "$3" ] && return 0
                sleep 0.05
                i=$((i + 1))
        done
        return 1
}

# Run liveup with stdout, stderr and status in $T/lu.out, $T/lu.err, $LU_RC.
run_liveup() {
        "$LIVEUP" "$@" > "$T/lu.out" 2> "$T/lu.err"
        LU_RC=$?
        if [ $LU_RC -ne 0 ]; then
                diag "liveup $* -> $LU_RC: $(head -c 300 "$T/lu.err")"
        fi
        return 0
}

# Lines in a file (0 when empty).
lines() {
        wc -l < "$1" | tr -d ' '
}

# Check the JSON that `liveup stacks --json` printed, with a Python
# expression per check: json_check FILE PYTHON-CODE. The code sees `d`
# (the document), `threads`, `fn(t)` (a thread's function names,
# innermost first), and must exit non-zero (e.g. via `fail(msg)`) on
# failure.
json_check() {
        file=$1
        code=$2
        "$PYTHON" - "$file" <<EOF
import json, sys
def fail(msg):
    sys.stderr.write("json check: %s\n" % msg)
    sys.exit(1)
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    fail("not one JSON document: %s" % e)
threads = d.get("threads", [])
def fn(t):
    return [f.get("function") or "??" for f in t.get("frames", [])]
$code
EOF
}

# Kill a victim (SIGTERM) and reap it; its exit status in $V_STATUS.
victim_kill() {
        eval "p=\${V_PID_$1}"
        kill -TERM "$p" 2>/dev/null
        wait "$p"
        V_STATUS=$?
        eval "V_PID_$1="
}
