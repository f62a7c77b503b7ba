#!/bin/sh
# `make demo`: a live patch of a running multithreaded program, end to end.
#
#   1. start examples/livepatch/shop: four threads price orders; the main
#      thread prints the last one every 300 ms, with a visible bug
#      ("$12.5" where "$12.05" is meant);
#   2. build a patch from examples/livepatch/fix.c (liveup build --replace);
#   3. show its stacks as the consistency check sees them (liveup stacks);
#   4. apply the patch to the running program: the output changes;
#   5. list what is applied (liveup patches);
#   6. revert it: the output changes back; the program never stopped.
set -eu
build=${1:-build}
liveup="$build/src/cli/liveup"
shop="$build/examples/livepatch/shop"
fix="examples/livepatch/fix.c"

[ -x "$liveup" ] && [ -x "$shop" ] || { echo "demo: build first (make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/liveup-demo.XXXXXX)
out="$work/shop.out"
"$shop" > "$out" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Wait until the program has printed `n` more lines than now.
show_lines() {
        n=$1
        start=$(wc -l < "$out")
        while [ "$(wc -l < "$out")" -lt $((start + n)) ]; do
                kill -0 "$pid" || { echo "demo: the program died" >&2; exit 1; }
                sleep 0.1
        done
        tail -n "$n" "$out" | sed 's/^/   | /'
}

say "a multithreaded program with a bug is running as pid $pid (prices lose a zero):"
show_lines 3

say "\$ liveup build --replace $fix --target $shop -o $work/fix.lpo"
"$liveup" build --replace "$fix" --target "$shop" -o "$work/fix.lpo"

say "\$ liveup inspect $work/fix.lpo"
"$liveup" inspect "$work/fix.lpo"

say "\$ liveup apply $pid $work/fix.lpo"
"$liveup" apply "$pid" "$work/fix.lpo"
say "the same program, same pid, now prints:"
show_lines 3

say "\$ liveup patches $pid"
"$liveup" patches "$pid"

say "\$ liveup revert $pid"
"$liveup" revert "$pid"
say "and back to the old behaviour, still without a restart:"
show_lines 3

say "pid $pid ran all along: $(ps -o etime= -p "$pid" | tr -d ' ') elapsed, TracerPid $(sed -n 's/^TracerPid:[[:space:]]*//p' /proc/$pid/status)"
