#!/bin/sh
# `liveup stacks`, run again and again on victim-threads (busy threads,
# threads blocked in read/cond/futex/nanosleep/poll, thread churn,
# counted SIGUSR1/SIGUSR2 handlers without SA_RESTART), changes nothing
# the victim can observe: no blocking call returns EINTR, every signal
# sent (also while liveup is attached) is delivered exactly once, busy
# threads go on making progress, no thread is lost, and the victim ends
# normally.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

ROUNDS=10

plan $((ROUNDS + 13))

victim_start 0 victim-threads --busy 2 --blocked 5 --churn 2 --signals
check "victim-threads ready" victim_wait_ready 0
pid=$(victim_pid 0)
victim_ask 0 report
first=$REPLY
diag "before: $first"

# Wait (bounded) until the report shows at least $2 deliveries of $1.
wait_signals() {
        i=0
        while [ $i -lt 200 ]; do
                victim_ask 0 report || return 1
                [ "$(field "$REPLY" "$1")" -ge "$2" ] && return 0
                sleep 0.02
                i=$((i + 1))
        done
        return 1
}

usr1=0
usr2=0
for r in $(seq 1 $ROUNDS); do
        # liveup attaches while the signal is in flight: it must re-inject
        # it, once. The next signal is sent only after this one arrived
        # (standard signals do not queue: two pending ones would merge).
        "$LIVEUP" stacks "$pid" > "$T/round.out" 2> "$T/round.err" &
        lu=$!
        # Spread the sends over a run of liveup (it takes about 100 ms), so
        # that some land while it attaches, stops or detaches.
        sleep "$(printf '0.%03d' $(((r - 1) * 7)))"
        if [ $((r % 2)) -eq 0 ]; then
                kill -USR2 "$pid"
                usr2=$((usr2 + 1))
        else
                kill -USR1 "$pid"
                usr1=$((usr1 + 1))
        fi
        wait $lu
        rc=$?
        [ $rc -eq 0 ] || diag "round $r: liveup -> $rc: $(head -c 300 "$T/round.err")"
        wait_signals sigusr1 $usr1 && wait_signals sigusr2 $usr2
        s=$?
        [ $rc -eq 0 ] && [ $s -eq 0 ]
        ok $? "round $r: liveup stacks exits 0 and the signal arrives"
done

victim_ask 0 report
last=$REPLY
diag "after: $last"
[ "$(field "$last" eintr)" -eq 0 ]
ok $? "no blocking call returned EINTR"
[ "$(field "$last" sigusr1)" -eq $usr1 ] && [ "$(field "$last" sigusr2)" -eq $usr2 ]
ok $? "every signal delivered exactly once ($usr1 SIGUSR1, $usr2 SIGUSR2)"
[ "$(field "$last" progress)" -gt "$(field "$first" progress)" ]
ok $? "busy threads made progress"
[ "$(field "$last" created)" -gt "$(field "$first" created)" ]
ok $? "churn threads went on creating threads"
# main + 2 busy + 5 blocked + 2 churn, plus up to 2 short-lived threads.
n=$(field "$last" threads)
[ "$n" -ge 10 ] && [ "$n" -le 12 ]
ok $? "no thread lost ($n threads)"

run_liveup stacks "$pid" --json
ok $LU_RC "liveup stacks --json exits 0"
check "blocked threads reported sleeping, busy ones complete" json_check "$T/lu.out" "
by = {}
for t in threads: by.setdefault(t['name'], []).append(t)
for n in ['blk-read', 'blk-cond', 'blk-futex', 'blk-sleep', 'blk-poll']:
    if len(by.get(n, [])) != 1: fail('thread %s: %d' % (n, len(by.get(n, []))))
    if by[n][0]['state'] != 'sleeping': fail('%s is %s' % (n, by[n][0]['state']))
    if not by[n][0]['complete']: fail('%s incomplete: %s' % (n, by[n][0]['unwind_error']))
if len(by.get('busy', [])) != 2: fail('busy threads: %d' % len(by.get('busy', [])))
for t in by['busy']:
    if not t['complete']: fail('busy %d incomplete: %s' % (t['tid'], t['unwind_error']))
    if 'busy_main' not in fn(t): fail('busy %d: %s' % (t['tid'], fn(t)))
# Short-lived threads inherit the name "churn" from their creator.
if len(by.get('churn', [])) < 2: fail('churn threads: %d' % len(by.get('churn', [])))
"
check "blocked read thread parked under blocked_main" json_check "$T/lu.out" "
t = [t for t in threads if t['name'] == 'blk-read'][0]
if 'blocked_main' not in fn(t): fail('frames %s' % fn(t))
"
check "victim untraced" untraced "$pid"
victim_ask 0 report
[ "$(field "$REPLY" eintr)" -eq 0 ]
ok $? "still no EINTR after --json run"

victim_end 0
ok "$V_STATUS" "victim exits 0 when its stdin closes"
# Its last words are the report line.
victim_read 0
case "$REPLY" in
progress=*) ok 0 "final report written" ;;
*) ok 1 "final report written (got '$REPLY')" ;;
esac

done_testing
