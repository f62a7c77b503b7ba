# Shared code of the build tests, sourced by tests/build/*.sh (POSIX sh).
# A test drives the real `liveup` ($LIVEUP) against the targets built in
# $LIVEUP_BUILD_TARGETS with the fixes in $LIVEUP_BUILD_TESTS/fixes, and
# prints TAP on stdout; anything else goes to stderr or "# " lines.
#
# TAP: plan N; ok STATUS DESCRIPTION; check DESCRIPTION CMD...; diag TEXT;
# the script ends with `done_testing` (exits 1 when any test failed).
#
#   run_liveup ARGS...        stdout, stderr, status in $T/out, $T/err, $RC
#   refused STATUS TEXT DESC  the last run exited STATUS, printed nothing on
#                             stdout and exactly one line on stderr,
#                             "liveup: ..." containing TEXT
#   lpo CMD ARGS...           tests/build/lpo.py (independent ELF checks)
#
# Every test runs in a scratch folder $T (also $TMPDIR, so that leftover
# temporary files of `liveup build` show), removed on exit.

set -u

if [ -z "${LIVEUP:-}" ] || [ -z "${LIVEUP_BUILD_TARGETS:-}" ] || [ -z "${LIVEUP_BUILD_TESTS:-}" ]; then
        echo "1..0 # SKIP LIVEUP, LIVEUP_BUILD_TARGETS and LIVEUP_BUILD_TESTS must be set"
        exit 0
fi
PYTHON=${PYTHON:-python3}
TARGETS=$LIVEUP_BUILD_TARGETS
FIXES=$LIVEUP_BUILD_TESTS/fixes

. "$LIVEUP_BUILD_TESTS/../tap.sh"
T=$(mktemp -d "${TMPDIR:-/tmp}/liveup-bt.XXXXXX")
mkdir "$T/tmp"
TMPDIR=$T/tmp
export TMPDIR
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
cd "$T" || exit 1






run_liveup() {
        "$LIVEUP" "$@" > "$T/out" 2> "$T/err"
        RC=$?
        return 0
}

lpo() {
        "$PYTHON" "$LIVEUP_BUILD_TESTS/lpo.py" "$@"
}

# The last run succeeded and printed no error.
succeeded() {
        if [ "$RC" -ne 0 ]; then
                diag "exit status $RC: $(head -c 400 "$T/err")"
                return 1
        fi
        return 0
}

refused() {
        want_rc=$1
        text=$2
        desc=$3
        status=0
        if [ "$RC" -ne "$want_rc" ]; then
                diag "exit status $RC, expected $want_rc"
                status=1
        fi
        if [ -s "$T/out" ]; then
                diag "stdout not empty: $(head -c 200 "$T/out")"
                status=1
        fi
        if [ "$(wc -l < "$T/err")" -ne 1 ] || ! head -n 1 "$T/err" | grep -q '^liveup: '; then
                diag "stderr is not one 'liveup: ' line: $(head -c 400 "$T/err")"
                status=1
        fi
        if ! grep -qF -- "$text" "$T/err"; then
                diag "stderr lacks '$text': $(head -c 400 "$T/err")"
                status=1
        fi
        ok $status "$desc"
}

# The scratch $TMPDIR holds nothing: liveup cleaned up after itself.
tmp_clean() {
        [ -z "$(ls -A "$TMPDIR")" ]
}
