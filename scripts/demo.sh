#!/bin/sh
# `make demo`: what liveup can do today, on a real multithreaded program.
#
# Live patching (build/apply/revert) is not there yet; today the demo
# starts a program with a busy thread and a thread blocked in read(),
# shows every thread's stack as liveup's consistency check sees it (the
# threads are held stopped for about a millisecond), and shows that the
# program went on undisturbed.
set -eu
build=${1:-build}
liveup="$build/src/cli/liveup"
victim="$build/tests/victims/victim-chain"

[ -x "$liveup" ] && [ -x "$victim" ] || { echo "demo: build first (make build)" >&2; exit 1; }

fifo=$(mktemp -u /tmp/liveup-demo.XXXXXX)
mkfifo "$fifo"
"$victim" > "$fifo" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$fifo"' EXIT INT TERM
read -r line < "$fifo"   # waits until the program says "ready"

echo "== a program with two named threads is running as pid $pid"
echo "== \$ liveup stacks $pid"
"$liveup" stacks "$pid"
echo
echo "== the same, as JSON (first lines):"
"$liveup" stacks --json "$pid" | head -c 400; echo " ..."
echo
if kill -0 "$pid" 2>/dev/null; then
        state=$(sed -n 's/^State:[[:space:]]*//p' /proc/$pid/status)
        echo "== pid $pid is still running ($state), untraced: TracerPid $(sed -n 's/^TracerPid:[[:space:]]*//p' /proc/$pid/status)"
fi
echo "== live patching (liveup build/apply/revert) comes next; see README.md"
