/* lpt-target: the program the live-patching tests patch. Worker threads
 * call compute() (lpt-func.c, in the executable or in liblpt.so) in a
 * loop and record what it returns; a blocker thread can be parked inside
 * wait_here(); commands on stdin (victim-common.h) report.
 *
 *   lpt-target [--workers N]     (default 4)
 *
 * "ready\n" goes to stdout once every worker has called compute() and
 * the blocker waits for orders. Commands, one answer line each:
 *   check    start a new epoch, wait (up to 10 s) until every worker has
 *            recorded a call made wholly inside it, then answer
 *            `now=D seen=S workers=K/N calls=C tag=T`: D is compute(1000)
 *            - 1000 called by the main thread, S the delta every worker
 *            saw in the epoch ("mixed" when they differ), K how many
 *            workers recorded one, C lpt_calls (a static that compute()
 *            and the patches increment), T lpt_tag();
 *   block    park the blocker inside wait_here(), blocked in read(2); then
 *            answer `blocked tid=N`;
 *   unblock  let it out; then answer `unblocked`;
 *   quit     exit 0 (end of stdin and SIGTERM too).
 *
 * Epochs make "check" exact while a patch goes in: a worker reads the
 * epoch, calls compute(), and records the result only if the epoch has
 * not changed meanwhile, so a call that started before a patch (or a
 * revert) can never be counted in an epoch that started after it.
 * Between two calls a worker spins a while (see spin()). Threads are
 * named "worker" and "blocker" (tests look for the name in liveup's
 * refusal). */
#include "lpt.h"
#include "victim-common.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

struct slot {
        _Alignas(64) atomic_ulong epoch; /* the epoch the fields below belong to */
        atomic_ulong n;                  /* calls recorded in it */
        atomic_int first;                /* the first delta seen in it */
        atomic_ulong n_other;            /* deltas != first */
};

static struct slot slots[MAX_WORKERS];
static unsigned n_workers = 4;
static atomic_ulong epoch = 1;
static atomic_uint n_started;

/* The blocker: pipe "go" lets it enter wait_here(), which reads pipe
 * "out". */
static int go_pipe[2], out_pipe[2];
static atomic_int blocker_tid;
static atomic_int blocker_inside;

volatile int lpt_tag_value;

int lpt_tag(void);
__attribute__((noipa)) int lpt_tag(void)
{
        return lpt_tag_value;
}

/* About 4 µs of dependent multiplies between two calls of compute()
 * (which takes ~0.1 µs): a worker is inside compute() only a few per
 * cent of the time, so the stop model finds an instant with every stack
 * clear of it within a few attempts, as it would for a function that is
 * not hot. */
static __attribute__((noipa)) unsigned long spin(unsigned long v)
{
        for (int i = 0; i < 4000; i++)
                v = v * 2862933555777941757ull + 3037000493ull;
        return v;
}

static void *worker_main(void *arg)
{
        unsigned long v = (uintptr_t)arg;
        struct slot *s = arg;
        bool started = false;

        pthread_setname_np(pthread_self(), "worker");
        for (int x = 0;; x = (x + 1) & 0xffff) {
                unsigned long e = atomic_load(&epoch);
                int d = compute(x) - x;

                v = spin(v);
                if (atomic_load(&epoch) != e)
                        continue;
                if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != e) {
                        atomic_store(&s->n, 0);
                        atomic_store(&s->n_other, 0);
                        atomic_store(&s->first, d);
                        atomic_store(&s->epoch, e); /* last: a reader checks it first */
                }
                if (d != atomic_load_explicit(&s->first, memory_order_relaxed))
                        atomic_fetch_add(&s->n_other, 1);
                atomic_fetch_add(&s->n, 1);
                if (!started) {
                        atomic_fetch_add(&n_started, 1);
                        started = true;
                }
        }
        return NULL;
}

static void *blocker_main(void *arg)
{
        pthread_setname_np(pthread_self(), "blocker");
        atomic_store(&blocker_tid, (int)syscall(SYS_gettid));
        for (;;) {
                char c;

                if (read(go_pipe[0], &c, 1) != 1)
                        continue;
                atomic_store(&blocker_inside, 1);
                (void)wait_here(out_pipe[0]);
                atomic_store(&blocker_inside, 0);
        }
        return NULL;
}

static void pause_short(void)
{
        struct timespec ts = { .tv_nsec = 200000 };

        nanosleep(&ts, NULL);
}

/* Poll (bounded, 10 s) until the blocker is (or is not) inside
 * wait_here() and blocked in a syscall. */
static bool blocker_settles(int inside)
{
        for (int i = 0; i < 50000; i++) {
                int tid = atomic_load(&blocker_tid);
                if (tid > 0 && atomic_load(&blocker_inside) == inside && victim_in_syscall(tid))
                        return true;
                pause_short();
        }
        return false;
}

static void check(void)
{
        unsigned long e = atomic_fetch_add(&epoch, 1) + 1, calls;
        unsigned k = 0;
        bool mixed = false;
        int seen = 0, now;

        for (int i = 0; i < 50000; i++) {
                k = 0;
                for (unsigned w = 0; w < n_workers; w++)
                        if (atomic_load(&slots[w].epoch) == e && atomic_load(&slots[w].n) > 0)
                                k++;
                if (k == n_workers)
                        break;
                pause_short();
        }
        for (unsigned w = 0, got = 0; w < n_workers; w++) {
                struct slot *s = &slots[w];
                if (atomic_load(&s->epoch) != e || atomic_load(&s->n) == 0)
                        continue;
                if (got++ == 0)
                        seen = atomic_load(&s->first);
                else if (atomic_load(&s->first) != seen)
                        mixed = true;
                if (atomic_load(&s->n_other) > 0)
                        mixed = true;
        }
        now = compute(1000) - 1000;
        calls = lpt_calls_get();
        if (mixed)
                victim_printf(STDOUT_FILENO, "now=%d seen=mixed workers=%u/%u calls=%lu tag=%d\n",
                              now, k, n_workers, calls, lpt_tag());
        else
                victim_printf(STDOUT_FILENO, "now=%d seen=%d workers=%u/%u calls=%lu tag=%d\n",
                              now, seen, k, n_workers, calls, lpt_tag());
}

static void on_command(const char *cmd, void *userdata)
{
        if (strcmp(cmd, "check") == 0)
                check();
        else if (strcmp(cmd, "block") == 0) {
                if (write(go_pipe[1], "g", 1) == 1 && blocker_settles(1))
                        victim_printf(STDOUT_FILENO, "blocked tid=%d\n",
                                      atomic_load(&blocker_tid));
                else
                        victim_printf(STDOUT_FILENO, "block failed\n");
        } else if (strcmp(cmd, "unblock") == 0) {
                if (write(out_pipe[1], "u", 1) == 1 && blocker_settles(0))
                        victim_printf(STDOUT_FILENO, "unblocked\n");
                else
                        victim_printf(STDOUT_FILENO, "unblock failed\n");
        } else
                victim_printf(STDOUT_FILENO, "unknown command '%s'\n", cmd);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "workers", required_argument, NULL, 'w' },
                {}
        };
        pthread_t t;
        int c, r;

        victim_die_with_parent();
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'w':
                        n_workers = (unsigned)victim_parse_long("--workers", optarg, 1,
                                                                MAX_WORKERS);
                        break;
                default:
                        fprintf(stderr, "usage: lpt-target [--workers N]\n");
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "usage: lpt-target [--workers N]\n");
                return 2;
        }
        if (pipe(go_pipe) < 0 || pipe(out_pipe) < 0) {
                perror("lpt-target: pipe");
                return 1;
        }

        victim_block_term();
        for (unsigned i = 0; i < n_workers; i++) {
                r = pthread_create(&t, NULL, worker_main, &slots[i]);
                if (r != 0) {
                        fprintf(stderr, "lpt-target: pthread_create: %s\n", strerror(r));
                        return 1;
                }
                pthread_detach(t);
        }
        r = pthread_create(&t, NULL, blocker_main, NULL);
        if (r != 0) {
                fprintf(stderr, "lpt-target: pthread_create: %s\n", strerror(r));
                return 1;
        }
        pthread_detach(t);
        while (atomic_load(&n_started) < n_workers || !blocker_settles(0))
                pause_short();
        victim_printf(STDOUT_FILENO, "ready\n");
        (void)victim_control_loop(on_command, NULL, NULL);
        _exit(0);
}
