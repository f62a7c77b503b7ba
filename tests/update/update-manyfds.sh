# A service that hands over a memfd and 1000 more fds (upd-big): the
# keeper sends the new version 1002 ITEM packets in a burst, more than
# its non-blocking socket's send buffer holds, so it must wait for room
# instead of cancelling the update with EAGAIN. Three updates in a row;
# every fd arrives and the memfd's content is the first version's.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 4

keeper_start big -- "$UPD_DIR/upd-big" --bytes 16777216 --fds 1000
expect '^ready gen=1 ' 30
ok $? "first version ready with a 16 MiB memfd and 1000 fds"
for g in 2 3 4; do
        run "$LIVEUP" update big
        [ "$RC" = 0 ] || diag "$(echo "$ERR" | tail -n 1)"
        expect "^ready gen=$g .*fds=1000 .*check=ok" 30
        ok $? "update to generation $g: 1002 items handed over ($LINE)"
done
done_testing
