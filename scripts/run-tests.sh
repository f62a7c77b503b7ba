#!/bin/sh
# Run the test suite of a Meson build directory and print the closing line
# "N passed, N failed" (TAP subtests counted one by one; a test program
# that died without TAP output counts as one failure).
#   scripts/run-tests.sh BUILDDIR
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)

meson test -C "$build" --no-rebuild --print-errorlogs --num-processes 2 \
        --timeout-multiplier "${LIVEUP_TIMEOUT_MULTIPLIER:-1}"
rc=$?
python3 "$here/test-summary.py" "$build/meson-logs/testlog.json" > "$build/test-summary.txt"
sum=$?
cat "$build/test-summary.txt"
if [ $rc -ne 0 ] || [ $sum -ne 0 ]; then
        exit 1
fi
exit 0
