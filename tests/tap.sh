# TAP for the shell tests (POSIX sh), sourced by tests/integration/lib.sh
# and tests/build/lib.sh:
#   plan N; ok STATUS DESCRIPTION; check DESCRIPTION CMD...;
#   skip DESCRIPTION REASON; diag TEXT; done_testing (exits 1 when any
#   test failed).

tap_n=0
tap_failed=0

plan() {
        echo "1..$1"
}

diag() {
        echo "# $*"
}

# ok STATUS DESCRIPTION: passes when STATUS is 0.
ok() {
        tap_n=$((tap_n + 1))
        if [ "$1" -eq 0 ]; then
                echo "ok $tap_n - $2"
        else
                echo "not ok $tap_n - $2"
                tap_failed=$((tap_failed + 1))
        fi
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
        desc=$1
        shift
        if "$@"; then
                ok 0 "$desc"
        else
                ok 1 "$desc"
        fi
}

skip() {
        tap_n=$((tap_n + 1))
        echo "ok $tap_n - $1 # SKIP $2"
}

done_testing() {
        [ "$tap_failed" -eq 0 ] || exit 1
        exit 0
}
