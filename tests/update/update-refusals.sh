# Refusals of the live-update verbs: each exits 1 with one clear line and
# leaves the old version serving: unknown service; a user other than root
# and the service's (nobody, via setpriv, against this root keeper: once
# stopped by the folder's permissions, once by the keeper's SO_PEERCRED
# check); new binary missing or not executable; an update already in
# progress; finish/cancel with nothing to act on; a second keeper of the
# same name; --ready-timeout missed. Garbage on the control socket, the
# notify socket and from a version never hurts the keeper. Bad usage
# exits 2; every verb has --help.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 31

for v in run update status finish cancel; do
        "$LIVEUP" "$v" --help | grep -q "^Usage: liveup $v"
        ok $? "liveup $v --help"
done
run "$LIVEUP" update
test $RC = 2
ok $? "update without NAME: exit 2"
run "$LIVEUP" update svc --timeout abc
test $RC = 2 && echo "$ERR" | grep -q "invalid timeout 'abc'"
ok $? "bad --timeout: exit 2"
run "$LIVEUP" run --name 'a/b' -- /bin/true
test $RC = 2
ok $? "run with an invalid name: exit 2"

run "$LIVEUP" update nosuch
test $RC = 1 && test "$ERR" = "liveup: unknown service 'nosuch': no keeper answers at $T/run/nosuch.sock"
ok $? "unknown service: exit 1, one line"

keeper_start svc -- "$SVC" --socket "$SOCK" --garble
expect '^ready gen=1 '
ok $? "a version that sent garbage first still runs"
old=$(field "$LINE" pid)
grep -q "dropped a bad message from pid $old" "$T/k.err"
ok $? "the keeper dropped the garbage with a warning"

run "$LIVEUP" run --name svc -- /bin/true
test $RC = 1 && echo "$ERR" | grep -q "a keeper of that name already runs"
ok $? "second keeper of the same name refused"

run "$LIVEUP" update svc -- "$T/missing-binary"
test $RC = 1 && test "$ERR" = "liveup: update of 'svc' refused: the new version's binary '$T/missing-binary' does not exist"
ok $? "missing binary refused"
printf '#!/bin/sh\n' > "$T/noexec"
chmod 644 "$T/noexec"
run "$LIVEUP" update svc -- "$T/noexec"
test $RC = 1 && echo "$ERR" | grep -q "binary '$T/noexec' is not executable"
ok $? "non-executable binary refused"
run "$LIVEUP" finish svc
test $RC = 1 && echo "$ERR" | grep -q "cannot finish 'svc': no update is held in updated (state normal)"
ok $? "finish with nothing held refused"
run "$LIVEUP" cancel svc
test $RC = 1 && echo "$ERR" | grep -q "cannot cancel 'svc': no update is in progress"
ok $? "cancel with nothing in progress refused"
test "$(ask get)" = "1 gen=1 pid=$old"
ok $? "old version serves after these refusals"

# Busy: held in updated, a second update is refused.
run "$LIVEUP" update svc --hold
expect '^ready gen=2 '
run "$LIVEUP" update svc
test $RC = 1 && echo "$ERR" | grep -q "update of 'svc' refused: an update is already in progress (state updated)"
ok $? "update while one is held: refused"
test "$(st svc state)" = updated
ok $? "the held update is untouched"
"$LIVEUP" cancel svc 2> /dev/null
expect "^cancelled pid=$old"

# Another user: nobody. First the folder (0700) stops it...
if command -v setpriv > /dev/null && id nobody > /dev/null 2>&1; then
        chmod 755 "$T"
        NOBODY="setpriv --reuid=nobody --regid=nogroup --clear-groups"
        run $NOBODY env LIVEUP_RUNTIME_DIR="$T/run" "$LIVEUP" update svc
        test $RC = 1 && echo "$ERR" | grep -q "cannot drive service 'svc': permission denied"
        ok $? "nobody cannot reach the socket (folder 0700)"
        # ...then, with folder and socket opened up, the keeper's check.
        chmod 755 "$T/run"
        chmod 666 "$T/run/svc.sock"
        run $NOBODY env LIVEUP_RUNTIME_DIR="$T/run" "$LIVEUP" update svc
        test $RC = 1 && test "$ERR" = "liveup: cannot drive service 'svc': permission denied (uid $(id -u nobody) is neither root nor the user running it)"
        ok $? "keeper refuses nobody by SO_PEERCRED"
        run $NOBODY env LIVEUP_RUNTIME_DIR="$T/run" "$LIVEUP" cancel svc
        test $RC = 1
        ok $? "nobody cannot cancel either"
        run $NOBODY env LIVEUP_RUNTIME_DIR="$T/run" "$LIVEUP" status svc
        test $RC = 1
        ok $? "nor read the status"
        grep -q "refused a control connection from uid $(id -u nobody)" "$T/k.err"
        ok $? "the keeper logged the refusal"
        chmod 700 "$T/run"
else
        for i in 1 2 3 4 5; do skip "nobody refused" "no setpriv or no user nobody"; done
fi
test "$(field "$(ask get)" pid)" = "$old" && test "$(st svc state)" = normal
ok $? "old version serves, state normal"

# Garbage on the control socket and the notify socket.
"$PYTHON" - "$T/run/svc.sock" "$T/run/svc.notify" <<'PY'
import socket, struct, sys
for junk in [b"", b"x", b"\x08\x00\x00\x00\x41\x00\x00\x00",
             struct.pack("<IHH", 12, 64, 0) + b"\x0c\x00\xff\xff",
             struct.pack("<IHH", 8, 1, 0), b"\xff" * 70000]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    try:
        s.send(junk)
        s.settimeout(5)
        s.recv(65536)
    except OSError:
        pass
    s.close()
d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for junk in [b"\x00\x01", b"READY", b"=====", b"FDNAME=bad/name\nFDSTORE=1", b"x" * 5000]:
    try:
        d.sendto(junk, sys.argv[2])
    except OSError:
        pass
PY
test "$(st svc state)" = normal && alive "$K_PID"
ok $? "keeper survives garbage on the control and notify sockets"
test "$(field "$(ask get)" pid)" = "$old"
ok $? "old version still serves"
grep -q "refused a bad control message" "$T/k.err"
ok $? "bad control messages were refused with a warning"
kill -TERM "$K_PID"
keeper_wait

# --ready-timeout: in time, and missed.
keeper_start fast --ready-timeout 10 -- "$SVC" --socket "$SOCK"
expect '^ready gen=1 '
ok $? "ready within --ready-timeout"
kill -TERM "$K_PID"
keeper_wait
keeper_start plain -- /bin/sleep 60
i=0
while [ "$(st plain old_pid)" = null ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run "$LIVEUP" update plain
test $RC = 1 && echo "$ERR" | grep -q "update of 'plain' refused: the running version (pid [0-9]*) has not reported ready"
ok $? "a version that never reported ready cannot be updated"
kill -TERM "$K_PID"
keeper_wait
run "$LIVEUP" run --name slow --ready-timeout 0.3 -- /bin/sleep 30
test $RC = 1 && echo "$ERR" | grep -q "service 'slow' (pid [0-9]*) was not ready within 0.3 s: killing it"
ok $? "not ready within --ready-timeout: killed, run exits 1"
