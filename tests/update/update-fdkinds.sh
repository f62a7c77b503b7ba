# Every kind of fd arrives in the new version working: listening TCP
# (accepts), connected TCP and a Unix socketpair (the "ping" written
# before the handover is read, then "pong" goes both ways), a pipe (same),
# an eventfd (its value, 42), a memfd (its content). upd-svc --fdkinds
# preserves one of each in the first version; the next checks them.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

plan 11

keeper_start fk -- "$SVC" --socket "$SOCK" --fdkinds
expect '^ready gen=1 '
ok $? "first version ready"
test "$(ask check)" = "check fresh"
ok $? "first version has nothing to check"
run "$LIVEUP" update fk --hold
ok $RC "update --hold"
expect '^fdcheck '
ok $? "new version checked the fds"
line=$LINE
for k in tcp-listen tcp unix pipe eventfd memfd; do
        test "$(field "$line" "$k")" = ok
        ok $? "$k arrived working ($(field "$line" "$k"))"
done
s=$("$LIVEUP" status fk --json)
for k in tcp-listen tcp unix pipe eventfd memfd; do
        echo "$s" | grep -q "\"kind\":\"$k\"" || { diag "status lacks kind $k"; false; } || break
done
ok $? "status (held) tells each item's kind"
