#!/bin/sh
# Arenas: the first patch near the target object maps an arena (code r-x,
# data rw-) in its preparation window; later patches are carved from it
# with no remote call and no window but the switch's (apply --json:
# remote_calls 0, prepare_us 0, one stop); their code lies inside the
# arena's mapping and the process gains no mapping. Reverting frees the
# space (a registry write, no munmap) and the next patch that fits reuses
# it, at the same address. A patch with data of its own gets both parts
# from the arena; one too large for it is mapped apart, as before arenas,
# and unmapped on revert. Every patch works, whatever the order of
# reverts. Last, the registry's version: an unknown one is refused with a
# message that says so; a version 1 registry (no arenas) is read and
# upgraded.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 52

# jget FILE EXPR: EXPR of the first process of apply --json output FILE
# (as `p`); a tuple prints as its items, space-separated.
jget() {
        "$PYTHON" -c '
import json, sys
p = json.load(open(sys.argv[1]))["processes"][0]
v = eval(sys.argv[2])
print(" ".join(str(x) for x in v) if isinstance(v, tuple) else v)' "$1" "$2"
}

# What the last "check" said the tag is.
tag_is() {
        victim_ask 0 check || return 1
        [ "$(field "$REPLY" tag)" = "$1" ] || {
                diag "victim 0: expected tag=$1, got: $REPLY"
                return 1
        }
}

nmaps() {
        wc -l < /proc/"$1"/maps
}

# perms_at PID ADDR: the permissions of the mapping that holds ADDR (hex).
perms_at() {
        "$PYTHON" - "$1" "$2" <<'PY'
import sys
a = int(sys.argv[2], 16)
for l in open("/proc/%s/maps" % sys.argv[1]):
    f = l.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if lo <= a < hi:
        print(f[1])
PY
}

build_patch p100 fix-100 lpt-pie-o2
ok $? "fix-100.c builds"
P100=$PATCH_ID
build_patch ptag fix-tag lpt-pie-o2
ok $? "fix-tag.c builds"
PTAG=$PATCH_ID
build_patch p200 fix-200 lpt-pie-o2
ok $? "fix-200.c builds"
build_patch pdata fix-data lpt-pie-o2
ok $? "fix-data.c builds"
build_patch pbig fix-big lpt-pie-o2
ok $? "fix-big.c builds"
PBIG=$PATCH_ID

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)

# --- A: the first patch maps the arena -------------------------------------
run_liveup apply --json "$pid" "$T/p100.lpo"
ok $LU_RC "A (fix-100): applied"
cp "$T/lu.out" "$T/a.json"
[ "$(jget "$T/a.json" 'p["in_arena"], p["arena_created"], p["remote_calls"] > 0, p["prepare_us"] > 0')" = "True True True True" ]
ok $? "A: maps the arena, in a preparation window (remote calls)"
behaves 0 100
ok $? "A: compute(x) is x + 100"
run_liveup patches --json "$pid"
cp "$T/lu.out" "$T/patches.json"
arena=$("$PYTHON" -c '
import json, sys
a = json.load(open(sys.argv[1]))["processes"][0]["arenas"]
print(a[0]["code"], a[0]["code_size"], a[0]["data"], a[0]["data_size"], len(a))' "$T/patches.json")
set -- $arena
ar_code=$1 ar_code_size=$2 ar_data=$3 ar_data_size=$4 ar_n=$5
[ "$ar_n" = 1 ] && [ "$ar_code_size" -ge 1048576 ] && [ "$ar_data_size" -ge 1048576 ]
ok $? "patches --json shows one arena ($ar_code, code $ar_code_size bytes, data $ar_data_size)"
[ "$(perms_at "$pid" "$ar_code")" = r-xp ] && [ "$(perms_at "$pid" "$ar_data")" = rw-p ]
ok $? "the arena is mapped: code r-x, data rw-"
maps_a=$(nmaps "$pid")

# --- B: carved from the arena, one stop window, no remote call -------------
run_liveup apply --json "$pid" "$T/ptag.lpo"
ok $LU_RC "B (fix-tag): applied"
cp "$T/lu.out" "$T/b.json"
[ "$(jget "$T/b.json" 'p["in_arena"], p["arena_created"], p["remote_calls"]')" = "True False 0" ]
ok $? "B: carved from the arena, no remote syscall or call"
[ "$(jget "$T/b.json" 'p["prepare_us"], p["stops"], p["attempts"]')" = "0 1 1" ]
ok $? "B: no preparation window, one stop window in all ($(jget "$T/b.json" 'p["stops"]'))"
b_img=$(jget "$T/b.json" 'p["image"]')
"$PYTHON" -c '
import sys
b, lo, size = int(sys.argv[1], 16), int(sys.argv[2], 16), int(sys.argv[3])
a = int(sys.argv[4], 16)
sys.exit(0 if lo <= b < lo + size and b != a else 1)' "$b_img" "$ar_code" "$ar_code_size" \
        "$(jget "$T/a.json" 'p["image"]')"
ok $? "B's code ($b_img) lies in the arena's code part, apart from A's"
[ "$(perms_at "$pid" "$b_img")" = r-xp ]
ok $? "B's code is in an r-x mapping of /proc/$pid/maps"
[ "$(nmaps "$pid")" -eq "$maps_a" ]
ok $? "B added no mapping ($maps_a before and after)"
tag_is 42
ok $? "B works: lpt_tag() is 42"
behaves 0 100
ok $? "A still works: x + 100"

# --- Revert A (under B in time, another function): its space is free ------
run_liveup revert "$pid" "$P100"
ok $LU_RC "revert A by id, B stays"
behaves 0 1
ok $? "compute(x) is x + 1 again"
tag_is 42
ok $? "B still works"
[ "$(nmaps "$pid")" -eq "$maps_a" ]
ok $? "revert unmapped nothing"
run_liveup apply --json "$pid" "$T/p200.lpo"
ok $LU_RC "C (fix-200): applied"
cp "$T/lu.out" "$T/c.json"
[ "$(jget "$T/c.json" 'p["image"]')" = "$(jget "$T/a.json" 'p["image"]')" ]
ok $? "C reuses A's space, at A's address ($(jget "$T/c.json" 'p["image"]'))"
[ "$(jget "$T/c.json" 'p["in_arena"], p["remote_calls"], p["prepare_us"]')" = "True 0 0" ]
ok $? "C: no remote call, no preparation window"
behaves 0 200
ok $? "C works: x + 200"

# --- D: a patch with data of its own, both parts from the arena ------------
run_liveup apply --json "$pid" "$T/pdata.lpo"
ok $LU_RC "D (fix-data, on top of C): applied"
cp "$T/lu.out" "$T/d.json"
[ "$(jget "$T/d.json" 'p["in_arena"], p["remote_calls"], p["prepare_us"]')" = "True 0 0" ]
ok $? "D: in the arena, no remote call, no preparation window"
d_data=$(jget "$T/d.json" 'p["data"]')
[ "$d_data" = "$ar_data" ] && [ "$(perms_at "$pid" "$d_data")" = rw-p ] &&
        [ "$(perms_at "$pid" "$(jget "$T/d.json" 'p["image"]')")" = r-xp ]
ok $? "D: code in the arena's r-x part, data ($d_data) at the start of its rw- part"
behaves 0 400
ok $? "D works: x + 400 (its own statics)"
[ "$(nmaps "$pid")" -eq "$maps_a" ]
ok $? "still no new mapping"

# --- E: too large for the arena: mapped apart, unmapped on revert ----------
run_liveup revert "$pid" "$PTAG"
ok $LU_RC "revert B"
tag_is 0
ok $? "lpt_tag() is 0 again"
run_liveup apply --json "$pid" "$T/pbig.lpo"
ok $LU_RC "E (fix-big, 3 MiB of data): applied"
cp "$T/lu.out" "$T/e.json"
[ "$(jget "$T/e.json" 'p["in_arena"], p["arena_created"], p["remote_calls"] > 0')" = "False False True" ]
ok $? "E: mappings of its own (remote mmap), no new arena"
tag_is 43
ok $? "E works: lpt_tag() is 43"
[ "$(nmaps "$pid")" -gt "$maps_a" ]
ok $? "E's mappings are in /proc/$pid/maps"
run_liveup revert "$pid" "$PBIG"
[ $LU_RC -eq 0 ] && tag_is 0 && [ "$(nmaps "$pid")" -eq "$maps_a" ]
ok $? "revert E: lpt_tag() is 0, its mappings are gone"

# --- Revert the rest, in order ----------------------------------------------
run_liveup revert "$pid"
ok $LU_RC "revert D (the top)"
behaves 0 200
ok $? "C's behaviour is back"
run_liveup revert "$pid"
ok $LU_RC "revert C"
behaves 0 1
ok $? "the original behaviour is back"
run_liveup patches --json "$pid"
json_check "$T/lu.out" "
p = d['processes'][0]
if p['patches']: fail('patches %s' % p['patches'])
a = p['arenas']
if len(a) != 1 or a[0]['code'] != '$ar_code': fail('arenas %s' % a)
if a[0]['code_free'] != a[0]['code_size'] or a[0]['data_free'] != a[0]['data_size']:
    fail('not all free: %s' % a)
"
ok $? "no patch, the arena stays, all of it free"
[ "$(nmaps "$pid")" -eq "$maps_a" ]
ok $? "the map is as after A"

# --- The registry's version -------------------------------------------------
# Its header: magic (8), version (4) at 8, ..., arena_size (4) at 40,
# n_arenas (4) at 44 and n_warm (4) at 48. poke OFFSET VALUE writes a
# 32-bit value there.
reg=$(sed -n 's/^\([0-9a-f]*\)-.*\/memfd:liveup.*/\1/p' /proc/"$pid"/maps | head -n 1)
poke() {
        "$PYTHON" - "$pid" "$reg" "$1" "$2" <<'PY' 2>/dev/null
import struct, sys
with open("/proc/%s/mem" % sys.argv[1], "r+b", buffering=0) as f:
    f.seek(int(sys.argv[2], 16) + int(sys.argv[3]))
    f.write(struct.pack("<I", int(sys.argv[4])))
PY
}
# The pcs the last window's unwinds met, a hint for the next run.
"$PYTHON" - "$pid" "$reg" <<'PY'
import struct, sys
with open("/proc/%s/mem" % sys.argv[1], "rb", buffering=0) as f:
    f.seek(int(sys.argv[2], 16) + 48)
    n = struct.unpack("<I", f.read(4))[0]
sys.exit(0 if 0 < n <= 256 else 1)
PY
ok $? "the registry keeps the pcs the last stop window met, for the next run's unwinder"
if [ -n "$reg" ] && poke 8 7; then
        run_liveup patches "$pid"
        refused_with 1 && said "its liveup registry is of version 7, which this liveup does not know"
        ok $? "a registry of an unknown version is refused, and the message says so"
        run_liveup apply "$pid" "$T/p100.lpo"
        refused_with 1
        ok $? "... apply refuses it too"
        # Version 1: what a liveup before arenas wrote (those bytes 0).
        poke 8 1 && poke 40 0 && poke 44 0 && poke 48 0
        run_liveup apply --json "$pid" "$T/p100.lpo"
        [ $LU_RC -eq 0 ] && [ "$(jget "$T/lu.out" 'p["arena_created"]')" = True ]
        ok $? "a version 1 registry is read (no arenas): apply maps a new arena"
        behaves 0 100
        ok $? "... and the patch works"
        "$PYTHON" - "$pid" "$reg" <<'PY'
import struct, sys
with open("/proc/%s/mem" % sys.argv[1], "rb", buffering=0) as f:
    f.seek(int(sys.argv[2], 16) + 8)
    sys.exit(0 if struct.unpack("<I", f.read(4))[0] == 2 else 1)
PY
        ok $? "... and the registry is version 2 again"
else
        for t in 1 2 3 4 5; do
                skip "registry version tests" "cannot write /proc/$pid/mem"
        done
fi

check "the victim is alive and untraced" untraced "$pid"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

done_testing
