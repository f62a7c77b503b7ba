#!/bin/sh
# `liveup stacks` on 64 threads, busy and idle (victim-n): every thread is
# reported with a complete stack through thread_loop (busy threads almost
# always inside patchme), the tids are exactly the process's, the output
# is one JSON document, and the victim goes on running, untraced.
#
# The victim runs at nice 19 so that 64 busy threads on two CPUs leave
# this script (and its forks) CPU time; the output is checked after the
# victim is gone, for the same reason.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 18

for mode in busy idle; do
        V_NICE=19 victim_start 0 victim-n 64 "$mode"
        check "$mode: victim-n 64 ready" victim_wait_ready 0
        pid=$(victim_pid 0)
        ticks=$(cpu_ticks "$pid")

        run_liveup stacks "$pid" --json
        ok $LU_RC "$mode: liveup stacks --json exits 0"
        ok "$(lines "$T/lu.err")" "$mode: nothing on stderr"

        ls /proc/"$pid"/task | sort -n > "$T/tids"
        check "$mode: victim alive" alive "$pid"
        check "$mode: victim untraced" untraced "$pid"
        check "$mode: victim keeps running" cpu_grows "$pid" "$ticks"
        victim_kill 0
        [ "$V_STATUS" -eq 143 ]
        ok $? "$mode: victim ends by SIGTERM as usual"
        check "$mode: 64 threads, the process's own tids, all complete" json_check "$T/lu.out" "
tids = sorted(t['tid'] for t in threads)
want = [int(x) for x in open('$T/tids').read().split()]
if len(threads) != 64: fail('%d threads reported' % len(threads))
if tids != want: fail('tids %s, /proc has %s' % (tids, want))
if d.get('pid') != $pid: fail('pid %s' % d.get('pid'))
bad = [t['tid'] for t in threads if not t.get('complete')]
if bad: fail('incomplete stacks: %s' % bad)
"
        if [ "$mode" = busy ]; then
                check "busy: every stack holds thread_loop, nearly all patchme innermost" \
                        json_check "$T/lu.out" "
no_loop = [t['tid'] for t in threads if 'thread_loop' not in fn(t)]
if no_loop: fail('no thread_loop in %s' % no_loop)
inner = sum(1 for t in threads if fn(t)[:1] == ['patchme'])
chain = sum(1 for t in threads if fn(t)[:11] == ['patchme'] + ['level_%d' % i for i in range(9, 0, -1)] + ['thread_loop'])
# A busy thread spends ~99.9% of its time in patchme: allow a few outside.
if inner < 60: fail('only %d of 64 threads inside patchme' % inner)
if chain < 60: fail('only %d of 64 threads show patchme, level_9..level_1, thread_loop' % chain)
"
        else
                check "idle: every stack holds thread_loop below the sleep" \
                        json_check "$T/lu.out" "
for t in threads:
    f = fn(t)
    if 'thread_loop' not in f: fail('no thread_loop in %d: %s' % (t['tid'], f))
asleep = sum(1 for t in threads if 'usleep' in fn(t))
if asleep < 48: fail('only %d of 64 threads in usleep' % asleep)
"
        fi
done

done_testing
