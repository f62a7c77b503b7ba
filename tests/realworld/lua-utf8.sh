#!/bin/sh
# A real bug in a real program, fixed live: Lua 5.4.4 as Debian bookworm
# ships it (lua5.4 5.4.4-3+deb12u1, scripts/fetch-lua.sh), whose
# utf8.codes accepts spurious continuation bytes (fixed in Lua 5.4.6;
# lua-utf8codes.diff). The deployed interpreter is built by Lua's own
# `make linux` and runs utf8-server.lua under a steady load of valid
# requests; `liveup build --diff` makes the patch from the source diff
# with the same `make linux`, and apply / patches / revert act on the
# running server. The invalid inputs are accepted before the patch,
# refused while it is applied, accepted again once it is reverted; every
# load request is answered, in order, and the server never restarts.
# Then the refusal: an interpreter built with other flags (-O1) does not
# match the build from the sources, and `build --diff` says so.
. "$LIVEUP_REALWORLD_TESTS/lib.sh"

rw_fetch_lua
plan 36
cd "$T" || exit 1

diff=$RW/lua-utf8codes.diff
# Stray continuation bytes: "\x80abc" (iter_codes), "中\x80" and "a\x80b"
# (iter_aux); with the bug they count 3, 1 and 2 code points.
probe_bad() {
        # probe_bad WHAT: the three answers are as expected for WHAT
        # ("bug": OK 3 / OK 1 / OK 2; "fixed": ERR ... invalid UTF-8 code)
        for p in "80616263 3" "e4b8ad80 1" "618062 2"; do
                hex=${p% *}
                n=${p#* }
                ask "P$hex" "$hex"
                st=$?
                if [ "$1" = bug ]; then
                        [ $st -eq 0 ] && [ "$REPLY" = "OK $n" ]
                else
                        [ $st -eq 0 ] && case $REPLY in
                        "ERR "*"invalid UTF-8 code"*) true ;;
                        *) false ;;
                        esac
                fi
                ok $? "$2: '$hex' -> $REPLY"
        done
}

# load_ok STAGE: more load was answered since the last call (waited for:
# the filter answers once one more load request is answered, 10 s at
# most; the writer pauses 10 ms every 20 requests), all of it right.
last_n=0
load_ok() {
        load_wait $((last_n + 1))
        if [ "$LOAD_N" -le "$last_n" ] || [ "$LOAD_BAD" -ne 0 ]; then
                diag "load during $1: $LOAD_N answered (before: $last_n), $LOAD_BAD wrong"
                ok 1 "the load was answered during $1"
        else
                ok 0 "the load was answered during $1 ($((LOAD_N - last_n)) requests)"
        fi
        last_n=$LOAD_N
}

# ---- the deployed interpreter and the victim ---------------------------------
rw_make_lua "$T/deployed"
ok $? "the deployed Lua builds with make linux"
lua=$T/deployed/src/lua
nm "$lua" 2> /dev/null | grep -q ' t iter_aux$' && nm "$lua" | grep -q ' t iter_codes$'
ok $? "it is not stripped: iter_aux and iter_codes are in its .symtab"

server_start "$lua"
ok $? "the utf8 server runs on it (pid $SRV_PID)"
pid=$SRV_PID
load_start
load_ok "start-up"
probe_bad bug "before the patch, the bug"
ask valid e4b8ad
ok $? "before the patch, a valid string: $REPLY"

# ---- build --diff ------------------------------------------------------------
cp -R "$LUA_SRC" "$T/src"
run_liveup build --diff "$diff" --src "$T/src" --target "$lua" -o "$T/fix.lpo" --json \
        -- make linux
if [ "$LU_RC" -ne 0 ]; then
        diag "liveup build --diff: exit status $LU_RC: $(tail -n 3 "$T/lu.err")"
fi
[ "$LU_RC" -eq 0 ] && [ -s "$T/fix.lpo" ]
ok $? "build --diff with make linux writes fix.lpo"
json_check "$T/lu.out" '
names = sorted(f.get("name") for f in d.get("functions", []))
if names != ["iter_aux", "iter_codes"]:
    fail("functions %s, expected iter_aux and iter_codes" % names)
for f in d["functions"]:
    if not isinstance(f.get("why"), str) or not f["why"]:
        fail("%s has no why" % f["name"])
    print("# %s: %s" % (f["name"], f["why"]))
'
ok $? "the patch replaces exactly iter_aux and iter_codes"
json_check "$T/lu.out" "
import os
if os.path.realpath(d.get('output', '')) != os.path.realpath('$T/fix.lpo'):
    fail('output is %r' % d.get('output'))
s = d.get('seconds') or {}
for k in ('unpatched', 'patched', 'total'):
    if not isinstance(s.get(k), (int, float)) or s[k] < 0:
        fail('seconds.%s is %r' % (k, s.get(k)))
if s['total'] < s['unpatched']:
    fail('total %s < unpatched %s' % (s['total'], s['unpatched']))
if not isinstance(d.get('incremental'), bool):
    fail('incremental is %r' % d.get('incremental'))
print('# builds: unpatched %.1f s, patched %.1f s (%s), total %.1f s' %
      (s['unpatched'], s['patched'], 'incremental' if d['incremental'] else 'full', s['total']))
"
ok $? "its JSON names the output and the build times"
[ -z "$(ls -A "$TMPDIR")" ]
ok $? "build --diff left no scratch files behind"
load_ok "the build"

# ---- apply -------------------------------------------------------------------
run_liveup apply "$pid" "$T/fix.lpo" --timeout 30
[ "$LU_RC" -eq 0 ] || diag "liveup apply: exit status $LU_RC: $(head -c 400 "$T/lu.err")"
ok $LU_RC "apply to the running server"
alive "$pid" && untraced "$pid"
ok $? "the server is alive and no longer traced"
probe_bad fixed "patched, the fix"
ask valid e4b8ad
[ $? -eq 0 ] && [ "$REPLY" = "OK 1" ]
ok $? "patched, a valid string still counts: $REPLY"
load_ok "apply"

run_liveup patches --json "$pid"
[ "$LU_RC" -eq 0 ] && json_check "$T/lu.out" '
ps = d["processes"][0]["patches"] if d.get("processes") else []
if len(ps) != 1:
    fail("%d patches listed, expected 1" % len(ps))
names = sorted(f["name"] for f in ps[0].get("functions", []))
if names != ["iter_aux", "iter_codes"]:
    fail("functions %s" % names)
if ps[0].get("state") != "applied":
    fail("state %r" % ps[0].get("state"))
'
ok $? "patches lists it, applied, with iter_aux and iter_codes"

# ---- revert ------------------------------------------------------------------
run_liveup revert "$pid" --timeout 30
[ "$LU_RC" -eq 0 ] || diag "liveup revert: exit status $LU_RC: $(head -c 400 "$T/lu.err")"
ok $LU_RC "revert"
alive "$pid" && untraced "$pid"
ok $? "the server is alive and no longer traced"
probe_bad bug "reverted, the old behaviour"
load_ok "revert"
run_liveup patches --json "$pid"
[ "$LU_RC" -eq 0 ] && json_check "$T/lu.out" '
ps = d["processes"][0]["patches"] if d.get("processes") else []
if ps:
    fail("%d patches still listed" % len(ps))
'
ok $? "patches lists nothing"

# ---- the load, all of it -----------------------------------------------------
load_stop
load_sync
[ "$LOAD_SENT" -gt 0 ] && [ "$LOAD_N" -eq "$LOAD_SENT" ] && [ "$LOAD_BAD" -eq 0 ]
ok $? "every load request answered, right and in order ($LOAD_N of $LOAD_SENT, $LOAD_BAD wrong)"
[ "$(cat "$T/filter.err")" = "" ] || diag "$(head -n 3 "$T/filter.err")"
alive "$pid" && [ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$lua")" ]
ok $? "the same server process ran from start to end"
server_end
ok $SRV_STATUS "the server ends normally at the end of its input"

# ---- refusal: a binary built with other flags ----------------------------------
rw_make_lua "$T/deployed-o1" MYCFLAGS=-O1
ok $? "a Lua built with MYCFLAGS=-O1"
rm -f "$T/o1.lpo"
run_liveup build --diff "$diff" --src "$T/src" --target "$T/deployed-o1/src/lua" \
        -o "$T/o1.lpo" -- make linux
[ "$LU_RC" -eq 1 ]
ok $? "build --diff against it is refused (exit status $LU_RC)"
tail -n 1 "$T/lu.err" | grep -q "^liveup: .*does not match"
ok $? "with one last line 'liveup: ... does not match': $(tail -n 1 "$T/lu.err" | cut -c 1-200)"
[ ! -e "$T/o1.lpo" ] && [ ! -s "$T/lu.out" ]
ok $? "and no output file, nothing on stdout"
[ -z "$(ls -A "$TMPDIR")" ]
ok $? "and no scratch files behind"

done_testing
