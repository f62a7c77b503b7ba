#!/bin/sh
# Stacks through patch code. Patch A replaces wait_here(), and the
# victim's blocker thread is parked in the replacement (blocked in
# read(2), called from A's code). The unwinder knows A's code and its
# call frame information (the registry says where A's .eh_frame is), so:
#   - `liveup stacks` shows the blocker's stack complete, through A's
#     code, to the thread's start;
#   - patch B, of another function (compute), applies at once (the stop
#     check can prove A's code is not what B replaces), and reverts while
#     the thread is still there;
#   - a second patch of wait_here itself is refused while the thread is
#     in A's wait_here (the code it would replace), naming the function;
#   - A cannot be reverted while its code is on that stack (the refusal
#     names wait_here), and is once the thread is out.
# The victim's behaviour is checked after each step, and that it ends
# untraced and exits 0.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 27

timed_liveup() {
        t0=$(date +%s%N)
        run_liveup "$@"
        ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
}

# The blocker's lines in `liveup stacks PID` (text): from its "thread"
# line to the blank line after its frames.
thread_block() {
        awk -v tid="$1" '
                $1 == "thread" && $2 == tid { on = 1 }
                on && $0 == "" { exit }
                on { print }' "$T/lu.out"
}

build_patch pa fix-wait lpt-pie-o2
ok $? "patch A (fix-wait.c: wait_here) builds"
A=$PATCH_ID
build_patch pb fix-100 lpt-pie-o2
ok $? "patch B (fix-100.c: compute) builds"
B=$PATCH_ID
build_patch pa2 fix-wait lpt-pie-o2
ok $? "patch A2 (fix-wait.c again: wait_here) builds"
A2=$PATCH_ID

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)

run_liveup apply "$pid" "$T/pa.lpo"
ok $LU_RC "patch A applies (no thread inside wait_here)"
victim_ask 0 block
tid=$(field "$REPLY" tid)
[ -n "$tid" ]
ok $? "the blocker thread is parked inside A's wait_here ($REPLY)"

# (a) The stack as `liveup stacks` sees it: read (libc) <- A's wait_here
# (the patch's code) <- blocker_main <- ... start_thread, complete.
run_liveup stacks "$pid" --json
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
ts = [t for t in threads if t['tid'] == $tid]
if len(ts) != 1: fail('thread $tid not listed')
t = ts[0]
fr = t['frames']
if not t['complete']: fail('incomplete: %s; functions %s' % (t['unwind_error'], fn(t)))
k = [i for i, f in enumerate(fr) if f['patch'] == '$A']
if len(k) != 1: fail('not one frame in patch A: %s' % fr)
k = k[0]
if fr[k]['object'] != '[patch $A]': fail('patch frame object %s' % fr[k]['object'])
if k < 1 or 'libc' not in (fr[0]['object'] or ''): fail('innermost frames not in libc: %s' % fn(t))
if fn(t)[k + 1] != 'blocker_main': fail('caller of the patch frame: %s' % fn(t))
if 'start_thread' not in fn(t)[k + 1:]: fail('no start_thread: %s' % fn(t))
others = [x for x in threads if not x['complete'] and not x['new_thread']]
if others: fail('incomplete stacks: %s' % [(x['tid'], x['unwind_error']) for x in others])
"
ok $? "stacks --json: the blocker's stack is complete, through A's code (read <- [patch A] <- blocker_main ... start_thread), every stack complete"
run_liveup stacks "$pid"
thread_block "$tid" > "$T/blocker.txt"
grep -qF "[patch $A]" "$T/blocker.txt" && ! grep -q "unwind stopped" "$T/blocker.txt"
ok $? "stacks (text): the blocker's frames name [patch $A] and the unwind did not stop"

# (b) Patch B, of another function: the stop check follows the blocker's
# stack through A's code, finds no compute() on it, and commits.
timed_liveup apply "$pid" "$T/pb.lpo" --timeout 3 --json
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
p = d['processes'][0]
if p['applied'] is not True: fail('not applied: %s' % p)
print('# patch B applied in %d attempt(s)' % p['attempts'])
"
ok $? "patch B (compute) applies while the blocker sits in A's code ($ELAPSED_MS ms)"
behaves 0 100
ok $? "... compute is x + 100"
victim_ask 0 check
[ "$(field "$REPLY" now)" = 100 ]
ok $? "... and the blocker has not moved: the victim still answers ($REPLY)"

# (c) And B reverts, the blocker still in A's code.
run_liveup revert "$pid" "$B" --timeout 3
[ $LU_RC -eq 0 ] && grep -q "^reverted $B in pid $pid" "$T/lu.out"
ok $? "patch B reverts while the blocker sits in A's code"
behaves 0 1
ok $? "... compute is x + 1 again"

# A second patch of wait_here replaces A's wait_here, in which the
# blocker is: refused, naming the function.
timed_liveup apply "$pid" "$T/pa2.lpo" --timeout 0.5
check "patch A2 (wait_here again) with the blocker in A's wait_here: exit 1, one line" \
        refused_with 1
check "... the message names wait_here and the blocker" \
        said "refusing to patch pid $pid: function 'wait_here' is on the stack of thread $tid (\"blocker\"); retried for "

# (d) A cannot go while its code is on the blocker's stack.
timed_liveup revert "$pid" "$A" --timeout 0.5
check "revert of A with the blocker in its code: exit 1, one line" refused_with 1
check "... the message names A, wait_here and the blocker" \
        said "refusing to revert patch '$A' of pid $pid: function 'wait_here' is on the stack of thread $tid (\"blocker\")"
[ "$ELAPSED_MS" -lt 4500 ]
ok $? "... after the 0.5 s timeout ($ELAPSED_MS ms)"
run_liveup patches "$pid" --json
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
ids = [p['id'] for p in d['processes'][0]['patches']]
if ids != ['$A']: fail('patches %s' % ids)
"
ok $? "... A is still applied, alone"
behaves 0 1
ok $? "... the victim behaves as before"

victim_ask 0 unblock
[ "$REPLY" = unblocked ]
ok $? "the blocker leaves wait_here"
run_liveup revert "$pid" "$A" --timeout 3
[ $LU_RC -eq 0 ] && grep -q "^reverted $A in pid $pid" "$T/lu.out"
ok $? "then A reverts"
run_liveup patches "$pid"
[ "$(cat "$T/lu.out")" = "pid $pid: no patches" ]
ok $? "... no patch left"
behaves 0 1
ok $? "... compute is x + 1"
victim_ask 0 block
victim_ask 0 unblock
[ "$REPLY" = unblocked ]
ok $? "... the blocker parks and leaves again (the original wait_here)"
run_liveup stacks "$pid" --json
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
bad = [(t['tid'], t['unwind_error']) for t in threads if not t['complete'] and not t['new_thread']]
if bad: fail('incomplete stacks: %s' % bad)
if any(f['patch'] for t in threads for f in t['frames']): fail('a frame still in a patch')
"
ok $? "... every stack complete, none through a patch"

check "victim alive and untraced" untraced "$pid"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

done_testing
