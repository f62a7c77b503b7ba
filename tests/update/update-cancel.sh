# Every cancel path: automatic cancel when the new version crashes,
# exits, hangs before ready (--timeout) or refuses the schema (before the
# old one is frozen); the old version refusing prepare or freeze; `liveup
# cancel` in prepared and in frozen. After each, the old version serves
# (same pid, counter intact) and status says why.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 29

keeper_start svc -- "$SVC" --socket "$SOCK"
expect '^ready gen=1 '
old=$(field "$LINE" pid)
ask get > /dev/null

# The old version thawed (CANCEL, reason N) and serves with its counter.
old_serves() {
        expect "^cancelled pid=$old reason=$1" &&
                test "$(ask get)" = "$2 gen=1 pid=$old"
}

run "$LIVEUP" update svc -- "$SVC" --socket "$SOCK" --mode crash
test $RC = 1 && echo "$ERR" | grep -q "update of 'svc' cancelled: the new version (pid [0-9]*) was killed by signal 6"
ok $? "new version crashes before ready: exit 1, one clear line"
old_serves 3 2
ok $? "old version thawed and serves"

run "$LIVEUP" update svc -- "$SVC" --socket "$SOCK" --mode exit
test $RC = 1 && echo "$ERR" | grep -q "the new version (pid [0-9]*) exited with status 3 before it was ready"
ok $? "new version exits before ready: refused"
old_serves 3 3
ok $? "old version serves"

run "$LIVEUP" update svc --timeout 1 -- "$SVC" --socket "$SOCK" --mode hang
test $RC = 1 && echo "$ERR" | grep -q "the new version (pid [0-9]*) was not ready within 1.0 s"
ok $? "new version hangs: cancelled at --timeout"
old_serves 3 4
ok $? "old version serves"

run "$LIVEUP" update svc -- "$SVC" --socket "$SOCK" --accept 2:3
test $RC = 1 && echo "$ERR" | grep -q "refuses item 'state': schema 1, it accepts 2..3"
ok $? "schema mismatch refused"
expect "^cancelled pid=$old reason=3"
ok $? "old version cancelled"
echo "$SKIPPED" | grep -q "^frozen"
ok $((! $?)) "old version was never frozen on a schema refusal"
test "$(ask get)" = "5 gen=1 pid=$old"
ok $? "old version serves"
test "$(st svc state)" = normal && "$LIVEUP" status svc | grep -q "refuses item 'state'"
ok $? "status tells the last update's refusal"

# An accepted schema range goes through (then roll back with cancel).
run "$LIVEUP" update svc --hold -- "$SVC" --socket "$SOCK" --accept 1:2
ok $RC "schema in range accepted"
expect '^ready gen=[0-9]+ '
"$LIVEUP" cancel svc 2> /dev/null
old_serves 1 6
ok $? "cancel from updated: old serves"

# liveup cancel in frozen: the new version took over and hangs.
"$LIVEUP" update svc --timeout 60 -- "$SVC" --socket "$SOCK" --mode hang 2> "$T/upd.err" &
upd=$!
expect "^frozen pid=$old"
ok $? "old version frozen"
i=0
while [ "$(st svc state)" != frozen ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
test "$(st svc state)" = frozen
ok $? "status: frozen"
run "$LIVEUP" cancel svc
ok $RC "cancel in frozen exits 0"
wait $upd
test $? = 1 && grep -q "cancelled: by request" "$T/upd.err"
ok $? "the waiting update exits 1: cancelled by request"
old_serves 1 7
ok $? "old version thawed and serves"

# liveup cancel in prepared: the new version never takes over.
"$LIVEUP" update svc --timeout 60 -- /bin/sleep 60 2> "$T/upd.err" &
upd=$!
i=0
while [ "$(st svc new_pid)" = null ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
test "$(st svc state)" = prepared
ok $? "status: prepared (new version started, not taken over)"
newpid=$(st svc new_pid)
run "$LIVEUP" cancel svc
ok $RC "cancel in prepared exits 0"
wait $upd
ok $(($? != 1)) "the waiting update exits 1"
gone "$newpid"
ok $? "new version killed"
old_serves 1 8
ok $? "old version serves"

# The old version refuses (a second keeper whose service refuses).
kill -TERM "$K_PID"
keeper_wait
keeper_start svc2 -- "$SVC" --socket "$SOCK" --mode refuse-prepare
expect '^ready gen=1 '
old=$(field "$LINE" pid)
run "$LIVEUP" update svc2
test $RC = 1 && echo "$ERR" | grep -q "refused by the old version: participant 'counter' refused to prepare: test service told to refuse"
ok $? "prepare refused: exit 1 with the participant's reason"
test "$(field "$(ask get)" pid)" = "$old" && test "$(st svc2 new_pid)" = null
ok $? "old version serves, no new version was started"
kill -TERM "$K_PID"
keeper_wait

keeper_start svc3 -- "$SVC" --socket "$SOCK" --mode refuse-freeze
expect '^ready gen=1 '
old=$(field "$LINE" pid)
run "$LIVEUP" update svc3 -- "$SVC" --socket "$SOCK"
test $RC = 1 && echo "$ERR" | grep -q "participant 'counter' refused to freeze"
ok $? "freeze refused: exit 1 with the reason"
expect "^cancelled pid=$old reason=2"
ok $? "old version's participants cancelled (reason refused)"
a=$(ask get)
test "$(field "$a" pid)" = "$old"
ok $? "old version serves ($a)"
test "$(st svc3 state)/$(st svc3 new_pid)" = "normal/null"
ok $? "status: normal, new version gone"
