/* bench-stop: how long liveup holds a process stopped, against a bare
 * ptrace baseline, and what unwinding every stack costs inside the stop.
 *
 *   bench-stop [--quick] [--json] [--reps N] [--threads LIST] [--mode busy|idle]
 *              [--victim-dir DIR]
 *
 * For every cell (victim-n with 1, 16, 64, 256 threads; busy and idle) a
 * fresh victim is started and awaited ("ready" on its stdout), then:
 * - baseline: raw ptrace, as in research/feasibility.md 2(a): PTRACE_SEIZE
 *   every thread; per repetition PTRACE_INTERRUPT all, waitpid(__WALL)
 *   until all report PTRACE_EVENT_STOP, PTRACE_GETREGS all, PTRACE_CONT
 *   all. The window runs from the first INTERRUPT to the return of the
 *   last CONT. The tracer runs at SCHED_FIFO priority 1 during the window,
 *   as src/proc/sched.c does (and the output says when it could not).
 *   This is the one place outside src/proc that calls ptrace: it measures
 *   the floor that src/proc is compared with.
 * - liveup: proc_attach(); per repetition proc_sched_raise(),
 *   proc_stop_all(), proc_regs() of every thread, proc_resume_all(),
 *   proc_sched_restore(); the window runs from the call of proc_stop_all()
 *   to the return of proc_resume_all() (--json also gives the three
 *   phases apart).
 * - unwind: proc_unwinder_new() once (the one-time setup, timed), then per
 *   repetition, inside a stop window, proc_unwind_thread() for every
 *   thread; the cost per thread is the unwinding time over N. The first
 *   repetition (cold caches) is reported apart. In the same window every
 *   thread is unwound a second time with the fast path off (libdw alone,
 *   proc_unwinder_set_path), for comparison; the two go in alternating
 *   order. "fast" is the share of stacks the fast path took.
 * Repetitions are 20 ms apart (liveup's go through proc_wait_events(), so
 * events of the running target are served meanwhile). The first
 * repetition of every series is discarded. Medians and p90s are over the
 * rest (nearest rank). */
#include "common.h"
#include "base/procfs.h"
#include "base/util.h"
#include "proc/proc.h"
#include "proc/unwind.h"

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#ifndef VICTIM_DIR
#define VICTIM_DIR "."
#endif

#define PACE_NS (20ull * 1000 * 1000)
#define READY_TIMEOUT_MS 60000

struct cell {
        unsigned threads;
        const char *mode;

        /* baseline */
        struct stats base_window, base_stopped, base_getregs, base_cont;
        char base_error[256];

        /* liveup */
        struct stats lu_window, lu_stop, lu_regs, lu_resume;
        size_t lu_threads_seen;
        double lu_attach_us, lu_detach_us;
        char lu_error[256];

        /* unwind */
        struct stats uw_per_thread;
        struct stats uw_libdw_per_thread; /* the fast path off */
        double uw_fast_share;             /* stacks the fast path took, 0..1 */
        double uw_setup_us, uw_first_us; /* first: all threads, cold */
        double uw_frames_avg;
        size_t uw_incomplete; /* stacks with error != 0, over all reps */
        char uw_error[256];
};

struct options {
        unsigned reps;
        bool json;
        const char *victim_dir;
        unsigned threads[16];
        size_t n_threads;
        const char *modes[2];
        size_t n_modes;
};


struct victim {
        pid_t pid;
};

/* Start `victim-n N MODE` and wait for its "ready" line. */
static int victim_start(const char *dir, unsigned n, const char *mode, struct victim *ret)
{
        char path[4096], nbuf[16], line[64];
        size_t len = 0;
        int fds[2], r = 0;
        pid_t pid;

        snprintf(path, sizeof(path), "%s/victim-n", dir);
        snprintf(nbuf, sizeof(nbuf), "%u", n);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                execl(path, "victim-n", nbuf, mode, (char *)NULL);
                fprintf(stderr, "bench-stop: cannot run %s: %m\n", path);
                _exit(127);
        }
        close(fds[1]);

        while (len < sizeof(line) - 1) {
                struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
                ssize_t k;

                r = poll(&pfd, 1, READY_TIMEOUT_MS);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        r = r < 0 ? -errno : -ETIMEDOUT;
                        break;
                }
                k = read(fds[0], line + len, sizeof(line) - 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = -ECHILD; /* it died before "ready" */
                        break;
                }
                len += (size_t)k;
                line[len] = 0;
                if (strstr(line, "ready\n")) {
                        r = 0;
                        break;
                }
        }
        close(fds[0]);
        if (r < 0 || len >= sizeof(line) - 1) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return r < 0 ? r : -EPROTO;
        }
        ret->pid = pid;
        return 0;
}

static void victim_stop(struct victim *v)
{
        if (v->pid <= 0)
                return;
        kill(v->pid, SIGKILL);
        while (waitpid(v->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        v->pid = 0;
}

/* ---- baseline: raw ptrace ------------------------------------------------ */

static void run_baseline(pid_t pid, unsigned reps, struct cell *c)
{
        _cleanup_free_ pid_t *tids = NULL;
        struct series window = {}, stopped = {}, getregs = {}, cont = {};
        size_t n = 0, n_seized = 0;
        int r;

        r = procfs_tasks(pid, &tids, &n);
        if (r < 0) {
                snprintf(c->base_error, sizeof(c->base_error), "listing threads: %s",
                         strerror(-r));
                return;
        }
        if (series_init(&window, reps) < 0 || series_init(&stopped, reps) < 0 ||
            series_init(&getregs, reps) < 0 || series_init(&cont, reps) < 0) {
                snprintf(c->base_error, sizeof(c->base_error), "out of memory");
                goto out;
        }
        for (; n_seized < n; n_seized++)
                if (ptrace(PTRACE_SEIZE, tids[n_seized], 0, 0) < 0) {
                        snprintf(c->base_error, sizeof(c->base_error), "seize %d: %s",
                                 tids[n_seized], strerror(errno));
                        goto out_detach;
                }

        for (unsigned rep = 0; rep < reps; rep++) {
                struct user_regs_struct regs;
                uint64_t t0, t1, t2, t3;
                bool raised;

                pace();
                raised = fifo_raise();
                t0 = now_ns();
                for (size_t i = 0; i < n; i++)
                        ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
                r = wait_all_stopped(tids, n, c->base_error, sizeof(c->base_error));
                if (r < 0) {
                        fifo_lower(raised);
                        goto out_detach;
                }
                t1 = now_ns();
                for (size_t i = 0; i < n; i++)
                        ptrace(PTRACE_GETREGS, tids[i], 0, &regs);
                t2 = now_ns();
                for (size_t i = 0; i < n; i++)
                        ptrace(PTRACE_CONT, tids[i], 0, 0);
                t3 = now_ns();
                fifo_lower(raised);

                window.v[window.n++] = us_since(t0, t3);
                stopped.v[stopped.n++] = us_since(t0, t1);
                getregs.v[getregs.n++] = us_since(t1, t2);
                cont.v[cont.n++] = us_since(t2, t3);
        }
        c->base_window = stats_of(&window, 1);
        c->base_stopped = stats_of(&stopped, 1);
        c->base_getregs = stats_of(&getregs, 1);
        c->base_cont = stats_of(&cont, 1);

out_detach:
        /* PTRACE_DETACH needs a stopped tracee. */
        for (size_t i = 0; i < n_seized; i++)
                ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
        if (n_seized == n) {
                char ignored[64];
                wait_all_stopped(tids, n, ignored, sizeof(ignored));
        }
        for (size_t i = 0; i < n_seized; i++)
                ptrace(PTRACE_DETACH, tids[i], 0, 0);
out:
        series_done(&window);
        series_done(&stopped);
        series_done(&getregs);
        series_done(&cont);
}

/* ---- liveup: src/proc ----------------------------------------------------- */

static int fetch_all_regs(struct proc *p, struct errbuf *err)
{
        int r;

        for (size_t i = 0; i < proc_n_threads(p); i++) {
                const struct arch_regs *regs;
                struct proc_thread *t = proc_thread_at(p, i);

                if (t->state != PROC_THREAD_STOPPED)
                        continue;
                r = proc_regs(p, t, &regs);
                if (r < 0) {
                        errbuf_set(err, "registers of thread %d: %s", t->tid, strerror(-r));
                        return r;
                }
        }
        return 0;
}

static int stop_and_fetch(struct proc *p, struct errbuf *err)
{
        int r;

        r = proc_stop_all(p, err);
        if (r < 0)
                return r;
        return fetch_all_regs(p, err);
}

static int unwind_all(struct proc *p, struct proc_unwinder *u, size_t *ret_frames,
                      size_t *ret_incomplete, struct errbuf *err)
{
        size_t frames = 0, incomplete = 0;

        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                struct proc_stack s = {};
                int r;

                if (t->state != PROC_THREAD_STOPPED)
                        continue;
                r = proc_unwind_thread(u, t, 0, &s);
                if (r < 0) {
                        errbuf_set(err, "unwinding thread %d: %s", t->tid, strerror(-r));
                        return r;
                }
                frames += s.n;
                if (s.error != 0)
                        incomplete++;
                proc_stack_done(&s);
        }
        *ret_frames = frames;
        *ret_incomplete = incomplete;
        return 0;
}

static void run_liveup(pid_t pid, unsigned reps, struct cell *c)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct series window = {}, stop = {}, regs = {}, resume = {}, unwind = {},
                      unwind_libdw = {};
        struct proc_unwind_stats st0 = {}, st1 = {};
        size_t frames_total = 0, stacks_total = 0;
        struct errbuf err = {};
        uint64_t t0, t1;
        int r;

        if (series_init(&window, reps) < 0 || series_init(&stop, reps) < 0 ||
            series_init(&regs, reps) < 0 || series_init(&resume, reps) < 0 ||
            series_init(&unwind, reps) < 0 || series_init(&unwind_libdw, reps) < 0) {
                snprintf(c->lu_error, sizeof(c->lu_error), "out of memory");
                goto out;
        }

        t0 = now_ns();
        r = proc_attach(pid, NULL, &p, &err);
        t1 = now_ns();
        if (r < 0) {
                snprintf(c->lu_error, sizeof(c->lu_error), "attach: %s",
                         errbuf_or_strerror(&err, r));
                goto out;
        }
        c->lu_attach_us = us_since(t0, t1);

        for (unsigned rep = 0; rep < reps; rep++) {
                struct proc_sched_saved saved = {};
                uint64_t t_stopped = 0, t_regs = 0;

                proc_wait_events(p, PACE_NS);
                proc_sched_raise(&saved);
                t0 = now_ns();
                r = proc_stop_all(p, &err);
                if (r >= 0) {
                        t_stopped = now_ns();
                        r = fetch_all_regs(p, &err);
                        t_regs = now_ns();
                }
                if (r >= 0)
                        r = proc_resume_all(p, &err);
                t1 = now_ns();
                proc_sched_restore(&saved);
                if (r < 0) {
                        snprintf(c->lu_error, sizeof(c->lu_error), "stop window: %s",
                                 errbuf_or_strerror(&err, r));
                        goto out;
                }
                window.v[window.n++] = us_since(t0, t1);
                stop.v[stop.n++] = us_since(t0, t_stopped);
                regs.v[regs.n++] = us_since(t_stopped, t_regs);
                resume.v[resume.n++] = us_since(t_regs, t1);
                c->lu_threads_seen = proc_n_threads(p);
        }
        c->lu_window = stats_of(&window, 1);
        c->lu_stop = stats_of(&stop, 1);
        c->lu_regs = stats_of(&regs, 1);
        c->lu_resume = stats_of(&resume, 1);

        /* Unwinding: setup once (before any stop, as the tool does), then
         * every thread inside a stop window. */
        t0 = now_ns();
        r = proc_unwinder_new(p, &u, &err);
        t1 = now_ns();
        if (r < 0) {
                snprintf(c->uw_error, sizeof(c->uw_error), "unwinder setup: %s",
                         errbuf_or_strerror(&err, r));
                goto detach;
        }
        c->uw_setup_us = us_since(t0, t1);

        for (unsigned rep = 0; rep < reps; rep++) {
                struct proc_sched_saved saved = {};
                size_t frames = 0, incomplete = 0, n, f2, i2;
                uint64_t t2 = 0, t3 = 0, t4 = 0, t5 = 0;

                proc_wait_events(p, PACE_NS);
                proc_sched_raise(&saved);
                r = stop_and_fetch(p, &err);
                for (int pass = 0; pass < 2 && r >= 0; pass++) {
                        bool libdw = (pass + rep) % 2 == 1;

                        proc_unwinder_set_path(u, libdw ? PROC_UNWIND_LIBDW : PROC_UNWIND_AUTO);
                        if (!libdw)
                                proc_unwinder_stats(u, &st0);
                        *(libdw ? &t4 : &t2) = now_ns();
                        r = libdw ? unwind_all(p, u, &f2, &i2, &err)
                                  : unwind_all(p, u, &frames, &incomplete, &err);
                        *(libdw ? &t5 : &t3) = now_ns();
                        if (!libdw && rep > 0) {
                                proc_unwinder_stats(u, &st1);
                                c->uw_fast_share += (double)(st1.fast_threads - st0.fast_threads);
                        }
                }
                proc_unwinder_set_path(u, PROC_UNWIND_AUTO);
                n = proc_n_threads(p);
                if (r >= 0)
                        r = proc_resume_all(p, &err);
                else
                        proc_resume_all(p, NULL);
                proc_sched_restore(&saved);
                if (r < 0) {
                        snprintf(c->uw_error, sizeof(c->uw_error), "%s",
                                 errbuf_or_strerror(&err, r));
                        goto detach;
                }
                if (rep == 0)
                        c->uw_first_us = us_since(t2, t3);
                else {
                        frames_total += frames;
                        stacks_total += n;
                        c->uw_incomplete += incomplete;
                }
                unwind.v[unwind.n++] = us_since(t2, t3) / (double)(n ? n : 1);
                unwind_libdw.v[unwind_libdw.n++] = us_since(t4, t5) / (double)(n ? n : 1);
        }
        c->uw_per_thread = stats_of(&unwind, 1);
        c->uw_libdw_per_thread = stats_of(&unwind_libdw, 1);
        c->uw_fast_share = stacks_total ? c->uw_fast_share / (double)stacks_total : 0;
        c->uw_frames_avg = stacks_total ? (double)frames_total / (double)stacks_total : 0;

detach:
        proc_unwinder_free(TAKE_PTR(u));
        t0 = now_ns();
        r = proc_detach(p);
        t1 = now_ns();
        c->lu_detach_us = us_since(t0, t1);
        if (r < 0 && !c->lu_error[0])
                snprintf(c->lu_error, sizeof(c->lu_error), "detach: %s", strerror(-r));
out:
        series_done(&window);
        series_done(&stop);
        series_done(&regs);
        series_done(&resume);
        series_done(&unwind);
        series_done(&unwind_libdw);
}

/* ---- output --------------------------------------------------------------- */

static void print_table_header(const struct options *o)
{
        printf("bench-stop: stop-the-world window, µs, median / p90 over %u repetitions\n",
               o->reps - 1);
        if (fifo_ok)
                printf("baseline tracer: SCHED_FIFO priority 1 during each window\n");
        else
                printf("baseline tracer: normal priority (SCHED_FIFO refused: %s)\n", fifo_error);
        printf("\n%7s  %-4s  %15s  %15s  %6s  %10s  %13s  %5s  %12s  %12s\n", "threads", "mode",
               "baseline", "liveup", "ratio", "µs/thread", "unwind µs/thr", "fast",
               "libdw µs/thr", "unwind setup");
}

static void print_table_row(const struct cell *c)
{
        char base[32], lu[32], ratio[16] = "n/a", per[16] = "n/a", uw[16] = "n/a",
             setup[16] = "n/a", share[16] = "n/a", uwl[16] = "n/a";

        fmt_stat(base, sizeof(base), &c->base_window);
        fmt_stat(lu, sizeof(lu), &c->lu_window);
        if (c->base_window.valid && c->lu_window.valid && c->base_window.median > 0)
                snprintf(ratio, sizeof(ratio), "%.2f",
                         c->lu_window.median / c->base_window.median);
        if (c->lu_window.valid)
                snprintf(per, sizeof(per), "%.1f", c->lu_window.median / c->threads);
        if (c->uw_per_thread.valid) {
                snprintf(uw, sizeof(uw), "%.1f", c->uw_per_thread.median);
                snprintf(share, sizeof(share), "%.0f%%", c->uw_fast_share * 100);
        }
        if (c->uw_libdw_per_thread.valid)
                snprintf(uwl, sizeof(uwl), "%.1f", c->uw_libdw_per_thread.median);
        if (c->uw_setup_us > 0)
                snprintf(setup, sizeof(setup), "%.2f ms", c->uw_setup_us / 1000.0);
        printf("%7u  %-4s  %15s  %15s  %6s  %10s  %13s  %5s  %12s  %12s\n", c->threads, c->mode,
               base, lu, ratio, per, uw, share, uwl, setup);
        fflush(stdout);
}

static void print_table_notes(const struct cell *cells, size_t n)
{
        bool any = false;

        for (size_t i = 0; i < n; i++) {
                const struct cell *c = &cells[i];
                const char *errs[] = { c->base_error, c->lu_error, c->uw_error };
                const char *what[] = { "baseline", "liveup", "unwind" };

                for (size_t k = 0; k < ELEMENTSOF(errs); k++)
                        if (errs[k][0]) {
                                if (!any)
                                        printf("\n");
                                any = true;
                                printf("%u %s %s: %s\n", c->threads, c->mode, what[k], errs[k]);
                        }
                if (c->uw_incomplete > 0) {
                        if (!any)
                                printf("\n");
                        any = true;
                        printf("%u %s unwind: %zu incomplete stacks\n", c->threads, c->mode,
                               c->uw_incomplete);
                }
        }
        printf("\nratio = liveup median / baseline median; µs/thread = liveup median / threads;\n"
               "unwind µs/thr = warm unwind of every thread inside a stop, per thread;\n"
               "fast = share of those stacks the fast path unwound (libdw the others);\n"
               "libdw µs/thr = the same stacks in the same stops, libdw alone;\n"
               "unwind setup = proc_unwinder_new(), once per process.\n");
}

static void print_json(const struct options *o, const struct cell *cells, size_t n)
{
        printf("{\"bench\": \"stop\", \"unit\": \"us\", \"reps\": %u, \"sched_fifo\": %s, ",
               o->reps - 1, fifo_ok ? "true" : "false");
        printf("\"sched_fifo_error\": ");
        json_error(fifo_error);
        printf(", \"cells\": [");
        for (size_t i = 0; i < n; i++) {
                const struct cell *c = &cells[i];

                printf("%s\n  {\"threads\": %u, \"mode\": \"%s\",\n", i ? "," : "", c->threads,
                       c->mode);
                printf("   \"baseline\": {");
                json_stat("window", &c->base_window, true);
                json_stat("interrupt_to_stopped", &c->base_stopped, true);
                json_stat("getregs", &c->base_getregs, true);
                json_stat("cont", &c->base_cont, true);
                printf("\"error\": ");
                json_error(c->base_error);
                printf("},\n   \"liveup\": {");
                json_stat("window", &c->lu_window, true);
                json_stat("stop_all", &c->lu_stop, true);
                json_stat("regs", &c->lu_regs, true);
                json_stat("resume_all", &c->lu_resume, true);
                printf("\"per_thread\": ");
                if (c->lu_window.valid)
                        printf("%.2f", c->lu_window.median / c->threads);
                else
                        printf("null");
                printf(", \"ratio\": ");
                if (c->lu_window.valid && c->base_window.valid && c->base_window.median > 0)
                        printf("%.3f", c->lu_window.median / c->base_window.median);
                else
                        printf("null");
                printf(", \"threads_seen\": %zu, \"attach\": %.1f, \"detach\": %.1f, \"error\": ",
                       c->lu_threads_seen, c->lu_attach_us, c->lu_detach_us);
                json_error(c->lu_error);
                printf("},\n   \"unwind\": {");
                json_stat("per_thread", &c->uw_per_thread, true);
                json_stat("per_thread_libdw", &c->uw_libdw_per_thread, true);
                printf("\"fast_share\": %.3f, ", c->uw_fast_share);
                printf("\"setup\": %.1f, \"first_all_threads\": %.1f, \"frames_avg\": %.2f, "
                       "\"incomplete\": %zu, \"error\": ",
                       c->uw_setup_us, c->uw_first_us, c->uw_frames_avg, c->uw_incomplete);
                json_error(c->uw_error);
                printf("}}");
        }
        printf("\n]}\n");
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
        fprintf(f, "usage: bench-stop [--quick] [--json] [--reps N] [--threads N,N,...]\n"
                   "                  [--mode busy|idle] [--victim-dir DIR]\n"
                   "  --quick         5 repetitions per cell instead of 21 (the first is\n"
                   "                  always discarded)\n"
                   "  --json          one JSON document on stdout instead of the table\n"
                   "  --threads LIST  thread counts (default 1,16,64,256)\n"
                   "  --mode MODE     only busy or only idle victims (default both)\n"
                   "  --victim-dir    where victim-n is (default $LIVEUP_VICTIM_DIR, or\n"
                   "                  the build's tests/victims)\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "quick", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { "reps", required_argument, NULL, 'r' },
                { "threads", required_argument, NULL, 't' },
                { "mode", required_argument, NULL, 'm' },
                { "victim-dir", required_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct options o = {
                .reps = 21,
                .threads = { 1, 16, 64, 256 },
                .n_threads = 4,
                .modes = { "busy", "idle" },
                .n_modes = 2,
        };
        _cleanup_free_ struct cell *cells = NULL;
        size_t n_cells = 0;
        const char *env;
        int opt;

        env = getenv("LIVEUP_VICTIM_DIR");
        o.victim_dir = env && *env ? env : VICTIM_DIR;

        while ((opt = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (opt) {
                case 'q':
                        o.reps = 5;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'r':
                        if (parse_reps(optarg, &o.reps) < 0) {
                                fprintf(stderr, "bench-stop: bad --reps '%s' (2..100000)\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 't':
                        if (parse_thread_list(optarg, o.threads, ELEMENTSOF(o.threads),
                                              &o.n_threads) < 0) {
                                fprintf(stderr, "bench-stop: bad --threads '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 'm':
                        if (strcmp(optarg, "busy") != 0 && strcmp(optarg, "idle") != 0) {
                                fprintf(stderr, "bench-stop: bad --mode '%s'\n", optarg);
                                return 2;
                        }
                        o.modes[0] = strcmp(optarg, "busy") == 0 ? "busy" : "idle";
                        o.n_modes = 1;
                        break;
                case 'd':
                        o.victim_dir = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }

        cells = calloc(o.n_threads * o.n_modes, sizeof(*cells));
        if (!cells)
                return 1;
        if (!o.json) {
                /* The header names the scheduling class; find out first. */
                bool raised = fifo_raise();
                fifo_lower(raised);
                print_table_header(&o);
        }

        for (size_t m = 0; m < o.n_modes; m++)
                for (size_t i = 0; i < o.n_threads; i++) {
                        struct cell *c = &cells[n_cells++];
                        struct victim v = {};
                        int r;

                        c->threads = o.threads[i];
                        c->mode = o.modes[m];
                        r = victim_start(o.victim_dir, c->threads, c->mode, &v);
                        if (r < 0) {
                                fprintf(stderr, "bench-stop: cannot start %s/victim-n %u %s: %s\n",
                                        o.victim_dir, c->threads, c->mode, strerror(-r));
                                return 1;
                        }
                        run_baseline(v.pid, o.reps, c);
                        run_liveup(v.pid, o.reps, c);
                        victim_stop(&v);
                        if (!o.json)
                                print_table_row(c);
                }

        if (o.json)
                print_json(&o, cells, n_cells);
        else
                print_table_notes(cells, n_cells);
        return 0;
}
