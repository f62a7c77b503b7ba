/* Scheduling priority of the tool during a stop window.
 *
 * Measured on this machine (research/feasibility.md, 2a): with busy target
 * threads and a normal-priority tracer, resuming 64 threads took 30 ms,
 * because each resumed thread preempts the tracer before it can resume the
 * next; at SCHED_FIFO the whole stop+resume took 1 ms. So the tool runs at
 * SCHED_FIFO priority 1 (the lowest real-time priority: it outranks every
 * normal thread, not other real-time work) only while threads are stopped,
 * and drops back right after. */
#include "proc/proc.h"
#include "base/log.h"

#include <sched.h>
#include <sys/resource.h>
#include <string.h>

bool proc_sched_raise(struct proc_sched_saved *saved)
{
        struct sched_param sp = { .sched_priority = 1 };
        struct sched_param old = {};

        saved->raised = false;
        saved->policy = sched_getscheduler(0);
        if (saved->policy < 0)
                return false;
        if (sched_getparam(0, &old) == 0)
                saved->priority = old.sched_priority;
        if (saved->policy == SCHED_FIFO || saved->policy == SCHED_RR)
                return false; /* already real-time: leave it */
        if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0) {
                log_debug("cannot raise to SCHED_FIFO: %s", strerror(errno));
                return false;
        }
        saved->raised = true;
        return true;
}

void proc_sched_restore(struct proc_sched_saved *saved)
{
        struct sched_param sp = { .sched_priority = saved->priority };

        if (!saved->raised)
                return;
        if (sched_setscheduler(0, saved->policy, &sp) < 0)
                log_debug("cannot restore scheduling policy: %s", strerror(errno));
        saved->raised = false;
}

bool proc_nice_raise(struct proc_nice_saved *saved)
{
        saved->raised = false;
        errno = 0;
        saved->nice = getpriority(PRIO_PROCESS, 0);
        if (errno != 0 || saved->nice <= -20)
                return false;
        /* PRIO_PROCESS with 0 is the calling thread on Linux. */
        if (setpriority(PRIO_PROCESS, 0, -20) < 0) {
                log_debug("cannot raise to nice -20: %s", strerror(errno));
                return false;
        }
        saved->raised = true;
        return true;
}

void proc_nice_restore(struct proc_nice_saved *saved)
{
        if (!saved->raised)
                return;
        if (setpriority(PRIO_PROCESS, 0, saved->nice) < 0)
                log_debug("cannot restore the nice level: %s", strerror(errno));
        saved->raised = false;
}
