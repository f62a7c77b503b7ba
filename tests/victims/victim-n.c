/* victim-n: N threads (the main thread included) calling patchme() about
 * ten frames deep, the target of the stop-the-world benchmark and of the
 * many-threads stack tests.
 *
 *   victim-n N busy|idle
 *
 * Each thread loops thread_loop -> level_1 -> ... -> level_9 -> patchme
 * (the main thread: main -> thread_loop -> ...), so every stack holds
 * thread_loop. In busy mode the loop never sleeps; in idle mode each iteration ends
 * with usleep(1000), so the threads spend most of their time in
 * clock_nanosleep. Every function on the chain is noipa and does work
 * after its call, so each frame is real.
 *
 * "ready\n" goes to stdout once all N threads run their loop. The process
 * runs until killed (default signal dispositions: SIGTERM ends it). */
#include "victim-common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 4096

static volatile unsigned long sink;
static atomic_uint n_running;
static bool idle_mode;

int patchme(unsigned long x);
__attribute__((noipa)) int patchme(unsigned long x)
{
        unsigned long v = x;

        /* About 100 µs of dependent multiplies: a busy thread spends
         * nearly all its time here, so a stack sample almost always (not
         * always) shows patchme innermost. */
        for (int i = 0; i < 100000; i++)
                v = v * 2862933555777941757ull + 3037000493ull;
        sink = v;
        return (int)(v & 1);
}

#define DEFINE_LEVEL(n, next)                                                  \
        static __attribute__((noipa)) int level_##n(unsigned long x)           \
        {                                                                      \
                int r = next(x + 1);                                           \
                __asm__ volatile("" ::: "memory");                             \
                return r + 1;                                                  \
        }

DEFINE_LEVEL(9, patchme)
DEFINE_LEVEL(8, level_9)
DEFINE_LEVEL(7, level_8)
DEFINE_LEVEL(6, level_7)
DEFINE_LEVEL(5, level_6)
DEFINE_LEVEL(4, level_5)
DEFINE_LEVEL(3, level_4)
DEFINE_LEVEL(2, level_3)
DEFINE_LEVEL(1, level_2)

static __attribute__((noipa, noreturn)) void thread_loop(void)
{
        unsigned long i = 0;

        atomic_fetch_add(&n_running, 1);
        for (;;) {
                level_1(i++);
                if (idle_mode)
                        usleep(1000);
        }
}

static void *thread_main(void *arg)
{
        thread_loop();
}

int main(int argc, char **argv)
{
        unsigned n;

        victim_die_with_parent();
        if (argc != 3 || (strcmp(argv[2], "busy") != 0 && strcmp(argv[2], "idle") != 0)) {
                fprintf(stderr, "usage: victim-n N busy|idle\n");
                return 2;
        }
        n = (unsigned)victim_parse_long("thread count", argv[1], 1, MAX_THREADS);
        idle_mode = strcmp(argv[2], "idle") == 0;

        for (unsigned i = 1; i < n; i++) {
                pthread_t t;
                int r = pthread_create(&t, NULL, thread_main, NULL);
                if (r != 0) {
                        fprintf(stderr, "victim-n: pthread_create: %s\n", strerror(r));
                        return 1;
                }
                pthread_detach(t);
        }
        /* The other threads count themselves in; poll until all have. */
        while (atomic_load(&n_running) < n - 1) {
                struct timespec ts = { .tv_nsec = 200000 };
                nanosleep(&ts, NULL);
        }
        victim_printf(STDOUT_FILENO, "ready\n");
        atomic_fetch_add(&n_running, 1);
        thread_loop();
}
