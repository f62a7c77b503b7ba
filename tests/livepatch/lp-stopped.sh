#!/bin/sh
# A process stopped by SIGSTOP (job control) is patched and reverted
# without being woken: liveup ends its ptrace relationship inside the
# last stop window (PTRACE_DETACH of threads that are in a group stop
# leaves them stopped), so after apply and after revert every thread is
# still stopped and untraced, and the patch takes effect when the
# process is continued. Also for a process whose threads run: no tracer
# is left and every thread goes on running.
. "${LIVEUP_TESTS_DIR:-$(dirname "$0")}/lplib.sh"

plan 25

# True when every thread of PID is in state $2 (T stopped, R/S running).
all_threads_in() {
        for s in /proc/"$1"/task/*/status; do
                st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "$s" 2>/dev/null)
                case "$2" in
                T) [ "$st" = T ] ;;
                *) [ "$st" != T ] && [ "$st" != t ] ;;
                esac || {
                        diag "$s: state $st"
                        return 1
                }
        done
        return 0
}

# Poll (bounded, about 5 s) until every thread of PID is stopped: SIGSTOP
# reaches the threads one by one, and a thread let go by its tracer goes
# back into the group stop asynchronously. The victim cannot run
# meanwhile: it answers only after SIGCONT, with the patched behaviour.
all_stopped() {
        i=0
        while [ $i -lt 100 ]; do
                all_threads_in "$1" T 2>/dev/null >/dev/null && return 0
                sleep 0.05
                i=$((i + 1))
        done
        all_threads_in "$1" T
}

# A worker that SIGSTOP caught inside compute() (a few % of its time)
# holds the check up for as long as the process stays stopped, and
# liveup rightly refuses, naming it. Such a stop is taken again: SIGCONT,
# a moment, SIGSTOP, and the same command (at most 20 times).
stopped_try() {
        st_i=0
        while :; do
                run_liveup "$@"
                [ $LU_RC -eq 0 ] && return 0
                grep -q "is on the stack of thread" "$T/lu.err" || return 0
                st_i=$((st_i + 1))
                [ $st_i -ge 20 ] && return 0
                diag "a worker was stopped inside compute(); stopping the process again"
                kill -CONT "$pid"
                sleep 0.05
                kill -STOP "$pid"
                all_stopped "$pid" || return 0
        done
}

build_patch p1 fix-100 lpt-pie-o2
ok $? "fix-100.c builds"

victim_start 0 lpt-pie-o2
victim_wait_ready 0
pid=$(victim_pid 0)

# The first patch must map memory (a remote mmap run by one of its
# threads): refused while every thread is stopped, the process untouched.
kill -STOP "$pid"
check "SIGSTOP: every thread of the victim is stopped" all_stopped "$pid"
maps_before=$(maps_of "$pid")
run_liveup apply "$pid" "$T/p1.lpo"
check "first apply to the stopped process: exit 1, one line" refused_with 1
check "... the message says why and what to do" \
        said "cannot patch pid $pid while it is stopped (job control): a first patch near '$LIVEUP_VICTIM_DIR/lpt-pie-o2' maps memory, which needs a thread that runs; send SIGCONT first"
[ "$(maps_of "$pid")" = "$maps_before" ]
ok $? "... its memory map is as it was"
check "... every thread is still stopped" all_stopped "$pid"
check "... no thread is traced" untraced "$pid"
kill -CONT "$pid"
behaves 0 1
ok $? "... after SIGCONT: original behaviour"

# Once it has an arena, a patch goes in with no thread running.
run_liveup apply "$pid" "$T/p1.lpo"
ok $LU_RC "apply while running (maps the arena)"
run_liveup revert "$pid"
ok $LU_RC "... and revert"
kill -STOP "$pid"
check "SIGSTOP: every thread of the victim is stopped" all_stopped "$pid"
stopped_try apply --timeout 0.3 "$pid" "$T/p1.lpo"
ok $LU_RC "apply to the stopped process (carved from the arena)"
check "... every thread is still stopped" all_stopped "$pid"
check "... no thread is traced" untraced "$pid"
kill -CONT "$pid"
behaves 0 100
ok $? "after SIGCONT: x + 100 in every thread"

kill -STOP "$pid"
check "SIGSTOP again: every thread stopped" all_stopped "$pid"
stopped_try revert --timeout 0.3 "$pid"
ok $LU_RC "revert in the stopped process"
check "... every thread is still stopped" all_stopped "$pid"
check "... no thread is traced" untraced "$pid"
kill -CONT "$pid"
behaves 0 1
ok $? "after SIGCONT: original behaviour"

# Running threads: after apply, nothing traced and every thread runs on.
run_liveup apply "$pid" "$T/p1.lpo"
ok $LU_RC "apply to the running process"
check "... no thread is traced" untraced "$pid"
check "... no thread is left stopped" all_threads_in "$pid" R
behaves 0 100
ok $? "... x + 100 in every thread"
alive "$pid"
ok $? "victim alive"
