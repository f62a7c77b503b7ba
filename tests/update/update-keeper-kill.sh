# The keeper is not in the data path: killed with SIGKILL in the middle
# of an update, the old version goes on serving. In `updated` (held) and
# in `frozen` the old version sees the keeper's socket close and cancels
# itself (reason keeper-lost: thaws); the new one dies with the keeper
# (PR_SET_PDEATHSIG). In `prepared` likewise. And in `normal` the service
# simply goes on.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 14

# kill_keeper: SIGKILL it and reap it; remember the service's pids for the
# cleanup.
kill_keeper() {
        echo "$*" > "$T/pids.$1"
        kill -KILL "$K_PID"
        wait "$K_PID"
        K_PID=
        # fd 7 stays open: the services still write their events there.
}

# held in updated
keeper_start k1 -- "$SVC" --socket "$SOCK"
expect '^ready gen=1 '
old=$(field "$LINE" pid)
ask get > /dev/null
run "$LIVEUP" update k1 --hold
expect '^ready gen=2 '
new=$(field "$LINE" pid)
kill_keeper "$old" "$new"
expect "^cancelled pid=$old reason=4"
ok $? "updated: old version cancelled itself (keeper lost)"
gone "$new"
ok $? "updated: new version died with the keeper"
test "$(ask get)" = "2 gen=1 pid=$old"
ok $? "updated: old version serves"
kill "$old"
gone "$old"

# frozen: the new version took over and hangs before ready
keeper_start k2 -- "$SVC" --socket "$SOCK"
expect '^ready gen=1 '
old=$(field "$LINE" pid)
"$LIVEUP" update k2 --timeout 60 -- "$SVC" --socket "$SOCK" --mode hang 2> /dev/null &
upd=$!
expect "^frozen pid=$old"
ok $? "frozen reached"
new=$(st k2 new_pid)
kill_keeper "$old" "$new"
wait $upd
ok $(($? != 1)) "the waiting update exits 1 when the keeper dies"
expect "^cancelled pid=$old reason=4"
ok $? "frozen: old version thawed itself"
gone "$new"
ok $? "frozen: new version died with the keeper"
test "$(field "$(ask get)" pid)" = "$old"
ok $? "frozen: old version serves"
kill "$old"
gone "$old"

# prepared: the new version never takes over
keeper_start k3 -- "$SVC" --socket "$SOCK"
expect '^ready gen=1 '
old=$(field "$LINE" pid)
"$LIVEUP" update k3 --timeout 60 -- /bin/sleep 60 2> /dev/null &
upd=$!
i=0
while [ "$(st k3 new_pid)" = null ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
test "$(st k3 state)" = prepared
ok $? "prepared reached"
new=$(st k3 new_pid)
kill_keeper "$old" "$new"
wait $upd
expect "^cancelled pid=$old reason=4"
ok $? "prepared: old version cancelled itself"
gone "$new"
ok $? "prepared: new version died with the keeper"
test "$(field "$(ask get)" pid)" = "$old"
ok $? "prepared: old version serves"
kill "$old"
gone "$old"

# normal
keeper_start k4 -- "$SVC" --socket "$SOCK"
expect '^ready gen=1 '
old=$(field "$LINE" pid)
kill_keeper "$old"
test "$(ask get)" = "1 gen=1 pid=$old"
ok $? "normal: the service outlives its keeper"
kill "$old"
gone "$old"
ok $? "service stops on SIGTERM without a keeper"
