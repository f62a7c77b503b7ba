/* The stop consistency model (kpatch, Ksplice): stop every thread, unwind
 * every stack, and only if no frame lies in the code being replaced (or
 * removed) make the change, while the threads are still stopped; else
 * resume and retry with backoff until a timeout.
 *
 * Each attempt starts with a probe (proc_probe_all): threads are stopped
 * alone, their stacks checked, and resumed at once. A probe that finds a
 * stack in the ranges backs off without stopping every thread (a window
 * that would only fail); a clear probe is followed at once by the window,
 * which decides. The first probe has a budget of 2 ms: it runs the tool's
 * stop path once before the window (whose first run in a freshly started
 * tool was ~20% longer at 16 busy threads) and finds a stack that is busy
 * at that moment in a thread asleep or on a CPU. Once a stack was found
 * busy, the next probes get 50 ms, to reach every thread before another
 * window. */
#pragma once

#include "proc/proc.h"
#include "proc/unwind.h"

struct lp_range {
        uint64_t start, end; /* [start, end) in the target */
        const char *name;    /* for messages: the function */
};

/* Called with every thread stopped and every stack clear of the ranges:
 * make the change. On failure it must leave the target as it was. */
typedef int (*lp_commit_fn)(void *userdata, struct errbuf *err);

struct lp_transition_result {
        unsigned attempts;      /* stop windows of the transition */
        unsigned windows;       /* all stop windows, the transition's included */
        uint64_t held_max_ns;   /* longest single stop window */
        uint64_t held_total_ns; /* all windows together */
        unsigned probes;        /* per-thread probes (proc_probe_all) */
        unsigned probes_busy;   /* ... that found a stack in the ranges */
        uint64_t probe_held_max_ns; /* longest hold of one thread in a probe */
        /* When refused: who was in the way. */
        pid_t busy_tid;
        char busy_what[512];
};

/* Flags of lp_transition_stop(). */
enum {
        /* After a successful commit, detach from every thread instead of
         * resuming it: the last window of the operation ends the ptrace
         * relationship while the threads are stopped anyway, instead of
         * stopping them all once more for proc_detach(). */
        LP_TRANSITION_DETACH = 1 << 0,
};

/* Returns 0 when committed; -EBUSY when the ranges stayed on some stack
 * (or a stack could not be unwound reliably) until `timeout` seconds
 * passed (err names the function and thread); other errors from stopping
 * or committing. */
int lp_transition_stop(struct proc *p, struct proc_unwinder *u, const struct lp_range *ranges,
                       size_t n_ranges, double timeout, lp_commit_fn commit, void *userdata,
                       unsigned flags, struct lp_transition_result *ret, struct errbuf *err);

/* A stop window for work other than the transition's check (remote
 * syscalls to map memory, undoing a failed apply): every thread stopped,
 * the tool at SCHED_FIFO, the time held added to *acct. */
struct lp_window {
        struct proc_sched_saved sched;
        uint64_t t0;
};
int lp_window_open(struct proc *p, struct lp_window *w, struct errbuf *err);
/* Resume every thread; returns the first error of proc_resume_all(). */
int lp_window_close(struct proc *p, struct lp_window *w, struct lp_transition_result *acct,
                    struct errbuf *err);
/* Add the windows of `b` to `a`. */
void lp_transition_add(struct lp_transition_result *a, const struct lp_transition_result *b);
