# counter-http (examples/update, libliveup) under wrk load through many
# consecutive updates: zero failed requests, the counter (in the handed-
# over memfd) equals the requests served, the cache survives, keep-alive
# connections are handed over (the steady client never has to reconnect,
# and its requests split in two writes survive a freeze between the
# halves). Then a new version that crashes, exits, hangs or refuses the
# state's schema, under load: each update is cancelled, no request
# fails, and the old version serves on.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"
. "$LIVEUP_TESTS_DIR/load.sh"

CH=$EXAMPLES_DIR/counter-http
CH2=$EXAMPLES_DIR/counter-http-2
UPDATES=16

plan 22

keeper_start ch -- "$CH" --port "$PORT"
expect '^ready version=1 gen=1 '
ok $? "counter-http ready on port $PORT"
test "$(body '/set?colour=blue')" = "colour=blue" && test "$(body '/set?answer=42')" = "answer=42"
ok $? "two cache entries stored"
base=$(body /count)

# Many updates under load, alternating between the binaries of version 1
# and version 2.
steady_start
wrk_start 12
sleep 1
FAILED=0
for i in $(seq 1 $UPDATES); do
        if [ $((i % 2)) -eq 1 ]; then bin=$CH2; else bin=$CH; fi
        "$LIVEUP" update ch -- "$bin" --port "$PORT" 2> "$T/upd.err" ||
                { FAILED=$((FAILED + 1)); diag "update $i: $(cat "$T/upd.err")"; }
        sleep 0.5
done
wrk_check
ok $? "wrk: no failed request over $UPDATES updates ($WRK_REQ requests)"
steady_stop
ok $? "steady client: every answer 200 and growing ($STEADY)"
test "$FAILED" -eq 0
ok $? "all $UPDATES updates completed"
test "$(field "$STEADY" reconnects)" = 0
ok $? "the steady client's 4 keep-alive connections were handed over each time (no reconnect)"
count=$(body /count)
# /count counts itself; wrk's requests still in flight when it stopped
# were served but not counted by wrk: at most one per connection.
extra=$((count - base - WRK_REQ - STEADY_REQ - 1))
test "$extra" -ge 0 && test "$extra" -le "$WRK_CONNS"
ok $? "counter = requests served ($count = $base + $WRK_REQ + $STEADY_REQ + 1 + $extra in flight)"
test "$(body /kv/colour)/$(body /kv/answer)" = "blue/42"
ok $? "cache entries intact after $UPDATES updates"
gen=$((UPDATES + 1))
test "$(st ch state)/$(st ch generation)/$(st ch updates)" = "normal/$gen/$UPDATES"
ok $? "status: normal, generation $gen, $UPDATES updates"
hget / | cut -f2 | grep -q "^counter-http/1 gen=$gen "
ok $? "version 1, generation $gen serves ($(hget / | cut -f2))"
cur=$(st ch old_pid)

# Failing new versions, under load: each is cancelled, nothing fails.
steady_start
wrk_start 8
sleep 1
failing_new_versions ch "$CH2" --port "$PORT"
run "$LIVEUP" update ch -- "$CH2" --port "$PORT" --schema 2
test "$RC" = 1 && echo "$ERR" | grep -q "schema"
ok $? "a new version that wants state schema 2: refused ($(echo "$ERR" | tail -n 1))"
sleep 0.5
test "$(served_pid /)" = "$cur"
ok $? "the old version (pid $cur) still serves during the load"
wrk_check
ok $? "wrk: no failed request through the crash, hang, exit and refusal ($WRK_REQ requests)"
steady_stop
ok $? "steady client: every answer 200 and growing ($STEADY)"
test "$(field "$STEADY" reconnects)" = 0
ok $? "the steady client kept its connections through the failed updates"
test "$(body /kv/colour)" = blue
ok $? "cache intact after the failed updates"
test "$(st ch state)/$(st ch generation)/$(st ch old_pid)" = "normal/$gen/$cur"
ok $? "status: normal, still generation $gen, pid $cur"
alive "$cur"
ok $? "old version alive"

# And the service still updates after all that.
run "$LIVEUP" update ch
test "$RC" = 0 && test "$(body /kv/answer)" = 42
ok $? "a normal update afterwards completes, cache intact"
done_testing
