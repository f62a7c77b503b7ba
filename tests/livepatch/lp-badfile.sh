#!/bin/sh
# Bad patch files and bad usage exit 2 with one line on stderr, nothing
# on stdout, and leave a running target as it was: a missing file, a
# folder, an empty file, random bytes, a patch truncated at several
# lengths, ELF files that are not patches, a .liveup section with a
# version from the future or hostile counts and offsets; and 200 patches
# with random bytes changed never crash liveup (exit 1 or 2 only). Then
# every usage error of apply, revert and patches, and --help.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 46

build_patch good fix-100 lpt-pie-o2
ok $? "fix-100.c builds"
good=$T/good.lpo
size=$(wc -c < "$good")

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)

# bad FILE DESCRIPTION: apply refuses it with exit 2 (one line naming
# the file), and the victim is untouched.
bad() {
        run_liveup apply "$pid" "$1"
        refused_with 2 && said "$1"
        ok $? "$2: exit 2, one line naming the file"
}

bad "$T/missing.lpo" "missing file"
bad "$T" "a folder"
: > "$T/empty.lpo"
bad "$T/empty.lpo" "empty file"
head -c 4096 /dev/urandom > "$T/random.lpo"
bad "$T/random.lpo" "4096 random bytes"
printf '\177ELF' > "$T/magic.lpo"
bad "$T/magic.lpo" "only the ELF magic"
for n in 16 64 $((size / 4)) $((size / 2)) $((size - 64)) $((size - 1)); do
        head -c "$n" "$good" > "$T/trunc-$n.lpo"
        bad "$T/trunc-$n.lpo" "truncated to $n of $size bytes"
done
bad "$LIVEUP_VICTIM_DIR/lpt-pie-o2" "an executable"
bad "$LIVEUP_VICTIM_DIR/liblpt.so" "a shared library"
gcc -c -o "$T/plain.o" "$FIXES/fix-100.c" 2> /dev/null
bad "$T/plain.o" "a relocatable object without .liveup"

# The .liveup section, rewritten: edit_meta OUT OFFSET VALUE (a 32-bit
# field of struct lp_meta_header, src/livepatch/format.h).
edit_meta() {
        "$PYTHON" - "$good" "$1" "$2" "$3" <<'EOF'
import struct, sys
src, dst, field, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4], 0)
data = bytearray(open(src, "rb").read())
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
def sh(i):
    return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
names = sh(shstrndx)[4]
for i in range(shnum):
    s = sh(i)
    name = data[names + s[0]:data.index(b"\0", names + s[0])].decode()
    if name == ".liveup":
        struct.pack_into("<I", data, s[4] + field, value)
        open(dst, "wb").write(data)
        sys.exit(0)
sys.exit("no .liveup section")
EOF
}
edit_meta "$T/version.lpo" 8 99
bad "$T/version.lpo" ".liveup format version 99"
edit_meta "$T/nfuncs.lpo" 20 0xffffffff
bad "$T/nfuncs.lpo" ".liveup with 2^32-1 functions"
edit_meta "$T/funcsoff.lpo" 24 0x7ffffff0
bad "$T/funcsoff.lpo" ".liveup with its function table far outside"
edit_meta "$T/strtab.lpo" 36 0xfffffff0
bad "$T/strtab.lpo" ".liveup with a huge string table"
edit_meta "$T/hdrsize.lpo" 12 2
bad "$T/hdrsize.lpo" ".liveup with a 2-byte header"

behaves 0 1
ok $? "after all that: the victim's behaviour is unchanged"
check "... no patches, no registry, untraced" pid_untouched "$pid"
victim_say 0 quit
victim_end 0
ok "$V_STATUS" "victim exits 0"

# Random damage: 200 copies with 1 to 16 bytes changed, applied to a pid
# that does not exist (the file is read first): exit 1 or 2, never a
# signal, always one line.
true &
dead=$!
wait $dead
"$PYTHON" - "$good" "$T/fuzz" <<'EOF'
import os, random, sys
src, out = sys.argv[1:3]
data = open(src, "rb").read()
rng = random.Random(20250501)
os.makedirs(out)
for i in range(200):
    d = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        d[rng.randrange(len(d))] = rng.randrange(256)
    open(os.path.join(out, "%03d.lpo" % i), "wb").write(d)
EOF
crashes=0
bad_exit=0
for f in "$T"/fuzz/*.lpo; do
        "$LIVEUP" apply "$dead" "$f" > "$T/lu.out" 2> "$T/lu.err"
        rc=$?
        if [ $rc -ge 126 ]; then
                crashes=$((crashes + 1))
                diag "$f: status $rc"
        elif [ $rc -ne 1 ] && [ $rc -ne 2 ]; then
                bad_exit=$((bad_exit + 1))
                diag "$f: status $rc"
        elif [ "$(lines "$T/lu.err")" -ne 1 ]; then
                bad_exit=$((bad_exit + 1))
                diag "$f: $(lines "$T/lu.err") lines on stderr"
        fi
done
ok $crashes "200 damaged patches: liveup never dies of a signal ($crashes did)"
ok $bad_exit "200 damaged patches: exit 1 or 2 with one line each ($bad_exit did not)"

# Usage: exit 2, one line.
usage() {
        desc=$1
        shift
        run_liveup "$@"
        refused_with 2
        ok $? "$desc: exit 2, one line"
}
usage "apply without arguments" apply
usage "apply without a file" apply 1
usage "apply with a pid that is not a number" apply abc "$good"
usage "apply with pid 0" apply 0 "$good"
usage "apply --all with a pid too" apply --all 1 "$good"
usage "apply --mode lazy (not available)" apply --mode lazy 1 "$good"
usage "apply --timeout 0" apply --timeout 0 1 "$good"
usage "apply --timeout -1" apply --timeout -1 1 "$good"
usage "apply --timeout abc" apply --timeout abc 1 "$good"
usage "apply with an unknown option" apply --frobnicate 1 "$good"
usage "revert without arguments" revert
usage "revert with a pid that is not a number" revert abc
usage "revert with three operands" revert 1 a b
usage "revert --all with an id too" revert --all 1 some-id
usage "revert --timeout 0" revert --timeout 0 1
usage "patches with a pid that is not a number" patches abc
usage "patches with two pids" patches 1 2
usage "patches with an unknown option" patches --frobnicate
for verb in apply revert patches; do
        run_liveup $verb --help
        [ $LU_RC -eq 0 ] && grep -q "^Usage: liveup $verb" "$T/lu.out" && [ ! -s "$T/lu.err" ]
        ok $? "$verb --help: exit 0, usage on stdout"
done

done_testing
