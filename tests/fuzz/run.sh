#!/bin/sh
# Build the libFuzzer targets with clang and run each in turn:
#   fuzz-lpo      the .lpo reader, seeded with a patch built from the build
#                 tests' fixtures by the Meson build in $LIVEUP_BUILD
#                 (default build/) and the same with bindings and reasons
#                 (written by tests/build/lpo.py), or with SEED-DIR
#   fuzz-upd-msg  the live-update message and NOTIFY_SOCKET parsers,
#                 seeded with a few valid messages written here
#   tests/fuzz/run.sh [SECONDS] [SEED-DIR]
# SECONDS (default 60) per target. The corpora grow in build-fuzz/corpus
# and build-fuzz/corpus-upd. Exits non-zero when a fuzzer finds a crash
# (the input is left in build-fuzz/). Not part of `make check`.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
b=$here/${LIVEUP_BUILD:-build}
secs=${1:-60}
PYTHON3=${PYTHON:-python3}
out=$here/build-fuzz
mkdir -p "$out/corpus"

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -fsanitize=fuzzer -x c - -o "$out/probe" 2>/dev/null; then
        echo "clang with -fsanitize=fuzzer is not available: skipping" >&2
        exit 0
fi

# src/arch loads libcapstone by its soname (meson.build passes it too).
cs_soname=libcapstone.so.$(pkg-config --modversion capstone | cut -d. -f1)
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -std=gnu11 -I"$here/src" $(pkg-config --cflags capstone) \
        -DCAPSTONE_SONAME="\"$cs_soname\"" \
        "$here/tests/fuzz/fuzz-lpo.c" "$here/src/livepatch/format.c" \
        "$here/src/elf/"*.c "$here/src/base/"*.c "$here/src/arch/x86_64/"*.c \
        $(pkg-config --libs libelf libdw capstone) -lm -o "$out/fuzz-lpo"

if [ $# -ge 2 ]; then
        cp "$2"/* "$out/corpus/" 2>/dev/null || true
elif [ -x "$b/src/cli/liveup" ] && [ -x "$b/tests/build/target-pie-o2" ]; then
        "$b/src/cli/liveup" build --replace "$here/tests/build/fixes/fix-basic.c" \
                --target "$b/tests/build/target-pie-o2" -o "$out/corpus/seed.lpo" > /dev/null
        # Format version 2: the target's statics it uses, bound.
        "$PYTHON3" "$here/tests/build/lpo.py" rewrite "$out/corpus/seed.lpo" \
                "$out/corpus/seed-bindings.lpo" "
m['functions'][0]['why'] = 'changed in target.c'
m['bindings'] = [
    dict(symbol='items_seen', target_symbol='items_seen', address='0x4028', kind='data',
         static=True),
    dict(symbol='format_item', target_symbol='format_item', address='0x1200',
         kind='function', static=True)]"
fi
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -std=gnu11 -I"$here/src" \
        "$here/tests/fuzz/fuzz-upd-msg.c" "$here/src/update/proto.c" \
        "$here/src/update/notify.c" "$here/src/base/util.c" -lm -o "$out/fuzz-upd-msg"

# Seeds for the message parser: byte 0 = fds (0..2) or 0x80 for notify.
mkdir -p "$out/corpus-upd"
"$PYTHON3" - "$out/corpus-upd" <<'PY'
import struct, sys, os
d = sys.argv[1]
def attr(tag, v):
    return struct.pack("<HH", tag, len(v)) + v + b"\0" * (-len(v) % 4)
def msg(t, *attrs):
    body = b"".join(attrs)
    return struct.pack("<IHH", 8 + len(body), t, 0) + body
u32 = lambda v: struct.pack("<I", v)
seeds = {
    "hello": b"\0" + msg(1, attr(1, u32(1)), attr(2, u32(1)), attr(3, u32(42))),
    "preserve": b"\1" + msg(2, attr(4, b"listener"), attr(5, u32(1))),
    "update": b"\0" + msg(64, attr(12, b"/bin/server"), attr(12, b"--x"), attr(13, u32(1))),
    "status": b"\0" + msg(98, attr(4, b"web"), attr(15, u32(3)), attr(19, u32(9)),
                          attr(26, u32(1) + u32(6) + struct.pack("<Q", 4096) + b"state")),
    "result": b"\0" + msg(97, attr(17, u32(0)), attr(18, b"done")),
    "notify": b"\x80READY=1\nSTATUS=ok\nFDSTORE=1\nFDNAME=listener\n",
}
for k, v in seeds.items():
    open(os.path.join(d, k), "wb").write(v)
PY

cd "$out"
./fuzz-lpo -max_total_time="$secs" -max_len=65536 corpus
./fuzz-upd-msg -max_total_time="$secs" -max_len=66000 corpus-upd
