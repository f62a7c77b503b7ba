# Shared code of the live-patching tests, sourced by each
# tests/livepatch/*.sh (POSIX sh) on top of tests/integration/lib.sh
# (victims on FIFOs, TAP helpers, run_liveup). The victims are the
# lpt-* targets ($LIVEUP_VICTIM_DIR, see lpt-main.c), run at nice 19;
# patches are built from fixes/*.c with the real `liveup build --replace`
# while the test runs, against the target binary the test names:
#
#   build_patch NAME FIX TARGET [CFLAGS...]
#                           fixes/FIX.c for TARGET (a file name in
#                           $LIVEUP_VICTIM_DIR, or a path), with patch name
#                           NAME, into $T/NAME.lpo; the patch id in $PATCH_ID
#   behaves ID DELTA        victim ID answers "check" with compute(x) - x
#                           = DELTA, in its main thread and in every worker
#   pid_untouched PID       `liveup patches PID` says "no patches", and no
#                           "/memfd:liveup" mapping and no tracer is left
#   refused_with RC         the last run_liveup exited RC with one line on
#                           stderr and nothing on stdout
#   maps_of PID             the process's mappings (address range, perms,
#                           path), to compare before and after a refusal

. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/../integration/lib.sh"

V_NICE=${V_NICE:-19}

# Meson points LD_LIBRARY_PATH at the folders of the shared libraries the
# tests depend on, alt/ included, in no fixed order. lpt-shared finds its
# liblpt.so by its RUNPATH ($ORIGIN); only the test that wants alt/'s
# sets LD_LIBRARY_PATH, for that one process.
unset LD_LIBRARY_PATH

# As lib.sh's, but a diagnostic stays one "# " line when stderr has
# several (apply --all: one per process).
run_liveup() {
        "$LIVEUP" "$@" > "$T/lu.out" 2> "$T/lu.err"
        LU_RC=$?
        if [ $LU_RC -ne 0 ]; then
                diag "liveup $* -> $LU_RC: $(head -c 400 "$T/lu.err" | tr '\n' ' ')"
        fi
        return 0
}
FIXES=$LIVEUP_TESTS_DIR/fixes
LPT_ALT_DIR=${LPT_ALT_DIR:-$LIVEUP_VICTIM_DIR/alt}

build_patch() {
        bp_name=$1
        bp_fix=$2
        bp_target=$3
        shift 3
        case $bp_target in
        /*) ;;
        *) bp_target=$LIVEUP_VICTIM_DIR/$bp_target ;;
        esac
        PATCH_ID=
        if [ $# -gt 0 ]; then
                "$LIVEUP" build --replace "$FIXES/$bp_fix.c" --target "$bp_target" \
                        --name "$bp_name" -o "$T/$bp_name.lpo" -- "$@" \
                        > "$T/build.out" 2> "$T/build.err"
        else
                "$LIVEUP" build --replace "$FIXES/$bp_fix.c" --target "$bp_target" \
                        --name "$bp_name" -o "$T/$bp_name.lpo" \
                        > "$T/build.out" 2> "$T/build.err"
        fi
        BUILD_RC=$?
        if [ $BUILD_RC -ne 0 ]; then
                diag "liveup build $bp_fix.c for $bp_target -> $BUILD_RC: $(head -c 400 "$T/build.err" | tr '\n' ' ')"
                return 1
        fi
        PATCH_ID=$("$LIVEUP" inspect --json "$T/$bp_name.lpo" |
                "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])')
        [ -n "$PATCH_ID" ]
}

behaves() {
        victim_ask "$1" check || return 1
        CHECK=$REPLY
        bh_now=$(field "$CHECK" now)
        bh_seen=$(field "$CHECK" seen)
        bh_workers=$(field "$CHECK" workers)
        if [ "$bh_now" = "$2" ] && [ "$bh_seen" = "$2" ] &&
                [ "${bh_workers%/*}" = "${bh_workers#*/}" ]; then
                return 0
        fi
        diag "victim $1: expected delta $2, got: $CHECK"
        return 1
}

no_registry() {
        ! grep -q '/memfd:liveup' /proc/"$1"/maps
}

pid_untouched() {
        "$LIVEUP" patches "$1" > "$T/pu.out" 2> "$T/pu.err" || {
                diag "liveup patches $1 failed: $(cat "$T/pu.err")"
                return 1
        }
        if [ "$(cat "$T/pu.out")" != "pid $1: no patches" ]; then
                diag "liveup patches $1: $(head -c 300 "$T/pu.out")"
                return 1
        fi
        if ! no_registry "$1"; then
                diag "pid $1 still maps $(grep '/memfd:liveup' /proc/"$1"/maps)"
                return 1
        fi
        untraced "$1"
}

refused_with() {
        [ "$LU_RC" -eq "$1" ] && [ "$(lines "$T/lu.err")" -eq 1 ] && [ ! -s "$T/lu.out" ]
}

# The stderr line of the last run_liveup contains a (fixed) string.
said() {
        grep -qF -- "$1" "$T/lu.err" || {
                diag "stderr does not say '$1': $(head -c 300 "$T/lu.err")"
                return 1
        }
}

maps_of() {
        awk '{ print $1, $2, $6 }' /proc/"$1"/maps
}

# The first field after "applied " in the last run_liveup's stdout: the
# id apply reports.
applied_id() {
        sed -n 's/^applied \([^ ]*\) to pid .*/\1/p' "$T/lu.out" | head -n 1
}
