#!/bin/sh
# Stacking and revert order: patch 2 on top of patch 1 on the same
# function wins; patch 1 cannot be reverted while patch 2 is on top (nor
# applied twice); reverting goes 2 -> 1 -> original; revert by id;
# revert --all (text and JSON), most recent first. Every refusal exits 1
# with one line on stderr and leaves the behaviour and the list as they
# were. Options are written after the operands once, as the usage shows.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 46

# The patch ids, in the order `liveup patches --json PID` lists them.
listed() {
        "$LIVEUP" patches --json "$1" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(p["id"] for p in d["processes"][0]["patches"]))'
}

build_patch p1 fix-100 lpt-pie-o2
ok $? "fix-100.c builds"
P1=$PATCH_ID
build_patch p2 fix-200 lpt-pie-o2
ok $? "fix-200.c builds"
P2=$PATCH_ID

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)

run_liveup apply "$pid" "$T/p1.lpo"
ok $LU_RC "apply patch 1"
behaves 0 100
ok $? "patch 1: x + 100"
run_liveup apply "$pid" "$T/p2.lpo"
ok $LU_RC "apply patch 2 on top of patch 1"
behaves 0 200
ok $? "patch 2 on top: x + 200"
[ "$(listed "$pid")" = "$P1 $P2" ]
ok $? "patches lists patch 1 then patch 2"
run_liveup patches "$pid"
[ "$(sed -n 1p "$T/lu.out")" = "pid $pid: 2 patches" ] && [ "$(grep -c '^    compute ' "$T/lu.out")" -eq 2 ]
ok $? "patches (text): 2 patches, each replacing compute"

run_liveup revert "$pid" "$P1"
check "revert of patch 1 under patch 2: exit 1, one line" refused_with 1
check "... the message names both and says to revert the top one first" \
        said "patch '$P1' of pid $pid is under patch '$P2' (both replace 'compute'); revert that one first"
behaves 0 200
ok $? "... behaviour still patch 2's"
[ "$(listed "$pid")" = "$P1 $P2" ]
ok $? "... both patches still listed"

run_liveup apply "$pid" "$T/p1.lpo"
check "patch 1 applied again: exit 1, one line" refused_with 1
check "... the message says it is applied" said "patch '$P1' is already applied to pid $pid"
behaves 0 200
ok $? "... behaviour unchanged"

run_liveup revert "$pid"
[ $LU_RC -eq 0 ] && grep -q "^reverted $P2 in pid $pid" "$T/lu.out"
ok $? "revert without an id takes the top one (patch 2)"
behaves 0 100
ok $? "patch 1's behaviour is back"
[ "$(listed "$pid")" = "$P1" ]
ok $? "patches lists patch 1 only"
run_liveup revert "$pid"
[ $LU_RC -eq 0 ] && grep -q "^reverted $P1 in pid $pid" "$T/lu.out"
ok $? "revert again takes patch 1"
behaves 0 1
ok $? "the original behaviour is back"
run_liveup revert "$pid"
check "revert with nothing applied: exit 1, one line" refused_with 1
check "... the message says so" said "no liveup patch is applied to pid $pid"

# Revert by id, top first; an id that is not applied.
run_liveup apply "$pid" "$T/p1.lpo"
run_liveup apply "$pid" "$T/p2.lpo"
behaves 0 200
ok $? "both applied again: x + 200"
run_liveup revert "$pid" no-such-patch
check "revert of an id that is not applied: exit 1, one line" refused_with 1
check "... naming it" said "patch 'no-such-patch' is not applied to pid $pid"
run_liveup revert "$pid" "$P2"
ok $LU_RC "revert patch 2 by id"
behaves 0 100
ok $? "... patch 1's behaviour"
run_liveup revert "$pid" "$P1"
ok $LU_RC "revert patch 1 by id"
behaves 0 1
ok $? "... the original"

# revert --all: most recent first.
run_liveup apply "$pid" "$T/p1.lpo"
run_liveup apply "$pid" "$T/p2.lpo"
run_liveup revert --all "$pid"
[ $LU_RC -eq 0 ] && [ "$(sed -n 's/^reverted \([^ ]*\) in pid .*/\1/p' "$T/lu.out" | tr '\n' ' ')" = "$P2 $P1 " ]
ok $? "revert --all reverts patch 2 then patch 1"
behaves 0 1
ok $? "... the original"
run_liveup patches "$pid"
[ "$(cat "$T/lu.out")" = "pid $pid: no patches" ]
ok $? "... nothing listed"

# The same in JSON, options after the operands as the usage writes them.
run_liveup apply "$pid" "$T/p1.lpo" --json
ok $LU_RC "apply PID FILE --json (options after the operands)"
run_liveup apply "$pid" "$T/p2.lpo" --timeout 2
ok $LU_RC "apply PID FILE --timeout 2 (options after the operands)"
run_liveup revert "$pid" --all --json
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
if d['pid'] != $pid or d['ok'] is not True: fail('pid/ok %s' % d)
if [r['patch'] for r in d['reverted']] != ['$P2', '$P1']: fail('order %s' % d['reverted'])
"
ok $? "revert PID --all --json: both, most recent first"
behaves 0 1
ok $? "... the original"
run_liveup patches "$pid" --json
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
if d['processes'][0]['patches'] != []: fail('still %s' % d)
"
ok $? "patches PID --json: no patches left"

# A revert by id of a patch under another (on other functions), killed
# midway: the next liveup completes it although it is not on top.
build_patch ptag fix-tag lpt-pie-o2
ok $? "fix-tag.c builds"
run_liveup apply "$pid" "$T/p1.lpo"
run_liveup apply "$pid" "$T/ptag.lpo"
ok $LU_RC "patch 1 (compute) then fix-tag (lpt_tag) on top"
LIVEUP_TEST_CRASH=mid-revert "$LIVEUP" revert "$pid" "$P1" > /dev/null 2>&1
[ $? -eq 137 ]
ok $? "revert of patch 1 (under fix-tag) killed midway, threads stopped"
states() {
        "$LIVEUP" patches --json "$pid" | "$PYTHON" -c '
import json, sys
print(" ".join(p["state"] for p in json.load(sys.stdin)["processes"][0]["patches"]))'
}
[ "$(states)" = "reverting applied" ]
ok $? "patches shows patch 1 reverting under fix-tag ($(states))"
run_liveup revert "$pid"
ok $LU_RC "the next revert (of the top one) runs"
behaves 0 1
ok $? "... patch 1's revert was completed: the original compute"
[ -z "$(states)" ]
ok $? "... and fix-tag reverted: nothing listed"

check "victim alive and untraced" untraced "$pid"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

done_testing
