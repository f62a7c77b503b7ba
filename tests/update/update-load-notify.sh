# notify-http (examples/update, systemd protocols only) under wrk load
# through many consecutive updates: zero failed requests (the old version
# answers each connection's next request with "Connection: close" and the
# client reconnects to the shared listening socket), the counter (a
# memfd in the fd store) equals the requests served, the cache survives.
# Then a new version that crashes, exits or hangs, under load: cancelled,
# no request fails, the old version serves on.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"
. "$LIVEUP_TESTS_DIR/load.sh"

NH=$EXAMPLES_DIR/notify-http
UPDATES=16

plan 17

keeper_start nh -- "$NH" --port "$PORT"
expect '^ready version=1 gen=1 '
ok $? "notify-http ready on port $PORT"
test "$(body '/set?colour=blue')" = "colour=blue"
ok $? "a cache entry stored"
base=$(body /count)

steady_start
wrk_start 12
sleep 1
FAILED=0
for i in $(seq 1 $UPDATES); do
        "$LIVEUP" update nh -- "$NH" --port "$PORT" --tag "$i" 2> "$T/upd.err" ||
                { FAILED=$((FAILED + 1)); diag "update $i: $(cat "$T/upd.err")"; }
        sleep 0.5
done
wrk_check
ok $? "wrk: no failed request over $UPDATES updates ($WRK_REQ requests)"
steady_stop
ok $? "steady client: every answer 200 and growing ($STEADY)"
test "$FAILED" -eq 0
ok $? "all $UPDATES updates completed"
count=$(body /count)
extra=$((count - base - WRK_REQ - STEADY_REQ - 1))
test "$extra" -ge 0 && test "$extra" -le "$WRK_CONNS"
ok $? "counter = requests served ($count = $base + $WRK_REQ + $STEADY_REQ + 1 + $extra in flight)"
test "$(body /kv/colour)" = blue
ok $? "cache entry intact after $UPDATES updates"
gen=$((UPDATES + 1))
test "$(st nh state)/$(st nh generation)/$(st nh updates)" = "normal/$gen/$UPDATES"
ok $? "status: normal, generation $gen, $UPDATES updates"
hget / | cut -f2 | grep -q "^notify-http/$UPDATES gen=$gen "
ok $? "the last version serves ($(hget / | cut -f2))"
cur=$(st nh old_pid)

steady_start
wrk_start 6
sleep 1
failing_new_versions nh "$NH" --port "$PORT"
test "$(served_pid /)" = "$cur"
ok $? "the old version (pid $cur) still serves"
wrk_check
ok $? "wrk: no failed request through the crash, hang and exit ($WRK_REQ requests)"
steady_stop
ok $? "steady client: every answer 200 and growing ($STEADY)"
test "$(st nh state)/$(st nh old_pid)" = "normal/$cur" && alive "$cur"
ok $? "status: normal, pid $cur alive"
run "$LIVEUP" update nh
test "$RC" = 0 && test "$(body /kv/colour)" = blue
ok $? "a normal update afterwards completes, cache intact"
done_testing
