# A service that links nothing of liveup (upd-sdsvc): systemd's
# NOTIFY_SOCKET (READY=1, STATUS=, FDSTORE=1 + FDNAME=, FDSTOREREMOVE=1,
# STOPPING=1) and LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID. Update = start the
# new version with the stored fds, wait for READY=1, SIGTERM the old one;
# the counter (a stored memfd) continues. Cancel before ready kills the
# new version; the old one never stopped serving.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 19

keeper_start sd -- "$SDSVC" --socket "$SOCK"
expect '^ready gen=1 '
ok $? "first version ready"
old=$(field "$LINE" pid)
test "$(ask get get | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 "
ok $? "counter answers"
s=$("$LIVEUP" status sd)
echo "$s" | grep -q "listener *unix" && echo "$s" | grep -q "state *memfd .*4096 bytes"
ok $? "status lists the stored fds (FDSTORE=1, FDNAME=)"
echo "$s" | grep -q "^    tmp "
ok $((! $?)) "FDSTOREREMOVE=1 removed 'tmp'"
echo "$s" | grep -q "status: serving generation 1"
ok $? "status shows STATUS="
test "$(st sd protocol)" = notify
ok $? "protocol: notify"

run "$LIVEUP" update sd
ok $RC "update completes"
expect '^ready gen=2 '
ok $? "new version ready"
new=$(field "$LINE" pid)
test "$(field "$LINE" restored)/$(field "$LINE" counter)" = "1/2"
ok $? "new version got the stored fds in LISTEN_FDS (counter 2)"
# The old one may print before the new one does (READY=1 goes first).
echo "$SKIPPED" | grep -q "^stopping pid=$old" || expect "^stopping pid=$old"
ok $? "old version got SIGTERM and said STOPPING=1"
gone "$old"
ok $? "old version exited"
test "$(ask get)" = "3 gen=2 pid=$new"
ok $? "new version serves, counter continues"

run "$LIVEUP" update sd -- "$SDSVC" --socket "$SOCK" --mode crash
test $RC = 1 && echo "$ERR" | grep -q "killed by signal 6"
ok $? "new version crashing: cancelled"
test "$(ask get)" = "4 gen=2 pid=$new"
ok $? "old version never stopped serving"
run "$LIVEUP" update sd --timeout 1 -- "$SDSVC" --socket "$SOCK" --mode hang
test $RC = 1 && echo "$ERR" | grep -q "not ready within 1.0 s"
ok $? "new version hanging: cancelled at the timeout"

run "$LIVEUP" update sd --hold
ok $RC "update --hold"
expect '^ready gen=' 
g=$(field "$LINE" pid)
run "$LIVEUP" cancel sd
ok $RC "cancel from updated"
gone "$g"
ok $? "new version killed"
a=$(ask get)
test "$(field "$a" pid)" = "$new"
ok $? "old version serves ($a)"
