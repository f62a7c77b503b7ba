/* victim-threads: a process with many kinds of threads, for checking that
 * attaching, stopping and detaching with ptrace changes nothing that the
 * process can observe.
 *
 *   victim-threads [--busy N] [--blocked N] [--churn N] [--signals]
 *                  [--ready-fd FD] [--report-fd FD]
 *
 * Threads:
 * - busy (default 2): loop calling victim_work() four frames deep and
 *   count iterations ("progress").
 * - blocked (default 5): each parks in one blocking call, by index modulo
 *   5: read() on a pipe nobody writes, pthread_cond_wait() on a condition
 *   nobody signals, a raw FUTEX_WAIT (so an EINTR is visible, which glibc
 *   hides inside pthread_cond_wait), nanosleep() of an hour, poll() on the
 *   pipe. Any return of such a call is unexpected: an EINTR (or any other
 *   return) increments "eintr". A tracer that interrupts a thread inside a
 *   syscall and resumes it must leave the kernel's restart logic intact,
 *   so eintr must stay 0.
 * - churn (default 0): loop creating and joining short-lived threads.
 * With --signals, SIGUSR1 and SIGUSR2 get handlers installed without
 * SA_RESTART that count deliveries. Every thread except the busy ones
 * blocks both signals, so deliveries go to busy threads (which make no
 * syscalls) and an EINTR anywhere else is spurious. (With --busy 0 the
 * main thread takes them instead and its own EINTRs are not counted.)
 *
 * "ready\n" goes to the ready fd (default stdout) once every thread runs
 * and every blocked thread sits in its syscall. The main thread then
 * serves commands on stdin (see victim-common.h): "report" writes
 *   progress=<n> eintr=<n> sigusr1=<n> sigusr2=<n> threads=<n> created=<n>
 * to the report fd (default stdout); "quit" exits 0. On SIGTERM/SIGINT or
 * end of stdin it writes the report line and exits 0. threads= is the
 * number of threads in the process at that moment (churn threads make it
 * vary); created= counts every pthread_create that succeeded. */
#include "victim-common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 4096

struct busy_slot {
        _Alignas(64) atomic_ulong progress;
};

static struct busy_slot *busy_slots;
static atomic_ulong n_eintr;
static atomic_ulong n_sigusr1;
static atomic_ulong n_sigusr2;
static atomic_ulong n_created;
static unsigned n_busy = 2;

static int pipe_fds[2] = { -1, -1 };
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool cond_flag;
static uint32_t futex_word;
static volatile unsigned long work_sink;

/* Tids of blocked threads, for the "parked" check before "ready". */
static pid_t *blocked_tids;
static atomic_uint n_started;

int victim_work(unsigned long x);
__attribute__((noipa)) int victim_work(unsigned long x)
{
        unsigned long v = x;

        for (int i = 0; i < 64; i++)
                v = v * 6364136223846793005ull + 1442695040888963407ull;
        work_sink = v;
        return (int)(v & 1);
}

static __attribute__((noipa)) int busy_level3(unsigned long x)
{
        int r = victim_work(x);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

static __attribute__((noipa)) int busy_level2(unsigned long x)
{
        int r = busy_level3(x + 1);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

static __attribute__((noipa)) int busy_level1(unsigned long x)
{
        int r = busy_level2(x + 1);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

static void block_usr_signals(void)
{
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void unblock_usr_signals(void)
{
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void on_usr(int sig)
{
        if (sig == SIGUSR1)
                atomic_fetch_add(&n_sigusr1, 1);
        else
                atomic_fetch_add(&n_sigusr2, 1);
}

static void *busy_main(void *arg)
{
        struct busy_slot *slot = arg;
        unsigned long i = 0;

        /* Threads are created with SIGUSR1/2 blocked (the main thread's
         * mask at creation); busy threads are the ones that take them. */
        unblock_usr_signals();
        pthread_setname_np(pthread_self(), "busy");
        atomic_fetch_add(&n_started, 1);
        for (;;) {
                busy_level1(i++);
                atomic_fetch_add_explicit(&slot->progress, 1, memory_order_relaxed);
        }
        return NULL;
}

static void unexpected(void)
{
        atomic_fetch_add(&n_eintr, 1);
}

static void *blocked_main(void *arg)
{
        unsigned idx = (unsigned)(uintptr_t)arg;
        static const char *const names[] = { "blk-read", "blk-cond", "blk-futex",
                                             "blk-sleep", "blk-poll" };
        unsigned kind = idx % 5;
        char c;

        pthread_setname_np(pthread_self(), names[kind]);
        blocked_tids[idx] = gettid();
        atomic_fetch_add(&n_started, 1);
        for (;;) {
                switch (kind) {
                case 0:
                        /* Nobody writes and the write end stays open: any
                         * return is unexpected. */
                        (void)read(pipe_fds[0], &c, 1);
                        unexpected();
                        break;
                case 1:
                        pthread_mutex_lock(&cond_lock);
                        while (!cond_flag) {
                                pthread_cond_wait(&cond, &cond_lock);
                                /* glibc retries EINTR internally and has no
                                 * spurious wakeups without a signal: any
                                 * return is unexpected. */
                                if (!cond_flag)
                                        unexpected();
                        }
                        pthread_mutex_unlock(&cond_lock);
                        break;
                case 2:
                        if (syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL,
                                    NULL, 0) < 0 &&
                            errno == EAGAIN)
                                break; /* the word changed: cannot happen */
                        unexpected();
                        break;
                case 3: {
                        struct timespec ts = { .tv_sec = 3600 };
                        if (nanosleep(&ts, NULL) < 0)
                                unexpected();
                        break;
                }
                case 4: {
                        struct pollfd pfd = { .fd = pipe_fds[0], .events = POLLIN };
                        (void)poll(&pfd, 1, -1);
                        unexpected();
                        break;
                }
                }
        }
        return NULL;
}

static __attribute__((noipa)) void *short_lived(void *arg)
{
        busy_level1((unsigned long)(uintptr_t)arg);
        return NULL;
}

static void *churn_main(void *arg)
{
        unsigned long i = 0;

        pthread_setname_np(pthread_self(), "churn");
        atomic_fetch_add(&n_started, 1);
        for (;;) {
                pthread_t t;
                int r = pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)i++);
                if (r != 0) {
                        /* EAGAIN under a thread limit: try again later. */
                        sched_yield();
                        continue;
                }
                atomic_fetch_add(&n_created, 1);
                pthread_join(t, NULL);
        }
        return NULL;
}

static void wait_parked(unsigned n_blocked)
{
        for (unsigned i = 0; i < n_blocked; i++) {
                /* No event tells us a thread entered its syscall; poll
                 * /proc, bounded (about 10 s). */
                for (int tries = 0; tries < 10000; tries++) {
                        if (blocked_tids[i] != 0 && victim_in_syscall(blocked_tids[i]))
                                break;
                        struct timespec ts = { .tv_nsec = 1000000 };
                        nanosleep(&ts, NULL);
                }
        }
}

static void report(int fd)
{
        unsigned long progress = 0;

        for (unsigned i = 0; i < n_busy; i++)
                progress += atomic_load_explicit(&busy_slots[i].progress,
                                                 memory_order_relaxed);
        victim_printf(fd,
                      "progress=%lu eintr=%lu sigusr1=%lu sigusr2=%lu threads=%lu created=%lu\n",
                      progress, atomic_load(&n_eintr), atomic_load(&n_sigusr1),
                      atomic_load(&n_sigusr2), victim_count_threads(),
                      atomic_load(&n_created));
}

static int report_fd = STDOUT_FILENO;

static void on_command(const char *cmd, void *userdata)
{
        if (strcmp(cmd, "report") == 0)
                report(report_fd);
        else
                fprintf(stderr, "victim-threads: unknown command '%s'\n", cmd);
}

static void start_thread(void *(*fn)(void *), void *arg)
{
        pthread_t t;
        int r;

        r = pthread_create(&t, NULL, fn, arg);
        if (r != 0) {
                fprintf(stderr, "victim-threads: pthread_create: %s\n", strerror(r));
                exit(1);
        }
        atomic_fetch_add(&n_created, 1);
        pthread_detach(t);
}

static void usage(void)
{
        fprintf(stderr, "usage: victim-threads [--busy N] [--blocked N] [--churn N] [--signals]\n"
                        "                      [--ready-fd FD] [--report-fd FD]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "busy", required_argument, NULL, 'b' },
                { "blocked", required_argument, NULL, 'k' },
                { "churn", required_argument, NULL, 'c' },
                { "signals", no_argument, NULL, 's' },
                { "ready-fd", required_argument, NULL, 'r' },
                { "report-fd", required_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        unsigned n_blocked = 5, n_churn = 0, total;
        bool signals = false;
        int ready_fd = STDOUT_FILENO, c;
        enum victim_end end;

        victim_die_with_parent();
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'b':
                        n_busy = (unsigned)victim_parse_long("--busy", optarg, 0, MAX_THREADS);
                        break;
                case 'k':
                        n_blocked = (unsigned)victim_parse_long("--blocked", optarg, 0,
                                                                MAX_THREADS);
                        break;
                case 'c':
                        n_churn = (unsigned)victim_parse_long("--churn", optarg, 0, MAX_THREADS);
                        break;
                case 's':
                        signals = true;
                        break;
                case 'r':
                        ready_fd = (int)victim_parse_long("--ready-fd", optarg, 0, 1 << 20);
                        break;
                case 'R':
                        report_fd = (int)victim_parse_long("--report-fd", optarg, 0, 1 << 20);
                        break;
                default:
                        usage();
                }
        }
        if (optind != argc)
                usage();

        busy_slots = calloc(n_busy ? n_busy : 1, sizeof(*busy_slots));
        blocked_tids = calloc(n_blocked ? n_blocked : 1, sizeof(*blocked_tids));
        if (!busy_slots || !blocked_tids || pipe2(pipe_fds, O_CLOEXEC) < 0) {
                perror("victim-threads");
                return 1;
        }

        victim_block_term();
        if (signals) {
                struct sigaction sa = { .sa_handler = on_usr }; /* no SA_RESTART */
                sigemptyset(&sa.sa_mask);
                sigaction(SIGUSR1, &sa, NULL);
                sigaction(SIGUSR2, &sa, NULL);
        }
        /* Every thread starts with SIGUSR1/2 blocked; busy threads unblock
         * them. With no busy thread, the main thread takes them. */
        block_usr_signals();

        for (unsigned i = 0; i < n_busy; i++)
                start_thread(busy_main, &busy_slots[i]);
        for (unsigned i = 0; i < n_blocked; i++)
                start_thread(blocked_main, (void *)(uintptr_t)i);
        for (unsigned i = 0; i < n_churn; i++)
                start_thread(churn_main, NULL);

        total = n_busy + n_blocked + n_churn;
        while (atomic_load(&n_started) < total) {
                struct timespec ts = { .tv_nsec = 1000000 };
                nanosleep(&ts, NULL);
        }
        wait_parked(n_blocked);
        if (n_busy == 0)
                unblock_usr_signals();

        victim_printf(ready_fd, "ready\n");

        end = victim_control_loop(on_command, NULL, n_busy > 0 ? &n_eintr : NULL);
        if (end != VICTIM_END_QUIT)
                report(report_fd);
        _exit(0);
}
