#!/bin/sh
# Run every benchmark of a Meson build directory (the executables
# BUILDDIR/bench/bench-*) one after the other and print their tables.
# Extra arguments go to every benchmark (e.g. --quick, --json).
#   scripts/run-bench.sh BUILDDIR [ARGS...]
# Benchmarks are not pass/fail tests: the exit status is non-zero only
# when one could not run at all (status 77, e.g. bench-build without
# network for its source, is a skip).
set -u
build=${1:-build}
[ $# -gt 0 ] && shift

if [ ! -d "$build/bench" ]; then
        echo "run-bench: no $build/bench (build the project first: meson compile -C $build)" >&2
        exit 1
fi
export LIVEUP_VICTIM_DIR="${LIVEUP_VICTIM_DIR:-$build/tests/victims}"

rc=0
found=0
for b in "$build"/bench/bench-*; do
        [ -f "$b" ] && [ -x "$b" ] || continue
        found=1
        echo "== $(basename "$b")"
        "$b" "$@"
        st=$?
        case $st in
        0) ;;
        77) echo "run-bench: $(basename "$b") skipped (it says why above)" >&2 ;;
        *)
                echo "run-bench: $(basename "$b") failed (status $st)" >&2
                rc=1
                ;;
        esac
        echo
done
if [ $found -eq 0 ]; then
        echo "run-bench: no benchmark programs in $build/bench" >&2
        exit 1
fi
exit $rc
