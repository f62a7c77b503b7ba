#!/bin/sh
# `make demo`: a live patch of a running multithreaded program, end to
# end; then a live update of a running HTTP service.
#
# Live patch:
#   1. start examples/livepatch/shop: four threads price orders; the main
#      thread prints the last one every 300 ms, with a visible bug
#      ("$12.5" where "$12.05" is meant);
#   2. build a patch from examples/livepatch/fix.c (liveup build --replace);
#   3. show its stacks as the consistency check sees them (liveup stacks);
#   4. apply the patch to the running program: the output changes;
#   5. list what is applied (liveup patches);
#   6. revert it: the output changes back; the program never stopped;
#   7. the same fix as a source diff (examples/livepatch/fix.diff), built
#      with `liveup build --diff` from a copy of the shop's folder with its
#      own build command (make), and applied to a shop that make built.
#
# Live update (examples/update/counter-http, its counter in a memfd):
#   8. start it under `liveup run`; a client asks it every 300 ms over one
#      keep-alive connection and prints who answered;
#   9. `liveup update` it to counter-http-2 (the same source built as
#      version 2): the same connection is now answered by version 2 and
#      the counter went on;
#  10. --hold, status, finish; a new version that crashes (cancelled,
#      the old one serves on); a new version that wants another state
#      schema (refused before the old one is disturbed).
set -eu
build=${1:-build}
liveup="$build/src/cli/liveup"
shop="$build/examples/livepatch/shop"
fix="examples/livepatch/fix.c"

examples="$build/examples/update"
[ -x "$liveup" ] && [ -x "$shop" ] && [ -x "$examples/counter-http" ] ||
        { echo "demo: build first (make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/liveup-demo.XXXXXX)
out="$work/shop.out"
: > "$out" # before the program starts: its redirection happens in the background
"$shop" > "$out" &
pid=$!
kpid=
cpid=
trap 'kill $pid $cpid $kpid 2>/dev/null || :; wait $kpid 2>/dev/null || :; rm -rf "$work"' EXIT INT TERM

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
kill "$pid"

# ---- the same fix, from a source diff ----------------------------------
src="$work/shop-src"
mkdir "$src"
cp examples/livepatch/shop.c examples/livepatch/Makefile "$src/"
make -s -C "$src" > /dev/null
out="$work/shop2.out"
: > "$out"
"$src/shop" > "$out" &
pid=$!
say "the shop built by its own Makefile runs as pid $pid:"
show_lines 2
say "\$ liveup build --diff examples/livepatch/fix.diff --src $src -o $work/diff.lpo -- make"
"$liveup" build --diff examples/livepatch/fix.diff --src "$src" -o "$work/diff.lpo" -- make
say "\$ liveup apply $pid $work/diff.lpo"
"$liveup" apply "$pid" "$work/diff.lpo"
show_lines 2
kill "$pid"

# ---- live update -------------------------------------------------------
export LIVEUP_RUNTIME_DIR="$work/run"
port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
ch="$examples/counter-http"
ch2="$examples/counter-http-2"
cout="$work/client.out"
: > "$cout"
# Wait until the client has printed `n` more lines than now.
show_client() {
        n=$1
        start=$(wc -l < "$cout")
        while [ "$(wc -l < "$cout")" -lt $((start + n)) ]; do
                kill -0 "$cpid" || { echo "demo: the client stopped" >&2; exit 1; }
                sleep 0.1
        done
        tail -n "$n" "$cout" | sed 's/^/   | /'
}

say "live update: \$ liveup run --name web -- $ch --port $port &"
: > "$work/keeper.out"
"$liveup" run --name web -- "$ch" --port "$port" > "$work/keeper.out" 2> "$work/keeper.err" &
kpid=$!
while ! grep -q '^ready' "$work/keeper.out"; do
        kill -0 "$kpid" || { cat "$work/keeper.err" >&2; exit 1; }
        sleep 0.1
done
sed 's/^/   | /' "$work/keeper.out"

python3 -u -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
while True:
    s.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
    h = {}
    f.readline()
    while (l := f.readline()) not in (b"\r\n", b""):
        k, _, v = l.decode().partition(":")
        h[k.lower()] = v.strip()
    body = f.read(int(h["content-length"])).decode().strip()
    print("connection :%d  answered by %-36s %s" % (s.getsockname()[1], h["x-served-by"], body))
    time.sleep(0.3)
' "$port" > "$cout" &
cpid=$!
say "a client asks GET / every 300 ms on one keep-alive connection:"
show_client 3

say "\$ liveup update web -- $ch2 --port $port"
"$liveup" update web -- "$ch2" --port "$port"
say "the same connection, now answered by version 2; the counter went on:"
show_client 3

say "\$ liveup update web --hold      (stop in 'updated': the old version stays, frozen)"
"$liveup" update web --hold
say "\$ liveup status web"
"$liveup" status web
say "\$ liveup finish web"
"$liveup" finish web
show_client 2

say "\$ liveup update web -- $ch --port $port --fail crash      (a new version that crashes)"
"$liveup" update web -- "$ch" --port "$port" --fail crash || true
say "\$ liveup update web -- $ch --port $port --schema 2      (wants another state layout)"
"$liveup" update web -- "$ch" --port "$port" --schema 2 || true
say "neither disturbed the version that serves:"
show_client 3

say "\$ liveup status web"
"$liveup" status web
