# libliveup exports liveup_* and nothing else (the protocol codec compiled
# into it stays private), and needs no library beyond libc (no libelf,
# libdw or capstone; the sanitizer runtimes of an ASan build aside).
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/../tap.sh"
so=$1
plan 3
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sed 's/@.*//')
echo "$syms" | grep -q '^liveup_takeover$'
ok $? "liveup_takeover is exported"
other=$(echo "$syms" | grep -v '^liveup_' | grep -v '^LIVEUP_' | tr '\n' ' ')
test -z "$other"
ok $? "nothing else is exported (${other:-none})"
needed=$(readelf -d "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -v '^libc\.so' | grep -v '^ld-linux' | grep -Ev '^lib(a|ub)san' | tr '\n' ' ')
test -z "$needed"
ok $? "needs libc only (${needed:-nothing else})"
done_testing
