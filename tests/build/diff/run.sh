#!/bin/sh
# Golden tests of `liveup build --diff`: each folder CASE/ here holds a
# small C project (src/, a Makefile building ./prog with CFLAGS ?= -O2 -g),
# a fix for it (fix.diff, for `patch -p1` in src/) and what the patch built
# from them must be (expect). For each case, the runner
#   1. copies src/ to a scratch folder and runs `make` there: the deployed
#      program, BIN;
#   2. runs `liveup build --diff CASE/fix.diff --src COPY --target BIN
#      -o CASE.lpo -- make` and checks, through `liveup inspect --json`,
#      which functions the patch replaces, adds, and which data it adds
#      (or that the build is refused, with its one-line message);
#   3. when the case says `run:`, starts BIN (a process printing one line
#      per tick), applies the patch, sees its output change, reverts, sees
#      the old output again, and checks the process is still alive.
#
# expect: one directive a line; blank lines and lines starting with "#"
# are ignored. The name lists may span several lines (they add up).
#   replaced: NAME...   the patch replaces exactly these functions of BIN
#   optional: NAME...   ...and may replace these too (e.g. a .cold part)
#   new: NAME...        its new functions are exactly these
#   newdata: NAME...    its new data objects are exactly these
#   absent: NAME...     these must not be replaced
#   has: NAME...        BIN has these symbols, lacks: NAME... it has none
#                       of these (what gcc emitted: the case's premise)
#   refuse: TEXT        the build is refused: exit 1, nothing on stdout,
#                       one line "liveup: ..." on stderr containing TEXT
#                       (several refuse: lines: it contains each)
#   status: N           ...with exit status N instead (2: a bad input file)
#   why: NAME TEXT      NAME's reason (inspect's "why") contains TEXT
#   deploy: ARGS        BIN is built with `make ARGS` (default: `make`)
#   src: NAME           the project is NAME/src (cases that share one)
#   bin: PATH           the program to patch is PATH in the project (./prog)
#   run: ARGS           run BIN ARGS; it prints a line matching the
#   before: ERE         extended regular expression `before`; once the
#   after: ERE          patch is applied, lines matching `after` (and
#                       only those), after the revert `before` again
# A NAME may end in "*" (gcc's clone numbers: note.isra.*), and may be
# NAME@FILE for a local symbol of one source file (two files' static
# functions of the same name), told apart by address (expect.py).
#
# Usage: `meson test -C build build-diff` (or make check), which sets the
# environment (../meson.build); by hand, with absolute paths, for some
# cases only:
#   LIVEUP=$PWD/build/src/cli/liveup LIVEUP_BUILD_TESTS=$PWD/tests/build \
#   LIVEUP_BUILD_TARGETS=$PWD/build/tests/build PYTHON=/usr/bin/python3 \
#       sh tests/build/diff/run.sh [CASE...]
# Needs make, cc and patch; prints TAP (its plan at the end).
. "$LIVEUP_BUILD_TESTS/lib.sh"

CASES=$LIVEUP_BUILD_TESTS/diff

# The projects are built with their own flags, not the caller's (make check
# runs under make: MAKEFLAGS would carry its jobserver into ours).
unset CC CFLAGS CPPFLAGS LDFLAGS LDLIBS MAKEFLAGS MFLAGS MAKELEVEL GNUMAKEFLAGS

command -v patch > /dev/null 2>&1 || diag "patch(1) is not installed: liveup build --diff needs it"

expect_py() {
        "$PYTHON" "$CASES/expect.py" "$@" 2> "$T/expect.err"
        ep_rc=$?
        [ $ep_rc -eq 0 ] || diag "$(head -c 600 "$T/expect.err" | tr '\n' ' ')"
        return $ep_rc
}

# The value of a one-line directive of $EXPECT (the first such line), and
# whether the case has a directive at all.
directive() {
        sed -n "s/^$1:[[:space:]]*//p" "$EXPECT" | head -n 1
}
has_directive() {
        grep -q "^$1:" "$EXPECT"
}
# The names of a list directive (all its lines), or "none".
names() {
        nm=$(sed -n "s/^$1://p" "$EXPECT" | tr '\n' ' ' | tr -s ' \t' ' ' | sed 's/^ //; s/ $//')
        echo "${nm:-none}"
}

# ---- The running program ---------------------------------------------------
# Its stdout is a FIFO read on fd 4, so the runner waits on its lines, not on
# sleeps; it writes a line per tick, so a read never waits long (a victim
# that stops printing is caught by Meson's timeout). If the runner dies, the
# victim's next write gets SIGPIPE.
VPID=
victim_start() {
        rm -f "$T/victim.out"
        mkfifo "$T/victim.out" || return 1
        # The subshell execs the program: $! is its pid.
        (cd "$1" && shift && exec ./prog "$@") > "$T/victim.out" 2> "$T/victim.err" &
        VPID=$!
        exec 4< "$T/victim.out"
}

victim_stop() {
        [ -n "$VPID" ] || return 0
        kill -9 "$VPID" 2> /dev/null
        wait "$VPID" 2> /dev/null
        VPID=
        exec 4<&-
}

# Alive: not gone, and not a zombie (it is our child, not reaped yet).
running() {
        [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}

# read_until ERE MAX: read the victim's lines until one matches (at most
# MAX lines); the last line read in $LINE.
LINE=
read_until() {
        ru_n=0
        while [ $ru_n -lt "$2" ]; do
                IFS= read -r LINE <&4 || {
                        diag "the program ended: $(head -c 300 "$T/victim.err" | tr '\n' ' ')"
                        return 1
                }
                printf '%s\n' "$LINE" | grep -Eq -- "$1" && return 0
                ru_n=$((ru_n + 1))
        done
        diag "no line matching '$1' in $2 lines; the last: $LINE"
        return 1
}

# stays ERE N: the next N lines all match.
stays() {
        st_n=0
        while [ $st_n -lt "$2" ]; do
                IFS= read -r LINE <&4 || {
                        diag "the program ended: $(head -c 300 "$T/victim.err" | tr '\n' ' ')"
                        return 1
                }
                printf '%s\n' "$LINE" | grep -Eq -- "$1" || {
                        diag "line '$LINE' does not match '$1'"
                        return 1
                }
                st_n=$((st_n + 1))
        done
}

trap 'victim_stop; rm -rf "$T"' EXIT

# Every file of a folder, with its checksum.
tree_sum() {
        (cd "$1" && find . -type f | LC_ALL=C sort | xargs cksum)
}

# ---- One case ----------------------------------------------------------------
run_case() {
        c=$1
        EXPECT=$CASES/$c/expect
        copy=$T/$c
        lpo=$T/$c.lpo
        bin=$copy/prog

        rm -rf "$copy"
        src=$CASES/$c/src
        # src: NAME: the project of folder NAME (cases that share one).
        has_directive src && src=$CASES/$(directive src)/src
        cp -R "$src" "$copy" || return 1
        # bin: PATH: the program to patch, if not ./prog.
        has_directive bin && bin=$copy/$(directive bin)
        deploy=$(directive deploy)
        # shellcheck disable=SC2086 # deploy: ARGS are make's words
        (cd "$copy" && make $deploy) > "$T/$c.make.log" 2>&1
        mk_rc=$?
        [ $mk_rc -eq 0 ] || diag "make $deploy -> $mk_rc: $(tail -n 5 "$T/$c.make.log" | tr '\n' ' ')"
        ok $mk_rc "$c: the deployed program builds (make${deploy:+ $deploy})"
        [ $mk_rc -eq 0 ] || return 0

        for k in has lacks; do
                has_directive $k && check "$c: premise: the program $k $(names $k)" \
                        expect_py "$EXPECT" $k - "$bin"
        done

        tree_sum "$copy" > "$T/$c.sum"
        run_liveup build --diff "$CASES/$c/fix.diff" --src "$copy" --target "$bin" -o "$lpo" -- make
        check "$c: liveup left nothing in \$TMPDIR" tmp_clean
        tree_sum "$copy" > "$T/$c.sum2"
        check "$c: the project folder is as it was (built in copies)" cmp -s "$T/$c.sum" "$T/$c.sum2"
        rm -rf "$TMPDIR" && mkdir "$TMPDIR"

        if has_directive refuse; then
                first=$(directive refuse)
                want=$(directive status)
                refused "${want:-1}" "$first" "$c: refused (exit ${want:-1}): one line saying '$first'"
                sed -n 's/^refuse:[[:space:]]*//p' "$EXPECT" | sed 1d > "$T/more"
                while IFS= read -r text; do
                        check "$c: the refusal also says '$text'" grep -qF -- "$text" "$T/err"
                done < "$T/more"
                check "$c: no patch file written" [ ! -e "$lpo" ]
                return 0
        fi

        check "$c: liveup build --diff succeeds" succeeded
        [ "$RC" -eq 0 ] || return 0
        run_liveup inspect --json "$lpo"
        check "$c: liveup inspect --json reads the patch" succeeded
        [ "$RC" -eq 0 ] || return 0
        cp "$T/out" "$T/$c.json"

        has_directive replaced && check "$c: replaces exactly $(names replaced)$(
                has_directive optional && echo " (optionally $(names optional))")" \
                expect_py "$EXPECT" replaced "$T/$c.json" "$bin"
        check "$c: each replaced function says why" expect_py "$EXPECT" why "$T/$c.json" "$bin"
        for k in new newdata absent; do
                has_directive $k && check "$c: $k: $(names $k)" \
                        expect_py "$EXPECT" $k "$T/$c.json" "$bin"
        done

        has_directive run || return 0
        before=$(directive before)
        after=$(directive after)
        # shellcheck disable=SC2046 # run: ARGS are the program's words
        victim_start "$copy" $(directive run)
        check "$c: before the patch, the program prints '$before'" read_until "$before" 100
        run_liveup apply "$VPID" "$lpo"
        check "$c: liveup apply $c.lpo succeeds" succeeded
        check "$c: patched, it prints '$after'" read_until "$after" 100
        check "$c: ...and goes on doing so" stays "$after" 5
        run_liveup revert "$VPID"
        check "$c: liveup revert succeeds" succeeded
        check "$c: reverted, it prints '$before' again" read_until "$before" 100
        check "$c: ...and goes on doing so" stays "$before" 5
        run_liveup patches "$VPID"
        check "$c: liveup patches: none left" [ "$(cat "$T/out")" = "pid $VPID: no patches" ]
        check "$c: the program is still alive" running "$VPID"
        victim_stop
}

if [ $# -gt 0 ]; then
        cases=$*
else
        cases=$(cd "$CASES" && for d in */; do [ -f "$d/expect" ] && echo "${d%/}"; done)
fi
# ---- Bad usage ------------------------------------------------------------------
usage_tests() {
        cp -R "$CASES/basic/src" "$T/usage" || return 1
        run_liveup build --diff "$CASES/basic/fix.diff" --src "$T/usage" -o "$T/usage.lpo"
        refused 2 "liveup: " "usage: no build command after -- is bad usage (exit 2)"
        run_liveup build --diff "$CASES/basic/fix.diff" -o "$T/usage.lpo" -- make
        refused 2 "liveup: " "usage: no --src is bad usage (exit 2)"
        check "usage: no patch file written" [ ! -e "$T/usage.lpo" ]
}

# ---- Without --target: the one program of the build that has the file --------
auto_target_tests() {
        cp -R "$CASES/two-files/src" "$T/auto" || return 1
        (cd "$T/auto" && make -s > /dev/null 2>&1) || return 1
        run_liveup build --diff "$CASES/two-files/fix.diff" --src "$T/auto" -o "$T/auto.lpo" \
                --json -- make
        check "auto target: build --diff without --target succeeds" [ "$RC" -eq 0 ]
        check "auto target: the target is the program DIR built" \
                "$PYTHON" -c 'import json, os, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if os.path.realpath(d["target"]) == os.path.realpath(sys.argv[2]) else 1)' \
                "$T/out" "$T/auto/prog"
        # A second program with the same files: which one is meant?
        printf 'all: prog prog2\nprog2: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n' > "$T/auto/Makefile.2"
        cat "$T/auto/Makefile" >> "$T/auto/Makefile.2"
        mv "$T/auto/Makefile.2" "$T/auto/Makefile"
        run_liveup build --diff "$CASES/two-files/fix.diff" --src "$T/auto" -o "$T/auto2.lpo" -- make
        refused 2 "give --target" "auto target: two programs with the file: bad usage (exit 2), naming --target"
}

[ $# -gt 0 ] || usage_tests
[ $# -gt 0 ] || auto_target_tests
for c in $cases; do
        if [ ! -f "$CASES/$c/expect" ]; then
                ok 1 "$c: no such case ($CASES/$c/expect)"
                continue
        fi
        run_case "$c"
done
plan "$tap_n"
done_testing
