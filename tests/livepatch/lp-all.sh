#!/bin/sh
# apply --all: three processes of one binary get the patch, a fourth
# process of another binary is left alone, never attached to, though its
# file has the same name (a copy of the -O0 build named lpt-pie-o2: the
# build-id tells them apart); `patches` (no pid) lists the
# three and not the fourth; --json reports each process; applying again
# refuses each one (exit 1) without changing them; a patch whose target
# no process runs is refused with one line.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 21

# The fourth victim: stdin from a FIFO on fd 9, stdout to a file (lib.sh
# has FIFO pairs for three victims; dash has single-digit fds only).
other_pid=
holder_pid=
other_lines=0
other_start() {
        mkfifo "$T/in.3" || return 1
        mkdir -p "$T/other" && cp "$LIVEUP_VICTIM_DIR/$1" "$T/other/$2" || return 1
        ${V_NICE:+nice -n "$V_NICE"} "$T/other/$2" < "$T/in.3" > "$T/out.3" \
                2> "$T/err.3" &
        other_pid=$!
        exec 9> "$T/in.3"
        other_wait_line
}
# Wait (bounded, about 10 s) for one more line in $T/out.3; it goes to $REPLY.
other_wait_line() {
        i=0
        while [ $i -lt 200 ]; do
                n=$(lines "$T/out.3")
                if [ "$n" -gt "$other_lines" ]; then
                        other_lines=$((other_lines + 1))
                        REPLY=$(sed -n "${other_lines}p" "$T/out.3")
                        return 0
                fi
                sleep 0.05
                i=$((i + 1))
        done
        return 1
}
other_behaves() {
        echo check >&9 && other_wait_line || return 1
        [ "$(field "$REPLY" now)" = "$1" ] && [ "$(field "$REPLY" seen)" = "$1" ] || {
                diag "other victim: expected delta $1, got: $REPLY"
                return 1
        }
}
cleanup_other() {
        [ -n "$holder_pid" ] && kill "$holder_pid" 2> /dev/null
        if [ -n "$other_pid" ]; then
                kill -9 "$other_pid" 2> /dev/null
                wait "$other_pid" 2> /dev/null
        fi
        cleanup
}
trap cleanup_other EXIT

build_patch fix-100 fix-100 lpt-pie-o2
ok $? "fix-100.c builds for lpt-pie-o2"
P=$PATCH_ID

for v in 0 1 2; do
        victim_start $v lpt-pie-o2
        victim_wait_ready $v
done
other_start lpt-pie-o0 lpt-pie-o2
[ "$REPLY" = ready ]
ok $? "three lpt-pie-o2 and one lpt-pie-o0 ready"
p0=$(victim_pid 0)
p1=$(victim_pid 1)
p2=$(victim_pid 2)

# Something else traces the fourth process (as a debugger would): an
# attach to it would fail, so apply --all must not even try.
"$PYTHON" -c '
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(0x4206, int(sys.argv[1]), 0, 0) != 0:  # PTRACE_SEIZE
    sys.exit(1)
print("seized", flush=True)
time.sleep(600)' "$other_pid" > "$T/holder.out" &
holder_pid=$!
i=0
while [ ! -s "$T/holder.out" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
run_liveup apply --all "$T/fix-100.lpo"
ok $LU_RC "apply --all exits 0 (the same-named process of another build, traced by another tracer, is not attached to)"
kill "$holder_pid" 2> /dev/null
wait "$holder_pid" 2> /dev/null
for p in $p0 $p1 $p2; do
        grep -q "^applied $P to pid $p: 1 function" "$T/lu.out" || {
                diag "no line for pid $p in: $(cat "$T/lu.out")"
                false
        }
done
ok $? "... one line for each of the three"
[ "$(lines "$T/lu.out")" -eq 3 ]
ok $? "... and no other line"
for v in 0 1 2; do
        behaves $v 100
        ok $? "victim $v: x + 100"
done
other_behaves 1
ok $? "the lpt-pie-o0 process: still x + 1"
check "the lpt-pie-o0 process: no patches, no registry, untraced" pid_untouched "$other_pid"

run_liveup patches
for p in $p0 $p1 $p2; do
        grep -q "^pid $p: 1 patch$" "$T/lu.out" || false
done
ok $? "patches (every process) lists the three"
! grep -q "^pid $other_pid:" "$T/lu.out"
ok $? "... and not the fourth"
run_liveup patches --json
json_check "$T/lu.out" "
ours = {$p0, $p1, $p2}
seen = {p['pid']: [x['id'] for x in p['patches']] for p in d['processes']}
for p in ours:
    if seen.get(p) != ['$P']: fail('pid %d: %s' % (p, seen.get(p)))
if $other_pid in seen: fail('the fourth process is listed')
"
ok $? "patches --json (every process): the three, each with the patch"

run_liveup apply --all "$T/fix-100.lpo"
[ $LU_RC -eq 1 ] && [ ! -s "$T/lu.out" ] && [ "$(grep -c "is already applied" "$T/lu.err")" -eq 3 ]
ok $? "apply --all again: exit 1, one line per process (already applied)"
for v in 0 1 2; do
        behaves $v 100 || false
done
ok $? "... all three unchanged"

for p in $p0 $p1 $p2; do
        "$LIVEUP" revert "$p" > /dev/null || false
done
ok $? "revert in each"

run_liveup apply --all --json "$T/fix-100.lpo"
[ $LU_RC -eq 0 ] && json_check "$T/lu.out" "
if d['patch'] != '$P': fail('patch %s' % d.get('patch'))
got = sorted(p['pid'] for p in d['processes'] if p['applied'])
if got != sorted([$p0, $p1, $p2]) or len(d['processes']) != 3: fail('processes %s' % d['processes'])
"
ok $? "apply --all --json: one document, the three processes applied"
for v in 0 1 2; do
        behaves $v 100 || false
done
ok $? "... all three x + 100"
for p in $p0 $p1 $p2; do
        "$LIVEUP" revert "$p" > /dev/null || false
done
other_behaves 1
ok $? "the lpt-pie-o0 process: still x + 1"

# Nobody runs lpt-nopie-o2.
build_patch fix-100-nopie fix-100 lpt-nopie-o2
run_liveup apply --all "$T/fix-100-nopie.lpo"
check "apply --all of a patch for a binary nobody runs: exit 1, one line" refused_with 1
check "... saying so" said "no running process has"

done_testing
