#!/bin/sh
# The journal: a liveup killed (SIGKILL, as by an operator or the OOM
# killer) at each step of an apply or a revert leaves the target running,
# `liveup patches` says what was interrupted, and the next liveup on that
# process completes the interrupted operation before its own; the target's
# behaviour is right at every step. The kill comes from a test-only hook
# (LIVEUP_TEST_CRASH=STEP), at the exact point named. The first apply
# maps an arena (in its preparation window, where it is journalled); the
# later ones are carved from it and journalled with the threads running;
# the space of an interrupted one is free again once it is repaired.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 38

cat > "$T/fix.c" <<'EOF'
int victim_value(void)
{
        return 42;
}
EOF
cat > "$T/fix2.c" <<'EOF'
int victim_value(void)
{
        return 77;
}
EOF
run_liveup build --replace "$T/fix.c" --target "$LIVEUP_VICTIM_DIR/victim-func" -o "$T/fix.lpo"
ok $LU_RC "build the first patch"
run_liveup build --replace "$T/fix2.c" --target "$LIVEUP_VICTIM_DIR/victim-func" -o "$T/fix2.lpo"
ok $LU_RC "build the second patch"

V_NICE=19 victim_start 0 victim-func
check "victim-func ready" victim_wait_ready 0
pid=$(victim_pid 0)

# What victim_value() returns now, over calls made after this point:
# prints 1, 42, 77, or "mixed(ONES/OTHERS)".
returns() {
        victim_ask 0 reset || return 1 # answers "reset"
        i=0
        while [ $i -lt 200 ]; do
                victim_ask 0 report || return 1
                ones=$(field "$REPLY" ones)
                others=$(field "$REPLY" others)
                # A thread preempted between a call's return and its
                # count may still count one call of before: allow a few.
                if [ $((ones + others)) -ge 2000 ]; then
                        if [ "$others" -le 4 ]; then
                                echo 1
                        elif [ "$ones" -le 4 ]; then
                                field "$REPLY" last
                        else
                                echo "mixed($ones/$others)"
                        fi
                        return 0
                fi
                sleep 0.01
                i=$((i + 1))
        done
        echo stuck
}

# The image address of the first patch `liveup patches --json` lists.
patch_image() {
        "$LIVEUP" patches --json "$pid" | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["processes"][0]["patches"][0]["image"])'
}

patch_state() {
        "$LIVEUP" patches --json "$pid" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
ps = d["processes"][0]["patches"] if d["processes"] else []
print(" ".join(p["state"] for p in ps) or "none")'
}

# --- apply interrupted right after the journal record -------------------
LIVEUP_TEST_CRASH=after-journal "$LIVEUP" apply "$pid" "$T/fix.lpo" > /dev/null 2>&1
[ $? -eq 137 ]
ok $? "apply killed after writing its journal record"
check "the target survived" alive "$pid"
check "and is not traced" untraced "$pid"
[ "$(patch_state)" = "applying" ]
ok $? "patches shows the interrupted apply"
[ "$(returns)" = 1 ]
ok $? "old behaviour (no jump was written)"
run_liveup apply "$pid" "$T/fix2.lpo"
ok $LU_RC "the next apply completes the repair, then applies"
[ "$(patch_state)" = "applied" ]
ok $? "only the new patch is recorded"
r=$(returns)
[ "$r" = 77 ]
ok $? "new behaviour of the second patch (returns $r)"
run_liveup revert "$pid"
ok $LU_RC "revert"
[ "$(returns)" = 1 ]
ok $? "old behaviour again"
grep -c 'memfd:liveup' /proc/"$pid"/maps > /dev/null
ok $? "the registry stays (empty) for the next patch"

# --- apply interrupted after its journal record, carved from the arena ---
# (no preparation window: the record is written with the threads running)
LIVEUP_TEST_CRASH=after-journal "$LIVEUP" apply "$pid" "$T/fix.lpo" > /dev/null 2>&1
[ $? -eq 137 ]
ok $? "apply from the arena killed after writing its journal record"
check "the target survived" alive "$pid"
[ "$(patch_state)" = "applying" ]
ok $? "patches shows the interrupted apply"
killed_at=$(patch_image)
[ "$(returns)" = 1 ]
ok $? "old behaviour (no jump was written)"
run_liveup apply --json "$pid" "$T/fix2.lpo"
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
p = d['processes'][0]
if p['image'] != '$killed_at': fail('image %s, the interrupted one had $killed_at' % p['image'])
if not p['in_arena'] or p['remote_calls'] != 0: fail('not from the arena: %s' % p)
"
ok $? "the next apply repairs it and reuses its space ($killed_at), with no remote call"
[ "$(returns)" = 77 ]
ok $? "new behaviour of the second patch"
run_liveup revert "$pid"
[ $LU_RC -eq 0 ] && [ "$(patch_state)" = "none" ] && [ "$(returns)" = 1 ]
ok $? "revert: no patch, old behaviour"

# --- apply interrupted in the middle of the stop window ------------------
LIVEUP_TEST_CRASH=mid-commit "$LIVEUP" apply "$pid" "$T/fix.lpo" > /dev/null 2>&1
[ $? -eq 137 ]
ok $? "apply killed with the threads stopped, after the first jump"
check "the target survived" alive "$pid"
check "and is not traced" untraced "$pid"
[ "$(patch_state)" = "applying" ]
ok $? "patches shows the interrupted apply"
r=$(returns)
[ "$r" = 42 ]
ok $? "the jump that was written works (returns $r)"
run_liveup revert "$pid"
[ $LU_RC -ne 0 ] && grep -q "no liveup patch" "$T/lu.err"
ok $? "revert completes the repair (nothing else to revert)"
[ "$(patch_state)" = "none" ]
ok $? "no patch recorded"
[ "$(returns)" = 1 ]
ok $? "old behaviour"

# --- revert interrupted ---------------------------------------------------
run_liveup apply "$pid" "$T/fix.lpo"
ok $LU_RC "apply again"
LIVEUP_TEST_CRASH=mid-revert "$LIVEUP" revert "$pid" > /dev/null 2>&1
[ $? -eq 137 ]
ok $? "revert killed with the threads stopped, midway"
check "the target survived" alive "$pid"
[ "$(patch_state)" = "reverting" ]
ok $? "patches shows the interrupted revert"
run_liveup apply "$pid" "$T/fix2.lpo"
ok $LU_RC "the next apply completes the revert, then applies"
[ "$(returns)" = 77 ]
ok $? "behaviour of the new patch"
run_liveup revert "$pid" --all
ok $LU_RC "revert --all"
[ "$(returns)" = 1 ]
ok $? "old behaviour at the end"
check "the target is alive" alive "$pid"

done_testing
