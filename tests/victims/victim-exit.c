/* victim-exit: a process that goes away on its own while a tracer may be
 * attaching to it, stopping it or detaching from it.
 *
 *   victim-exit MODE USEC [THREADS]
 *
 * THREADS (default 4) busy threads start first; "ready\n" then goes to
 * stdout and, USEC microseconds later:
 * - exit:        the main thread calls _exit(0) (exit_group: all threads
 *                die at once);
 * - exec:        the main thread calls execve("/bin/true");
 * - exec-thread: a non-main thread calls execve("/bin/true") (the kernel
 *                kills the other threads and the exec'ing thread takes
 *                over the thread-group id);
 * - spawn-exit:  during the delay the main thread creates short-lived
 *                threads as fast as it can (each spins briefly and exits),
 *                then the process exits while threads are still being
 *                born and dying. */
#include "victim-common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static atomic_uint n_running;
static long delay_us;

static uint64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(long us)
{
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

        /* A tracer's interrupt restarts nanosleep with the time left; a
         * handled signal (there is none here) would return EINTR. */
        while (nanosleep(&ts, &ts) < 0)
                ;
}

static __attribute__((noipa)) void spin(unsigned long n)
{
        for (unsigned long i = 0; i < n; i++)
                sink += i;
}

static void *busy_main(void *arg)
{
        atomic_fetch_add(&n_running, 1);
        for (;;)
                spin(1000);
        return NULL;
}

static void run_true(void)
{
        char *const argv[] = { (char *)"true", NULL };
        char *const envp[] = { NULL };

        execve("/bin/true", argv, envp);
        perror("victim-exit: execve /bin/true");
        _exit(1);
}

static void *exec_main(void *arg)
{
        sleep_us(delay_us);
        run_true();
        return NULL;
}

static void *short_main(void *arg)
{
        spin(20000);
        return NULL;
}

static void start_detached(void *(*fn)(void *))
{
        pthread_t t;
        int r;

        r = pthread_create(&t, NULL, fn, NULL);
        if (r != 0) {
                fprintf(stderr, "victim-exit: pthread_create: %s\n", strerror(r));
                exit(1);
        }
        pthread_detach(t);
}

int main(int argc, char **argv)
{
        unsigned n_threads = 4;
        const char *mode;

        victim_die_with_parent();
        if (argc < 3 || argc > 4) {
                fprintf(stderr, "usage: victim-exit exit|exec|exec-thread|spawn-exit USEC "
                                "[THREADS]\n");
                return 2;
        }
        mode = argv[1];
        delay_us = victim_parse_long("delay", argv[2], 0, 3600L * 1000000L);
        if (argc == 4)
                n_threads = (unsigned)victim_parse_long("thread count", argv[3], 0, 4096);
        if (strcmp(mode, "exit") != 0 && strcmp(mode, "exec") != 0 &&
            strcmp(mode, "exec-thread") != 0 && strcmp(mode, "spawn-exit") != 0) {
                fprintf(stderr, "victim-exit: unknown mode '%s'\n", mode);
                return 2;
        }

        for (unsigned i = 0; i < n_threads; i++)
                start_detached(busy_main);
        while (atomic_load(&n_running) < n_threads) {
                struct timespec ts = { .tv_nsec = 200000 };
                nanosleep(&ts, NULL);
        }
        victim_printf(STDOUT_FILENO, "ready\n");

        if (strcmp(mode, "exit") == 0) {
                sleep_us(delay_us);
                _exit(0);
        }
        if (strcmp(mode, "exec") == 0) {
                sleep_us(delay_us);
                run_true();
        }
        if (strcmp(mode, "exec-thread") == 0) {
                start_detached(exec_main);
                for (;;)
                        pause();
        }

        /* spawn-exit */
        uint64_t end = mono_us() + (uint64_t)delay_us;
        while (mono_us() < end) {
                pthread_t t;
                if (pthread_create(&t, NULL, short_main, NULL) == 0)
                        pthread_detach(t);
        }
        _exit(0);
}
