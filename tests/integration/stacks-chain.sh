#!/bin/sh
# `liveup stacks` finds known call chains, innermost first, in a -O0
# frame-pointer build (victim-chain) and in an -O2 -fomit-frame-pointer
# build where only CFI can unwind (victim-chain-o2): chain_c, chain_b,
# chain_a on the spinning thread; chain_z, chain_y, chain_x under read()
# on the blocked one, which stays blocked. Names and states come out as
# /proc shows them; the victim is unchanged afterwards.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 24

for prog in victim-chain victim-chain-o2; do
        victim_start 0 "$prog"
        check "$prog: ready" victim_wait_ready 0
        pid=$(victim_pid 0)

        run_liveup stacks "$pid" --json
        ok $LU_RC "$prog: liveup stacks --json exits 0"
        check "$prog: three threads, named, complete" json_check "$T/lu.out" "
names = sorted(t['name'] for t in threads)
if names != sorted(['$prog'[:15], 'chain-busy', 'chain-blocked']): fail('names %s' % names)
bad = [t['name'] for t in threads if not t.get('complete')]
if bad: fail('incomplete: %s (%s)' % (bad, [t.get('unwind_error') for t in threads]))
"
        check "$prog: chain-busy is chain_c, chain_b, chain_a, innermost first" \
                json_check "$T/lu.out" "
t = [t for t in threads if t['name'] == 'chain-busy'][0]
f = fn(t)
if f[:4] != ['chain_c', 'chain_b', 'chain_a', 'busy_main']: fail('frames %s' % f)
if f[-2:] != ['start_thread', 'clone3'] and f[-1:] != ['clone3']: fail('outermost %s' % f[-3:])
if not t['frames'][0]['object'].endswith('/$prog'): fail('object %s' % t['frames'][0]['object'])
"
        check "$prog: chain-blocked is read, then chain_z, chain_y, chain_x" \
                json_check "$T/lu.out" "
t = [t for t in threads if t['name'] == 'chain-blocked'][0]
f = fn(t)
if 'chain_z' not in f: fail('no chain_z in %s' % f)
i = f.index('chain_z')
if i < 1: fail('nothing (read) above chain_z: %s' % f)
if f[i:i + 4] != ['chain_z', 'chain_y', 'chain_x', 'blocked_main']: fail('frames %s' % f)
if not any('read' in x for x in f[:i]): fail('no read above chain_z: %s' % f[:i])
if t['state'] != 'sleeping': fail('state %s' % t['state'])
"
        check "$prog: main thread is in main" json_check "$T/lu.out" "
t = [t for t in threads if t['tid'] == $pid][0]
if 'main' not in fn(t): fail('frames %s' % fn(t))
"
        # The text form names the same functions.
        run_liveup stacks "$pid"
        ok $LU_RC "$prog: liveup stacks (text) exits 0"
        grep -q 'chain_c+0x' "$T/lu.out" && grep -q 'chain_z+0x' "$T/lu.out"
        ok $? "$prog: text output names chain_c and chain_z"

        btid=$(grep -l '^chain-blocked$' /proc/"$pid"/task/*/comm | sed 's|.*/task/\([0-9]*\)/comm|\1|')
        check "$prog: chain-blocked still blocked" wait_state "$pid" "$btid" S
        check "$prog: victim untraced" untraced "$pid"
        check "$prog: victim alive" alive "$pid"
        victim_end 0
        ok "$V_STATUS" "$prog: victim exits 0 when its stdin closes"
done

done_testing
