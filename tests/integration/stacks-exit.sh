#!/bin/sh
# The target goes away while `liveup stacks` attaches, stops, unwinds or
# detaches (victim-exit: exit_group, execve from the main thread or from
# another thread, exit while threads are being created). liveup must end
# on its own (no hang, no crash) with 0 or with 1 and one line on stderr,
# and the target must end as it would have without liveup: status 0, from
# itself or from the /bin/true it executed.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lib.sh"

MODES="exit exec exec-thread spawn-exit"
DELAYS="0 2000 10000 40000 100000"

n=0
for m in $MODES; do for d in $DELAYS; do n=$((n + 1)); done; done
plan $((n * 2))

for m in $MODES; do
        for d in $DELAYS; do
                victim_start 0 victim-exit "$m" "$d" 4
                if ! victim_wait_ready 0; then
                        ok 1 "$m after $d µs: victim ready"
                        ok 1 "$m after $d µs: victim ends normally"
                        continue
                fi
                pid=$(victim_pid 0)
                timeout -s KILL 30 "$LIVEUP" stacks "$pid" > "$T/lu.out" 2> "$T/lu.err"
                rc=$?
                case $rc in
                0) res=0 ;;
                1) [ "$(lines "$T/lu.err")" -eq 1 ]; res=$? ;;
                *) res=1 ;;
                esac
                [ $res -eq 0 ] || diag "liveup -> $rc: $(head -c 300 "$T/lu.err")"
                ok $res "$m after $d µs: liveup ends with 0, or 1 and one line (got $rc)"
                victim_end 0
                [ "$V_STATUS" -eq 0 ]
                ok $? "$m after $d µs: victim ends normally (status $V_STATUS)"
        done
done

done_testing
