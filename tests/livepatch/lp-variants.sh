#!/bin/sh
# apply, patches and revert on every build of the target: PIE -O0, PIE
# -O2, non-PIE -O2, and compute() in a shared library. On each: the patch
# changes what every thread gets (the workers' and the main thread's
# calls), it reads the target's static lpt_offset and keeps counting in
# its static lpt_calls, it calls libc; `patches` shows it (text and
# JSON); revert brings the original back; the process lives on and exits
# normally. Then: a patch whose libc calls are GNU indirect functions, a
# patch with data of its own (two mappings: code r-x, data rw-), a
# patch calling into another object of the process (liblpt.so from the
# executable), and the --json output of apply and revert.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 74

# variant PROGRAM TARGET: 13 tests.
variant() {
        prog=$1
        target=$2
        build_patch "fix-100-$prog" fix-100 "$target"
        ok $? "$prog: liveup build --replace fix-100.c --target $target"
        pid_patch=$PATCH_ID
        victim_start 0 "$prog"
        victim_wait_ready 0
        pid=$(victim_pid 0)
        behaves 0 1
        ok $? "$prog: compute(x) is x + 1 before the patch"

        run_liveup apply "$pid" "$T/fix-100-$prog.lpo"
        [ $LU_RC -eq 0 ] && [ "$(applied_id)" = "$pid_patch" ] && [ ! -s "$T/lu.err" ]
        ok $? "$prog: apply exits 0 and reports patch $pid_patch"
        behaves 0 100
        ok $? "$prog: compute(x) is x + 100 in every thread (the target's static and libc)"
        calls1=$(field "$CHECK" calls)
        behaves 0 100
        calls2=$(field "$CHECK" calls)
        [ -n "$calls1" ] && [ -n "$calls2" ] && [ "$calls2" -gt "$calls1" ]
        ok $? "$prog: the patch counts in the target's static ($calls1 -> $calls2)"

        run_liveup patches "$pid"
        [ $LU_RC -eq 0 ] && [ "$(sed -n 1p "$T/lu.out")" = "pid $pid: 1 patch" ] &&
                sed -n 2p "$T/lu.out" | grep -q "^  $pid_patch  (fix-100-$prog) on .*/$target, applied " &&
                sed -n 3p "$T/lu.out" | grep -q '^    compute  0x[0-9a-f]* -> 0x[0-9a-f]*$'
        ok $? "$prog: liveup patches lists the patch and compute"
        run_liveup patches --json "$pid"
        json_check "$T/lu.out" "
procs = d['processes']
if len(procs) != 1 or procs[0]['pid'] != $pid: fail('processes %s' % procs)
ps = procs[0]['patches']
if [p['id'] for p in ps] != ['$pid_patch']: fail('patches %s' % ps)
p = ps[0]
if not p['target'].endswith('/$target'): fail('target %s' % p['target'])
if len(p['build_id']) != 40: fail('build_id %s' % p['build_id'])
fs = p['functions']
if [f['name'] for f in fs] != ['compute']: fail('functions %s' % fs)
if int(fs[0]['address'], 16) == int(fs[0]['replacement'], 16): fail('no replacement')
if int(p['image'], 16) == 0 or p['image_size'] <= 0: fail('image %s' % p)
"
        ok $? "$prog: liveup patches --json describes the patch"
        python3 - "$T/lu.out" /proc/"$pid"/maps <<'PY'
import json, sys
img = int(json.load(open(sys.argv[1]))['processes'][0]['patches'][0]['image'], 16)
maps = [l.split() for l in open(sys.argv[2])]
code = [m for m in maps if int(m[0].split('-')[0], 16) == img]
wx = [m for m in maps if 'w' in m[1] and 'x' in m[1]]
sys.exit(0 if len(code) == 1 and code[0][1] == 'r-xp' and not wx else 1)
PY
        ok $? "$prog: the patch code is mapped r-x, and nothing in the process is writable and executable"

        run_liveup revert "$pid"
        [ $LU_RC -eq 0 ] && grep -q "^reverted $pid_patch in pid $pid: 1 function" "$T/lu.out"
        ok $? "$prog: revert exits 0 and names the patch"
        behaves 0 1
        ok $? "$prog: compute(x) is x + 1 again after revert"
        run_liveup patches "$pid"
        [ $LU_RC -eq 0 ] && [ "$(cat "$T/lu.out")" = "pid $pid: no patches" ]
        ok $? "$prog: liveup patches says no patches"
        check "$prog: victim alive and untraced" untraced "$pid"
        victim_say 0 quit
        victim_end 0
        ok "$V_STATUS" "$prog: victim exits 0"
}

variant lpt-pie-o0 lpt-pie-o0
variant lpt-pie-o2 lpt-pie-o2
variant lpt-nopie-o2 lpt-nopie-o2
variant lpt-shared liblpt.so

# GNU indirect functions: strlen and memcpy in glibc are IFUNC symbols;
# the patch must call what they resolve to, not the resolver.
build_patch fix-ifunc fix-ifunc lpt-pie-o2
ok $? "fix-ifunc.c builds"
victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)
export LIVEUP_DEBUG=1
run_liveup apply "$pid" "$T/fix-ifunc.lpo"
unset LIVEUP_DEBUG
ok $LU_RC "fix-ifunc: apply exits 0"
grep -q "ifunc 'strlen' is 0x[0-9a-f]* (its IRELATIVE slot)" "$T/lu.err" &&
        grep -q "ifunc 'memcpy' is 0x[0-9a-f]* (its IRELATIVE slot)" "$T/lu.err" &&
        ! grep -q "by its resolver" "$T/lu.err"
ok $? "fix-ifunc: strlen and memcpy read from libc's IRELATIVE slots (no resolver run in the target)"
behaves 0 300
ok $? "fix-ifunc: compute(x) is x + 300 (strlen and memcpy are glibc's implementations)"
run_liveup revert --json "$pid"
json_check "$T/lu.out" "
if d['pid'] != $pid or d['ok'] is not True: fail('pid/ok %s' % d)
r = d['reverted']
if len(r) != 1 or r[0]['patch'] != '$PATCH_ID' or r[0]['functions'] != 1: fail('reverted %s' % r)
if r[0]['attempts'] < 1 or r[0]['held_max_us'] < 0: fail('timings %s' % r)
"
ok $? "revert --json: one document naming the patch"
behaves 0 1
ok $? "fix-ifunc: reverted"
# The other way, for an IFUNC without a slot: its resolver is called in
# the target (forced here by a test-only switch).
export LIVEUP_DEBUG=1 LIVEUP_TEST_IFUNC=resolver
run_liveup apply "$pid" "$T/fix-ifunc.lpo"
unset LIVEUP_DEBUG LIVEUP_TEST_IFUNC
[ $LU_RC -eq 0 ] && grep -q "ifunc 'strlen' resolved to 0x[0-9a-f]* (by its resolver)" "$T/lu.err"
ok $? "fix-ifunc: applied again, strlen resolved by calling its resolver in the target"
behaves 0 300
ok $? "fix-ifunc: compute(x) is x + 300 again"
run_liveup revert "$pid"
behaves 0 1
ok $? "fix-ifunc: reverted again"

# A patch with data of its own (.data and .bss, written on every call):
# its code r-x, its data rw-, nothing both. Both come from the arena the
# first patch of this process mapped (the data part apart from the code).
build_patch fix-data fix-data lpt-pie-o2
ok $? "fix-data.c builds"
run_liveup apply --json "$pid" "$T/fix-data.lpo"
[ $LU_RC -eq 0 ]
ok $? "fix-data: apply exits 0"
behaves 0 400
ok $? "fix-data: compute(x) is x + 400 (the patch writes its own statics)"
"$PYTHON" - "$T/lu.out" /proc/"$pid"/maps <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))['processes'][0]
img, data = int(p['image'], 16), int(p['data'], 16)
maps = [l.split() for l in open(sys.argv[2])]
def perms(a):
    for m in maps:
        lo, hi = (int(x, 16) for x in m[0].split('-'))
        if lo <= a < hi:
            return m[1]
wx = [m for m in maps if 'w' in m[1] and 'x' in m[1]]
ok = perms(img) == 'r-xp' and perms(data) == 'rw-p' and not wx
ok = ok and p['in_arena'] and not p['arena_created'] and p['remote_calls'] == 0
sys.exit(0 if ok else 1)
PY
ok $? "fix-data: code r-x, data rw- apart, both in the arena (no remote call); nothing writable and executable"
run_liveup revert "$pid"
behaves 0 1
ok $? "fix-data: reverted"

# apply --json.
build_patch fix-100-json fix-100 lpt-pie-o2
run_liveup apply --json "$pid" "$T/fix-100-json.lpo"
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
if d['patch'] != '$PATCH_ID': fail('patch %s' % d.get('patch'))
ps = d['processes']
if len(ps) != 1: fail('processes %s' % ps)
p = ps[0]
if p['pid'] != $pid or p['applied'] is not True: fail('pid/applied %s' % p)
if p['functions'] != 1 or p['attempts'] < 1: fail('functions/attempts %s' % p)
if not (0 < p['held_max_us'] <= p['held_total_us'] <= p['total_us']): fail('timings %s' % p)
if int(p['image'], 16) == 0: fail('image %s' % p)
"
ok $? "apply --json: one document with the process, the patch and the timings"
behaves 0 100
ok $? "apply --json: applied"
run_liveup revert "$pid"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

# A patch of the executable that calls a function of liblpt.so.
build_patch fix-tag fix-tag lpt-shared
ok $? "fix-tag.c builds for lpt-shared (lpt_extra is in liblpt.so)"
victim_start 0 lpt-shared
victim_wait_ready 0
pid=$(victim_pid 0)
run_liveup apply "$pid" "$T/fix-tag.lpo"
ok $LU_RC "fix-tag: apply exits 0"
victim_ask 0 check
[ "$(field "$REPLY" tag)" = 42 ]
ok $? "fix-tag: lpt_tag() returns liblpt.so's lpt_extra() ($REPLY)"
run_liveup revert "$pid"
victim_ask 0 check
[ $LU_RC -eq 0 ] && [ "$(field "$REPLY" tag)" = 0 ]
ok $? "fix-tag: reverted"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

done_testing
