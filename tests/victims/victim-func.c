/* victim-func: four threads calling victim_value() in a loop, counting what
 * it returns, so a test can redirect the function's entry (e.g. a jump to
 * victim_value_alt()) and see the behaviour change, and nothing else.
 *
 *   victim-func [--ready-fd FD] [--report-fd FD]
 *
 * victim_value() returns 1 and victim_value_alt() returns 2. Both are
 * noipa (never inlined, cloned or folded into their callers), kept even if
 * unused, and longer than 16 bytes (they read volatile globals and do
 * some arithmetic), so a 5-byte jump, or an endbr64 plus a jump, fits in
 * either one's entry. Tests find them by symbol.
 *
 * "ready\n" goes to the ready fd (default stdout) once all four threads
 * have called victim_value() at least once. Commands on stdin (see
 * victim-common.h): "report" writes `ones=<n> others=<n> last=<v>` (calls
 * that returned 1, calls that returned anything else, the most recent
 * value) to the report fd (default stdout); "reset" zeroes the counters
 * (so a test can count only calls after a patch); "quit" exits 0. SIGTERM
 * or end of stdin writes the report and exits 0. */
#include "victim-common.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_CALLERS 4

volatile int victim_one = 1;
volatile int victim_two = 2;

struct counts {
        _Alignas(64) atomic_ulong ones;
        atomic_ulong others;
};

static struct counts counts[N_CALLERS];
static atomic_int last_value;
static atomic_uint n_started;

int victim_value(void);
int victim_value_alt(void);

__attribute__((noipa, used)) int victim_value(void)
{
        int a = victim_one, b = victim_one;

        /* a * b + (a - b) is 1 as long as victim_one is 1; the compiler
         * cannot know that, so the body stays real code. */
        return a * b + (a - b);
}

__attribute__((noipa, used)) int victim_value_alt(void)
{
        int a = victim_two, b = victim_two;

        return a * b / b + (a - b);
}

static void *caller_main(void *arg)
{
        struct counts *c = arg;
        bool started = false;

        pthread_setname_np(pthread_self(), "caller");
        for (;;) {
                int v = victim_value();
                if (v == 1)
                        atomic_fetch_add_explicit(&c->ones, 1, memory_order_relaxed);
                else
                        atomic_fetch_add_explicit(&c->others, 1, memory_order_relaxed);
                atomic_store_explicit(&last_value, v, memory_order_relaxed);
                if (!started) {
                        atomic_fetch_add(&n_started, 1);
                        started = true;
                }
        }
        return NULL;
}

static int report_fd = STDOUT_FILENO;

static void report(void)
{
        unsigned long ones = 0, others = 0;

        for (unsigned i = 0; i < N_CALLERS; i++) {
                ones += atomic_load_explicit(&counts[i].ones, memory_order_relaxed);
                others += atomic_load_explicit(&counts[i].others, memory_order_relaxed);
        }
        victim_printf(report_fd, "ones=%lu others=%lu last=%d\n", ones, others,
                      atomic_load(&last_value));
}

static void on_command(const char *cmd, void *userdata)
{
        if (strcmp(cmd, "report") == 0)
                report();
        else if (strcmp(cmd, "reset") == 0) {
                for (unsigned i = 0; i < N_CALLERS; i++) {
                        atomic_store(&counts[i].ones, 0);
                        atomic_store(&counts[i].others, 0);
                }
                victim_printf(report_fd, "reset\n");
        } else
                fprintf(stderr, "victim-func: unknown command '%s'\n", cmd);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "ready-fd", required_argument, NULL, 'r' },
                { "report-fd", required_argument, NULL, 'R' },
                {}
        };
        int ready_fd = STDOUT_FILENO, c;

        victim_die_with_parent();
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        ready_fd = (int)victim_parse_long("--ready-fd", optarg, 0, 1 << 20);
                        break;
                case 'R':
                        report_fd = (int)victim_parse_long("--report-fd", optarg, 0, 1 << 20);
                        break;
                default:
                        fprintf(stderr, "usage: victim-func [--ready-fd FD] [--report-fd FD]\n");
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "usage: victim-func [--ready-fd FD] [--report-fd FD]\n");
                return 2;
        }

        victim_block_term();
        for (unsigned i = 0; i < N_CALLERS; i++) {
                pthread_t t;
                int r = pthread_create(&t, NULL, caller_main, &counts[i]);
                if (r != 0) {
                        fprintf(stderr, "victim-func: pthread_create: %s\n", strerror(r));
                        return 1;
                }
                pthread_detach(t);
        }
        while (atomic_load(&n_started) < N_CALLERS) {
                struct timespec ts = { .tv_nsec = 200000 };
                nanosleep(&ts, NULL);
        }
        victim_printf(ready_fd, "ready\n");
        if (victim_control_loop(on_command, NULL, NULL) != VICTIM_END_QUIT)
                report();
        _exit(0);
}
