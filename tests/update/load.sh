# Helpers of the load tests (update-load*.sh), sourced after lib.sh: an
# HTTP example service under wrk on 127.0.0.1 while it is updated again
# and again. wrk's failed requests (socket errors: connect, read, write,
# timeout; and non-2xx answers) must stay 0.
#
#   PORT                     a port that was free a moment ago
#   hget PATH                one request (http.py get): "STATUS<TAB>SERVED-BY<TAB>BODY"
#   body PATH / served_pid PATH
#   wrk_start SECS           wrk -t2 -c64 --timeout 2s in the background
#   wrk_check                wait for it; ok unless it failed requests;
#                            $WRK_REQ completed requests, $WRK_ERR why not ok
#   steady_start / steady_stop
#                            http.py steady: 4 keep-alive connections whose
#                            requests are split in two writes; $STEADY its
#                            summary line, $STEADY_REQ its requests
HTTP_PY="$LIVEUP_TESTS_DIR/http.py"
WRK_CONNS=64

if ! command -v wrk > /dev/null; then
        echo "1..0 # SKIP wrk is not installed"
        exit 0
fi

PORT=$("$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')

hget() {
        "$PYTHON" "$HTTP_PY" get "$PORT" "$1"
}

body() {
        hget "$1" | cut -f3
}

served_pid() {
        hget "$1" | cut -f2 | sed -n 's/.* pid=\([0-9]*\).*/\1/p'
}

# Under the load already running: new versions of service $1 (command
# $2 ...) that crash, hang past a 0.5 s timeout and exit before they are
# ready are each cancelled (3 tests), 0.5 s apart so the old version
# serves between them.
failing_new_versions() {
        fv_svc=$1
        shift
        run "$LIVEUP" update "$fv_svc" -- "$@" --fail crash
        test "$RC" = 1 && echo "$ERR" | grep -q "killed by signal 6"
        ok $? "a crashing new version: update cancelled ($(echo "$ERR" | tail -n 1))"
        sleep 0.5
        run "$LIVEUP" update "$fv_svc" --timeout 0.5 -- "$@" --fail hang
        test "$RC" = 1 && echo "$ERR" | grep -q "not ready within 0.5 s"
        ok $? "a hanging new version: cancelled at the timeout ($(echo "$ERR" | tail -n 1))"
        sleep 0.5
        run "$LIVEUP" update "$fv_svc" -- "$@" --fail exit
        test "$RC" = 1 && echo "$ERR" | grep -q "exited with status 3"
        ok $? "a new version that exits: cancelled"
        sleep 0.5
}

wrk_start() {
        wrk -t2 -c$WRK_CONNS -d"$1"s --timeout 2s --latency "http://127.0.0.1:$PORT/" \
                > "$T/wrk.out" 2>&1 &
        W_PID=$!
        EXTRA_PIDS="$EXTRA_PIDS $W_PID"
}

wrk_check() {
        wait "$W_PID"
        w=$?
        WRK_REQ=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$T/wrk.out")
        WRK_ERR=
        [ $w -eq 0 ] || WRK_ERR="wrk exited with $w"
        [ -n "$WRK_REQ" ] && [ "$WRK_REQ" -gt 0 ] || WRK_ERR="$WRK_ERR no requests completed"
        e=$(grep -E "Socket errors|Non-2xx" "$T/wrk.out" | tr '\n' ' ')
        [ -z "$e" ] || WRK_ERR="$WRK_ERR $e"
        if [ -n "$WRK_ERR" ]; then
                diag "wrk: $WRK_ERR"
                sed 's/^/# wrk| /' "$T/wrk.out"
                return 1
        fi
        return 0
}

steady_start() {
        rm -f "$T/steady.stop"
        "$PYTHON" "$HTTP_PY" steady "$PORT" 4 "$T/steady.stop" > "$T/steady.out" 2> "$T/steady.err" &
        S_PID=$!
        EXTRA_PIDS="$EXTRA_PIDS $S_PID"
}

steady_stop() {
        touch "$T/steady.stop"
        wait "$S_PID"
        s=$?
        STEADY=$(cat "$T/steady.out")
        STEADY_REQ=$(field "$STEADY" requests)
        [ $s -eq 0 ] || diag "steady client: $(tr '\n' '|' < "$T/steady.err")"
        return $s
}
