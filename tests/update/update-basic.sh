# Live update of a libliveup service, every forward path: update
# (normal -> prepared -> frozen -> updated -> finished -> normal), the
# counter (a memfd) continues, a connection open across the update is not
# dropped, the old version exits; --hold then finish; --hold then cancel
# (instant rollback to the frozen old version); status and --json; the
# dispatch-thread variant (liveup_start_thread).
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 36

# A stray fd without O_CLOEXEC that `liveup run` inherits from us.
exec 5< /dev/null
keeper_start svc -- "$SVC" --socket "$SOCK"
exec 5<&-
expect '^ready gen=1 '
ok $? "first version ready"
old=$(field "$LINE" pid)
# Neither the keeper's fds nor what it inherited (fd 5) reach the service.
test "$(ask fds)" = "fds 0,1,2,3"
ok $? "first version started with fds 0-2 and LIVEUP_FD only ($(ask fds))"
check "counter answers 1, 2" test "$(ask get get | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 "
conn_open
ok $? "persistent connection open"
conn_ask get
ok $? "persistent connection answers ($REPLY)"
test "$(st svc state)" = normal
ok $? "status: normal"

run "$LIVEUP" update svc
ok $RC "update completes (exit 0)"
echo "$ERR" | grep -q "prepared:" && echo "$ERR" | grep -q "frozen:" &&
        echo "$ERR" | grep -q "updated:" && echo "$ERR" | grep -q "normal:"
ok $? "update printed one progress line per state"
expect '^ready gen=2 '
ok $? "new version ready (generation 2)"
new=$(field "$LINE" pid)
test "$(field "$LINE" restored)" = 1 && test "$(field "$LINE" counter)" = 3
ok $? "new version found the counter in the handed-over memfd ($LINE)"
gone "$old"
ok $? "old version (pid $old) exited"
conn_ask get
test "$REPLY" = "4 gen=2 pid=$new"
ok $? "connection open across the update answered by the new version ($REPLY)"
test "$(ask get)" = "5 gen=2 pid=$new"
ok $? "new connections go to the new version"
test "$(ask fds)" = "fds 0,1,2,3"
ok $? "new version started with fds 0-2 and LIVEUP_FD only (no fd of the keeper or the test)"
test "$(st svc state)/$(st svc generation)/$(st svc old_pid)/$(st svc updates)" = "normal/2/$new/1"
ok $? "status: normal, generation 2, pid $new, 1 update"

# --hold, then finish.
run "$LIVEUP" update svc --hold
ok $RC "update --hold exits 0 in updated"
echo "$ERR" | grep -q "held in updated"
ok $? "update --hold says it is held"
expect '^ready gen=3 '
ok $? "generation 3 ready"
g3=$(field "$LINE" pid)
test "$(st svc state)/$(st svc new_pid)/$(st svc old_pid)" = "updated/$g3/$new"
ok $? "status: updated, old $new and new $g3"
alive "$new"
ok $? "old version kept (frozen) while held"
test "$(field "$(ask get)" pid)" = "$g3"
ok $? "the new version serves while held"
st_items=$("$LIVEUP" status svc)
echo "$st_items" | grep -q "state *memfd *schema 1, 4096 bytes"
ok $? "status lists the preserved memfd while held"
run "$LIVEUP" finish svc
ok $RC "finish exits 0"
gone "$new"
ok $? "old version exited after finish"
test "$(st svc state)/$(st svc generation)" = "normal/3"
ok $? "status: normal, generation 3"

# --hold, then cancel: the frozen old version thaws at once.
run "$LIVEUP" update svc --hold
ok $RC "second update --hold"
expect '^ready gen=4 '
g4=$(field "$LINE" pid)
run "$LIVEUP" cancel svc
ok $RC "cancel exits 0"
expect "^cancelled pid=$g3 reason=1"
ok $? "old version got CANCEL (reason requested)"
gone "$g4"
ok $? "the new version (pid $g4) was killed"
a=$(ask get)
test "$(field "$a" pid)" = "$g3"
ok $? "old version serves again after the rollback ($a)"
test "$(st svc state)" = normal && "$LIVEUP" status svc | grep -q "cancelled: by request"
ok $? "status: normal, last update cancelled by request"
"$LIVEUP" status | grep -q "^svc: normal"
ok $? "status without NAME lists the service"
conn_close

# SIGTERM to the keeper stops the service; run exits with its status.
kill -TERM "$K_PID"
keeper_wait
test "$K_STATUS" = 143
ok $? "keeper passes SIGTERM on and exits with the service's status (143: killed by SIGTERM)"

# The same with the library's dispatch thread.
keeper_start svct -- "$SVC" --socket "$SOCK" --thread
expect '^ready gen=1 '
ask get > /dev/null
run "$LIVEUP" update svct
expect '^ready gen=2 '
test $RC = 0 && test "$(field "$LINE" counter)" = 1
ok $? "dispatch-thread service: update completes, counter continues"

# An old version that does not exit after FINISH is killed (after 5 s).
kill -TERM "$K_PID"
keeper_wait
keeper_start svcl -- "$SVC" --socket "$SOCK" --mode linger
expect '^ready gen=1 '
old=$(field "$LINE" pid)
run "$LIVEUP" update svcl -- "$SVC" --socket "$SOCK"
test $RC = 0
ok $? "update completes although the old version lingers"
grep -q "the old version (pid $old) did not exit after finish: killing it" "$T/k.err" && ! alive "$old"
ok $? "the lingering old version was killed"
