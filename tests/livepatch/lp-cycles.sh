#!/bin/sh
# 100 apply/revert cycles on a busy multithreaded process: every apply
# and every revert succeeds, after each one every thread gets the right
# result (x + 100 patched, x + 1 reverted), the process never dies, and
# nothing accumulates in it (its memory map after the last cycle is the
# one after the first; no tracer stays). The first apply maps an arena;
# every later one reuses the space the revert before it freed: the same
# address, and no remote call (no mmap, no munmap on revert).
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 11

CYCLES=${LPT_CYCLES:-100}

build_patch fix-100 fix-100 lpt-pie-o2
ok $? "fix-100.c builds"

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)

apply_fail=0
apply_wrong=0
revert_fail=0
revert_wrong=0
not_reused=0
dead=0
attempts=0
i=0
while [ $i -lt "$CYCLES" ]; do
        i=$((i + 1))
        "$LIVEUP" apply --json "$pid" "$T/fix-100.lpo" > "$T/apply.json" 2> "$T/apply.err"
        if [ $? -ne 0 ]; then
                apply_fail=$((apply_fail + 1))
                diag "cycle $i: apply: $(head -c 300 "$T/apply.err")"
        fi
        a=$(sed -n 's/.*"attempts":[[:space:]]*\([0-9]*\).*/\1/p' "$T/apply.json")
        attempts=$((attempts + ${a:-0}))
        img=$(sed -n 's/.*"image":[[:space:]]*"\(0x[0-9a-f]*\)".*/\1/p' "$T/apply.json")
        rc=$(sed -n 's/.*"remote_calls":[[:space:]]*\([0-9]*\).*/\1/p' "$T/apply.json")
        if [ $i -eq 1 ]; then
                img1=$img
        elif [ "$img" != "$img1" ] || [ "$rc" != 0 ]; then
                not_reused=$((not_reused + 1))
                diag "cycle $i: image $img (first $img1), $rc remote calls"
        fi
        behaves 0 100 || apply_wrong=$((apply_wrong + 1))
        "$LIVEUP" revert "$pid" > /dev/null 2> "$T/revert.err"
        if [ $? -ne 0 ]; then
                revert_fail=$((revert_fail + 1))
                diag "cycle $i: revert: $(head -c 300 "$T/revert.err")"
        fi
        behaves 0 1 || revert_wrong=$((revert_wrong + 1))
        if ! alive "$pid"; then
                dead=1
                diag "cycle $i: the victim died"
                break
        fi
        # The map after the first cycle: later ones must give it back.
        [ $i -eq 1 ] && maps_of "$pid" > "$T/maps.1"
done
diag "$i cycles, $attempts stop attempts for $i applies"

ok $apply_fail "$CYCLES applies exit 0 ($apply_fail failed)"
ok $apply_wrong "after every apply, every thread gets x + 100 ($apply_wrong wrong)"
ok $revert_fail "$CYCLES reverts exit 0 ($revert_fail failed)"
ok $revert_wrong "after every revert, every thread gets x + 1 ($revert_wrong wrong)"
ok $dead "the victim stays alive"
ok $not_reused "every apply after the first at the first one's address, with no remote call ($not_reused not)"
maps_of "$pid" > "$T/maps.n"
cmp -s "$T/maps.1" "$T/maps.n"
ok $? "its memory map is the same after cycle 1 and cycle $i (no patch memory left behind)"
run_liveup patches "$pid"
[ "$(cat "$T/lu.out")" = "pid $pid: no patches" ]
ok $? "no patches listed at the end"
check "untraced at the end" untraced "$pid"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

done_testing
