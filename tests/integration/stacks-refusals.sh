#!/bin/sh
# `liveup stacks` refuses cleanly (exit 1, one line on stderr naming the
# pid, nothing on stdout, the target as it was) when the process does not
# exist or another tracer holds it; bad usage exits 2. A process stopped
# by SIGSTOP is reported and stays stopped.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 17

# Exit status $1, exactly one line on stderr, empty stdout.
refused_with() {
        [ "$LU_RC" -eq "$1" ] && [ "$(lines "$T/lu.err")" -eq 1 ] && [ ! -s "$T/lu.out" ]
}

run_liveup stacks --help
[ $LU_RC -eq 0 ] && grep -q 'Usage: liveup stacks' "$T/lu.out"
ok $? "--help exits 0 with usage on stdout"

run_liveup stacks
check "no pid: exit 2, one line" refused_with 2
run_liveup stacks abc
check "pid 'abc': exit 2, one line" refused_with 2
run_liveup stacks 0
check "pid 0: exit 2, one line" refused_with 2
run_liveup stacks 1 2
check "two pids: exit 2, one line" refused_with 2
run_liveup stacks --no-such-option 1
check "unknown option: exit 2, one line" refused_with 2

# A pid that just died (pids count up: it is not reused this quickly).
true &
dead=$!
wait $dead
run_liveup stacks "$dead"
check "dead pid: exit 1, one line" refused_with 1
grep -q "$dead" "$T/lu.err"
ok $? "dead pid: the message names the pid"

# Another tracer holds the victim: refused, victim untouched.
victim_start 0 victim-chain
check "victim-chain ready" victim_wait_ready 0
pid=$(victim_pid 0)
if command -v strace > /dev/null 2>&1; then
        strace -f -q -p "$pid" -o /dev/null 2> /dev/null &
        st=$!
        i=0
        while [ $i -lt 100 ] && untraced "$pid"; do
                sleep 0.05
                i=$((i + 1))
        done
        run_liveup stacks "$pid"
        check "traced by strace: exit 1, one line" refused_with 1
        kill -INT $st
        wait $st 2> /dev/null
        i=0
        while [ $i -lt 100 ] && ! untraced "$pid"; do
                sleep 0.05
                i=$((i + 1))
        done
        run_liveup stacks "$pid"
        ok $LU_RC "after strace left: liveup stacks works"
else
        skip "traced by strace: exit 1, one line" "strace not installed"
        skip "after strace left: liveup stacks works" "strace not installed"
fi

# Group-stopped: reported, and left stopped.
kill -STOP "$pid"
check "SIGSTOP: victim stopped" wait_state "$pid" "$pid" T
run_liveup stacks "$pid" --json
ok $LU_RC "stopped victim: liveup stacks --json exits 0"
check "stopped victim: every thread reported stopped" json_check "$T/lu.out" "
if len(threads) != 3: fail('%d threads' % len(threads))
states = set(t['state'] for t in threads)
if states != {'stopped'}: fail('states %s' % states)
"
sleep 0.1
state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/"$pid"/status)
[ "$state" = T ]
ok $? "stopped victim stays stopped after liveup (state $state)"
check "stopped victim untraced" untraced "$pid"
kill -CONT "$pid"
victim_end 0
ok "$V_STATUS" "victim resumes and exits 0"

done_testing
