#!/bin/sh
# Build the libFuzzer target for the .lpo reader with clang and run it.
#   tests/fuzz/run.sh [SECONDS] [SEED-DIR]
# Default: 60 seconds, seeded with a patch built from the build tests'
# fixtures by the Meson build in $LIVEUP_BUILD (default build/). The
# corpus grows in build-fuzz/corpus. Exits non-zero when the fuzzer finds
# a crash (the input is left in build-fuzz/). Not part of `make check`.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
b=$here/${LIVEUP_BUILD:-build}
secs=${1:-60}
out=$here/build-fuzz
mkdir -p "$out/corpus"

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -fsanitize=fuzzer -x c - -o "$out/probe" 2>/dev/null; then
        echo "clang with -fsanitize=fuzzer is not available: skipping" >&2
        exit 0
fi

clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -D_GNU_SOURCE -std=gnu11 -I"$here/src" $(pkg-config --cflags capstone) \
        "$here/tests/fuzz/fuzz-lpo.c" "$here/src/livepatch/format.c" \
        "$here/src/base/util.c" "$here/src/base/log.c" "$here/src/arch/x86_64/"*.c \
        $(pkg-config --libs libelf capstone) -lm -o "$out/fuzz-lpo"

if [ $# -ge 2 ]; then
        cp "$2"/* "$out/corpus/" 2>/dev/null || true
elif [ -x "$b/src/cli/liveup" ] && [ -x "$b/tests/build/target-pie-o2" ]; then
        "$b/src/cli/liveup" build --replace "$here/tests/build/fixes/fix-basic.c" \
                --target "$b/tests/build/target-pie-o2" -o "$out/corpus/seed.lpo" > /dev/null
fi
cd "$out"
./fuzz-lpo -max_total_time="$secs" -max_len=65536 corpus
