#!/bin/sh
# Every refusal of apply (and revert) exits 1 with one line on stderr that
# names the process and the reason, prints nothing on stdout, and leaves
# the target as it was: the same behaviour, `liveup patches` says no
# patches, no "/memfd:liveup" registry left after a refused first apply,
# the same memory map, no tracer. Refusals: wrong build-id, function bytes
# that differ from the build (same build-id), a function busy on a stack
# until the timeout (apply and revert), a function too short for the
# jump (refused by the builder; and by apply itself, given a patch file
# edited to claim a short function), a symbol not found at apply time,
# no permission, the process exiting or killed mid-way, a pid that is
# gone.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 68

# After a refused first apply: exit 1, one line, the behaviour (delta
# $2) and the map as they were, nothing applied. $1: the victim id.
untouched_after_refusal() {
        v=$1
        delta=$2
        what=$3
        vp=$(victim_pid "$v")
        check "$what: exit 1, one line on stderr, nothing on stdout" refused_with 1
        check "$what: the message names pid $vp" said "pid $vp"
        behaves "$v" "$delta"
        ok $? "$what: behaviour unchanged (x + $delta)"
        check "$what: no patches, no registry mapping, untraced" pid_untouched "$vp"
        maps_of "$vp" > "$T/maps.after"
        cmp -s "$T/maps.before" "$T/maps.after"
        ok $? "$what: memory map unchanged"
}

# Elapsed wall time of a command, in ms, into $ELAPSED_MS.
timed_liveup() {
        t0=$(date +%s%N)
        run_liveup "$@"
        ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
}

build_patch fix-100 fix-100 lpt-pie-o2
ok $? "fix-100.c builds for lpt-pie-o2"
build_patch fix-100-o0 fix-100 lpt-pie-o0
ok $? "fix-100.c builds for lpt-pie-o0"
build_patch fix-wait fix-wait lpt-pie-o2
ok $? "fix-wait.c builds for lpt-pie-o2"
WAIT_ID=$PATCH_ID

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)
maps_of "$pid" > "$T/maps.before"

# Wrong build-id: a patch for another binary.
run_liveup apply "$pid" "$T/fix-100-o0.lpo"
untouched_after_refusal 0 1 "wrong build-id"
check "wrong build-id: the message says which build-id is missing" said "has no object with build-id"

# Busy: a thread parked inside wait_here().
victim_ask 0 block
tid=$(field "$REPLY" tid)
[ -n "$tid" ]
ok $? "a thread of the victim is blocked inside wait_here() ($REPLY)"
maps_of "$pid" > "$T/maps.before"
timed_liveup apply --timeout 0.5 "$pid" "$T/fix-wait.lpo"
untouched_after_refusal 0 1 "busy function"
check "busy function: the message names the function and the thread" \
        said "refusing to patch pid $pid: function 'wait_here' is on the stack of thread $tid (\"blocker\"); retried for "
[ "$ELAPSED_MS" -lt 4500 ]
ok $? "busy function: refused after the 0.5 s timeout, not the default 5 s ($ELAPSED_MS ms)"
# Each retry begins with a probe (threads stopped alone, each stack
# checked): a probe that finds wait_here() busy backs off at once,
# without a stop of the whole process. The first probe has only 2 ms
# and may not reach the blocker on a loaded machine (then a window finds
# it); the later ones have 50 ms. So the process as a whole was stopped
# for the check at most twice: that first try and the last, deciding
# one before the timeout (the other stops are the first patch's
# preparation, which maps the arena, and its undoing); the probes in
# between all found it busy.
run_liveup apply --json --timeout 0.3 "$pid" "$T/fix-wait.lpo"
check "busy function, --json: at most two whole-process checks, the probes found it busy" json_check "$T/lu.out" "
p = d['processes'][0]
if p['applied']: fail('applied')
if not 1 <= p['attempts'] <= 2: fail('attempts %d' % p['attempts'])
if p['probes'] < 2: fail('probes %d' % p['probes'])
if p['probes_busy'] < p['probes'] - 1: fail('probes %d busy %d' % (p['probes'], p['probes_busy']))
if p['attempts'] + p['probes_busy'] < p['probes']: fail('attempts %d probes %d busy %d' % (p['attempts'], p['probes'], p['probes_busy']))
if 'wait_here' not in p['error']: fail(p['error'])
"

# No permission: liveup as nobody against a root process.
chmod 755 "$T"
chmod 644 "$T/fix-wait.lpo" "$T/fix-100.lpo"
as_nobody() {
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$LIVEUP" "$@" \
                > "$T/lu.out" 2> "$T/lu.err"
        LU_RC=$?
        diag "liveup $* as nobody -> $LU_RC: $(head -c 300 "$T/lu.err" | tr '\n' ' ')"
}
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null 2>&1; then
        as_nobody apply "$pid" "$T/fix-100.lpo"
        untouched_after_refusal 0 1 "no permission"
else
        for i in 1 2 3 4 5; do
                skip "no permission" "needs root and setpriv"
        done
fi

# The same thread let out: the same patch goes in (the refusal was for
# the stack). Then parked again, now inside the replacement: revert is
# refused for the same reason, and leaves the patch in.
victim_ask 0 unblock
[ "$REPLY" = unblocked ]
ok $? "the blocked thread leaves wait_here()"
run_liveup apply --timeout 5 "$pid" "$T/fix-wait.lpo"
ok $LU_RC "with no thread inside, the same patch applies"
victim_ask 0 block
timed_liveup revert --timeout 0.5 "$pid"
check "busy revert: exit 1, one line on stderr, nothing on stdout" refused_with 1
check "busy revert: the message names the patch, the function and the thread" \
        said "refusing to revert patch '$WAIT_ID' of pid $pid: function 'wait_here' is on the stack of thread $tid (\"blocker\")"
run_liveup patches "$pid"
grep -q "^  $WAIT_ID " "$T/lu.out"
ok $? "busy revert: the patch is still applied"
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null 2>&1; then
        as_nobody revert "$pid"
        check "revert as nobody: exit 1, one line on stderr, nothing on stdout" refused_with 1
        as_nobody patches "$pid"
        check "patches PID as nobody: exit 1, one line on stderr, nothing on stdout" refused_with 1
else
        skip "revert as nobody" "needs root and setpriv"
        skip "patches as nobody" "needs root and setpriv"
fi
victim_ask 0 unblock
run_liveup revert "$pid"
ok $LU_RC "once the thread is out, revert succeeds"
behaves 0 1
ok $? "... x + 1, the victim fine"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

# Too short: lpt_nop() is one `ret` at -O2. The builder refuses it.
build_patch fix-nop fix-nop lpt-pie-o2
[ "$BUILD_RC" -eq 1 ] && [ "$(lines "$T/build.err")" -eq 1 ] &&
        grep -q "function 'lpt_nop' is 1 byte long, a jump needs 5" "$T/build.err"
ok $? "too short: liveup build refuses lpt_nop (exit 1, one line naming it and the sizes)"
[ ! -e "$T/fix-nop.lpo" ]
ok $? "too short: no patch file left behind"

# Too short, at apply time: the builder accepts lpt_nop() of lpt-pie-o0
# (7 bytes at -O0); the patch file is then edited to say the function is
# 4 bytes long (with the hash of those 4 bytes), which apply must refuse
# by itself.
build_patch fix-nop-o0 fix-nop lpt-pie-o0
ok $? "fix-nop.c builds for lpt-pie-o0 (lpt_nop is 7 bytes there)"
"$PYTHON" - "$T/fix-nop-o0.lpo" "$T/short.lpo" "$LIVEUP_VICTIM_DIR/lpt-pie-o0" <<'PY'
import struct, sys
src, dst, binary = sys.argv[1:4]
data = bytearray(open(src, "rb").read())
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
def sh(i):
    return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
names = sh(shstrndx)[4]
meta = None
for i in range(shnum):
    s = sh(i)
    if data[names + s[0]:data.index(b"\0", names + s[0])] == b".liveup":
        meta = s[4]
n_funcs, funcs_off = struct.unpack_from("<II", data, meta + 20)
if n_funcs != 1:
    sys.exit("%d functions" % n_funcs)
f = meta + funcs_off
addr, = struct.unpack_from("<Q", data, f + 8)
# The first 4 bytes of lpt_nop in the binary, through its program headers.
b = open(binary, "rb").read()
phoff, = struct.unpack_from("<Q", b, 0x20)
phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
code = None
for i in range(phnum):
    p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
        "<IIQQQQ", b, phoff + i * phentsize)
    if p_type == 1 and p_vaddr <= addr < p_vaddr + p_filesz:
        code = b[addr - p_vaddr + p_offset:][:4]
if code is None:
    sys.exit("lpt_nop is in no PT_LOAD")
h = 0xcbf29ce484222325  # FNV-1a 64, as lp_hash()
for c in code:
    h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
struct.pack_into("<QQ", data, f + 16, 4, h)
open(dst, "wb").write(data)
PY
ok $? "... edited to claim a 4-byte function"
victim_start 1 lpt-pie-o0
victim_wait_ready 1
maps_of "$(victim_pid 1)" > "$T/maps.before"
run_liveup apply "$(victim_pid 1)" "$T/short.lpo"
untouched_after_refusal 1 1 "too short at apply"
check "too short at apply: the message names the function and the sizes" \
        said "function 'lpt_nop' is 4 bytes long, a jump needs 5"
victim_say 1 quit
victim_end 1

# Bytes differ: a copy of lpt-pie-o2 with the same build-id, one
# immediate of compute() changed (LPT_MARKER, which no caller passes).
"$PYTHON" - "$LIVEUP_VICTIM_DIR/lpt-pie-o2" "$T/lpt-pie-o2" <<'EOF'
import os, struct, subprocess, sys
src, dst = sys.argv[1:3]
data = bytearray(open(src, "rb").read())
addr = size = None
for line in subprocess.run(["nm", "-S", src], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[3] == "compute" and f[2] in "Tt":
        addr, size = int(f[0], 16), int(f[1], 16)
if addr is None:
    sys.exit("no compute in %s" % src)
phoff, = struct.unpack_from("<Q", data, 0x20)
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
off = None
for i in range(phnum):
    p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz = struct.unpack_from(
        "<IIQQQQ", data, phoff + i * phentsize)
    if p_type == 1 and p_vaddr <= addr < p_vaddr + p_filesz:
        off = addr - p_vaddr + p_offset
if off is None:
    sys.exit("compute is in no PT_LOAD")
old, new = struct.pack("<I", 0x7eadbeef), struct.pack("<I", 0x7eadbeee)
at = data.find(old, off, off + size)
if at < 0 or data.find(old, at + 1, off + size) >= 0:
    sys.exit("the marker is not in compute exactly once")
data[at:at + 4] = new
open(dst, "wb").write(data)
os.chmod(dst, 0o755)
EOF
ok $? "a copy of lpt-pie-o2 with one byte of compute() changed"
bid() {
        readelf -n "$1" | sed -n 's/.*Build ID: *//p'
}
[ -n "$(bid "$T/lpt-pie-o2")" ] && [ "$(bid "$T/lpt-pie-o2")" = "$(bid "$LIVEUP_VICTIM_DIR/lpt-pie-o2")" ] &&
        ! cmp -s "$T/lpt-pie-o2" "$LIVEUP_VICTIM_DIR/lpt-pie-o2"
ok $? "... same build-id, other bytes"
# victim_start must run in this shell (it keeps the FIFOs open here).
saved_dir=$LIVEUP_VICTIM_DIR
LIVEUP_VICTIM_DIR=$T
victim_start 1 lpt-pie-o2
LIVEUP_VICTIM_DIR=$saved_dir
victim_wait_ready 1
pid1=$(victim_pid 1)
maps_of "$pid1" > "$T/maps.before"
run_liveup apply "$pid1" "$T/fix-100.lpo"
untouched_after_refusal 1 1 "bytes differ"
check "bytes differ: the message names compute and says its bytes differ" \
        said "function 'compute' in pid $pid1 is not what the patch was built against (its bytes differ)"
victim_say 1 quit
victim_end 1

# Symbol not found at apply time: fix-tag calls lpt_extra(), which the
# liblpt.so the process actually loaded (alt/, first in
# LD_LIBRARY_PATH) does not have.
build_patch fix-tag fix-tag lpt-shared
ok $? "fix-tag.c builds for lpt-shared"
export LD_LIBRARY_PATH="$LPT_ALT_DIR"
victim_start 1 lpt-shared
unset LD_LIBRARY_PATH
victim_wait_ready 1
pid1=$(victim_pid 1)
grep -q "$LPT_ALT_DIR/liblpt.so" /proc/"$pid1"/maps
ok $? "lpt-shared runs with alt/liblpt.so"
maps_of "$pid1" > "$T/maps.before"
run_liveup apply "$pid1" "$T/fix-tag.lpo"
untouched_after_refusal 1 1 "symbol not found"
check "symbol not found: the message names the symbol" said "'lpt_extra'"
victim_ask 1 check
[ "$(field "$REPLY" tag)" = 0 ]
ok $? "symbol not found: lpt_tag() unchanged"
victim_say 1 quit
victim_end 1

# The process exits (on its own, then killed) while apply retries.
for how in exits killed; do
        victim_start 2 lpt-pie-o2
        victim_wait_ready 2
        pid2=$(victim_pid 2)
        victim_ask 2 block
        t0=$(date +%s%N)
        "$LIVEUP" apply --timeout 30 "$pid2" "$T/fix-wait.lpo" > "$T/lu.out" 2> "$T/lu.err" &
        bg=$!
        # Wait until liveup holds it (a tracer), i.e. retries have begun.
        i=0
        while [ $i -lt 200 ] && untraced "$pid2"; do
                sleep 0.02
                i=$((i + 1))
        done
        sleep 0.2
        if [ $how = exits ]; then
                victim_say 2 quit
        else
                kill -KILL "$pid2"
        fi
        wait $bg
        LU_RC=$?
        ms=$((($(date +%s%N) - t0) / 1000000))
        diag "apply while the process $how -> $LU_RC after $ms ms: $(head -c 300 "$T/lu.err")"
        check "process $how mid-way: exit 1, one line on stderr, nothing on stdout" refused_with 1
        check "process $how mid-way: the message names pid $pid2" said "pid $pid2"
        [ $ms -lt 10000 ]
        ok $? "process $how mid-way: no hang (done in $ms ms, timeout was 30 s)"
        victim_end 2
done

# A pid that is gone.
true &
dead=$!
wait $dead
run_liveup apply "$dead" "$T/fix-100.lpo"
check "dead pid: exit 1, one line" refused_with 1
check "dead pid: the message names it" said "$dead"

done_testing
