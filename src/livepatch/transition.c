/* The stop consistency model; see transition.h.
 *
 * A frame's pc counts as "in" a function when it lies in [start, end):
 * the innermost frame (and a signal frame) by its exact pc, the others by
 * pc - 1, because a return address may point just past the end of a
 * function that ends with a call. A stack the unwinder could not follow
 * to its end counts as busy: we cannot prove it clear (the kernel's
 * livepatch refuses unreliable stacks the same way). A thread created
 * while stopping, which has not run yet, holds no frame of ours.
 *
 * Inside the window nothing is symbolised and nothing allocates per
 * frame; the names for the refusal message are looked up after resuming.
 * The tool runs at SCHED_FIFO only while threads are stopped. */
#include "livepatch/transition.h"
#include "base/log.h"
#include "base/procfs.h"

#include <string.h>

#define BACKOFF_MIN_NS (1ull * 1000000)
#define BACKOFF_MAX_NS (100ull * 1000000)
/* Probe budgets (see transition.h): the first, and once a stack was busy.
 * A whole probe of 16 busy threads on 2 CPUs takes ~60 ms; 2 ms gave the
 * window the same head start (held 461 µs against 468 µs after 50 ms, 538
 * µs with no probe; medians of 15). */
#define PROBE_WARM_NS (2ull * 1000000)
#define PROBE_FULL_NS (50ull * 1000000)

struct busy {
        pid_t tid;
        const struct lp_range *range; /* NULL: unreliable stack */
        char reason[128];
};

static const struct lp_range *frame_in(const struct proc_frame *f, const struct lp_range *ranges,
                                       size_t n)
{
        uint64_t pc = f->activation ? f->pc : f->pc - 1;

        for (size_t i = 0; i < n; i++)
                if (pc >= ranges[i].start && pc < ranges[i].end)
                        return &ranges[i];
        return NULL;
}

struct check {
        struct proc_unwinder *u;
        const struct lp_range *ranges;
        size_t n;
        struct busy *busy;
};

/* For each thread as soon as it is stopped (proc_stop_all_visit): is its
 * stack clear? -EBUSY abandons the stop at the first one that is not. */
static int check_thread(struct proc *p, struct proc_thread *t, void *userdata)
{
        struct check *c = userdata;
        struct busy *busy = c->busy;
        struct proc_stack st = {};
        int r;

        if (t->unborn)
                return 0;
        r = proc_unwind_thread(c->u, t, 0, &st);
        if (r < 0) {
                busy->tid = t->tid;
                busy->range = NULL;
                snprintf(busy->reason, sizeof(busy->reason), "%s", strerror(-r));
                return -EBUSY;
        }
        for (size_t k = 0; k < st.n; k++) {
                const struct lp_range *hit = frame_in(&st.frames[k], c->ranges, c->n);
                if (hit) {
                        busy->tid = t->tid;
                        busy->range = hit;
                        proc_stack_done(&st);
                        return -EBUSY;
                }
        }
        if (st.error != 0) {
                busy->tid = t->tid;
                busy->range = NULL;
                snprintf(busy->reason, sizeof(busy->reason), "%s", st.reason);
                proc_stack_done(&st);
                return -EBUSY;
        }
        proc_stack_done(&st);
        return 0;
}

int lp_transition_stop(struct proc *p, struct proc_unwinder *u, const struct lp_range *ranges,
                       size_t n_ranges, double timeout, lp_commit_fn commit, void *userdata,
                       unsigned flags, struct lp_transition_result *ret, struct errbuf *err)
{
        uint64_t start = now_ns(), deadline = start + (uint64_t)(timeout * 1e9);
        uint64_t backoff = BACKOFF_MIN_NS, probe_budget = PROBE_WARM_NS;
        struct lp_transition_result res = {};
        struct busy busy = {};
        int r;

        struct check check = { u, ranges, n_ranges, &busy };

        /* Room to read the stacks ahead in the window (a failure only
         * leaves each stack to be read when unwound). */
        (void)proc_unwinder_reserve(u, proc_n_threads(p) + 8);

        for (;;) {
                struct proc_sched_saved sched;
                bool clear, detach;
                uint64_t t0, probe_held = 0;

                proc_sched_raise(&sched);
                r = proc_probe_all(p, check_thread, &check, probe_budget, &probe_held, err);
                res.probes++;
                res.probe_held_max_ns = MAX(res.probe_held_max_ns, probe_held);
                if (r < 0 && r != -EBUSY) {
                        proc_sched_restore(&sched);
                        goto out;
                }
                if (r == -EBUSY) {
                        res.probes_busy++;
                        log_debug("probe: thread %d busy; each thread held %.0f µs at most",
                                  busy.tid, (double)probe_held / 1e3);
                        /* A probe only saves a window that would fail; the
                         * last chance before the deadline is a window. */
                        if (now_ns() + backoff <= deadline) {
                                proc_sched_restore(&sched);
                                goto backoff;
                        }
                } else
                        log_debug("probe: clear; each thread held %.0f µs at most",
                                  (double)probe_held / 1e3);
                t0 = now_ns();
                /* Every stack is checked with every thread stopped (see
                 * proc_stop_all_visit for when); the first busy one
                 * abandons the stop (every thread resumed). */
                r = proc_stop_all_visit(p, check_thread, &check, u, err);
                if (r < 0 && r != -EBUSY) {
                        proc_sched_restore(&sched);
                        goto out;
                }
                res.attempts++;
                res.windows++;
                clear = r == 0;
                uint64_t t1 = now_ns();
                if (clear)
                        r = commit(userdata, err);
                uint64_t t2 = now_ns();
                int q = 0;
                detach = clear && r >= 0 && (flags & LP_TRANSITION_DETACH);
                if (detach) {
                        /* The change is made: a failed detach must not
                         * turn it into a failure the caller would undo.
                         * (proc_detach lets go of every thread it can.) */
                        q = proc_detach(p);
                        if (q < 0)
                                log_warning("pid %d: the change is made, but letting go of its "
                                            "threads failed: %s", proc_pid(p), strerror(-q));
                        q = 0;
                } else if (clear)
                        q = proc_resume_all(p, r < 0 ? NULL : err);
                uint64_t held = now_ns() - t0;
                proc_sched_restore(&sched);
                log_debug("stop window: stop and check %.0f µs, commit %.0f µs, %s %.0f µs%s",
                          (double)(t1 - t0) / 1e3, (double)(t2 - t1) / 1e3,
                          detach ? "detach" : "resume",
                          (double)(t0 + held - t2) / 1e3, clear ? "" : " (busy)");
                res.held_total_ns += held;
                res.held_max_ns = MAX(res.held_max_ns, held);
                if (clear) {
                        if (r >= 0)
                                r = q;
                        goto out;
                }
        backoff:
                probe_budget = PROBE_FULL_NS;
                if (now_ns() + backoff > deadline)
                        break;
                /* Let the threads run a while, serving their events. */
                r = proc_wait_events(p, backoff);
                if (r < 0) {
                        errbuf_set(err, "pid %d %s during the operation", proc_pid(p),
                                   proc_gone_reason(p) ? proc_gone_reason(p) : "exited");
                        goto out;
                }
                backoff = MIN(backoff * 2, BACKOFF_MAX_NS);
        }

        /* Refused: name the function and the thread (now that it runs,
         * /proc can be read at leisure). */
        {
                char tname[64] = "?";
                procfs_thread_name(proc_pid(p), busy.tid, tname, sizeof(tname));
                res.busy_tid = busy.tid;
                if (busy.range)
                        snprintf(res.busy_what, sizeof(res.busy_what),
                                 "function '%s' is on the stack of thread %d (\"%s\")",
                                 busy.range->name, busy.tid, tname);
                else
                        snprintf(res.busy_what, sizeof(res.busy_what),
                                 "the stack of thread %d (\"%s\") cannot be unwound reliably "
                                 "(%s)",
                                 busy.tid, tname, busy.reason);
                errbuf_set(err, "%s; retried for %.1f s", res.busy_what,
                           (double)(now_ns() - start) / 1e9);
                r = -EBUSY;
        }
out:
        if (ret)
                *ret = res;
        return r;
}

int lp_window_open(struct proc *p, struct lp_window *w, struct errbuf *err)
{
        int r;

        proc_sched_raise(&w->sched);
        w->t0 = now_ns();
        r = proc_stop_all(p, err);
        if (r < 0)
                proc_sched_restore(&w->sched);
        return r;
}

int lp_window_close(struct proc *p, struct lp_window *w, struct lp_transition_result *acct,
                    struct errbuf *err)
{
        int r = proc_resume_all(p, err);
        uint64_t held = now_ns() - w->t0;

        proc_sched_restore(&w->sched);
        if (acct) {
                acct->windows++;
                acct->held_total_ns += held;
                acct->held_max_ns = MAX(acct->held_max_ns, held);
        }
        log_debug("stop window (preparation): %.0f µs", (double)held / 1e3);
        return r;
}

void lp_transition_add(struct lp_transition_result *a, const struct lp_transition_result *b)
{
        a->windows += b->windows;
        a->held_total_ns += b->held_total_ns;
        a->held_max_ns = MAX(a->held_max_ns, b->held_max_ns);
}
