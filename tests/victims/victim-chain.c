/* victim-chain: threads whose call chains are known, for unwinding tests.
 *
 *   victim-chain
 *
 * Thread "chain-busy" runs chain_a -> chain_b -> chain_c, which spins on a
 * volatile counter forever; thread "chain-blocked" runs chain_x -> chain_y
 * -> chain_z, which reads a pipe that never gets data. Every chain
 * function is noipa (not inlined, cloned or merged) and does work after
 * its call, so no call becomes a tail call: an unwinder must find each of
 * them, innermost first, on the stack of its thread.
 *
 * The program is built twice: victim-chain at -O0 with frame pointers and
 * victim-chain-o2 at -O2 -fomit-frame-pointer, where only CFI
 * (.eh_frame) can unwind it.
 *
 * "ready\n" goes to stdout once chain-busy is inside chain_c and
 * chain-blocked sits in its read(). Then stdin commands ("quit"; see
 * victim-common.h), SIGTERM or end of stdin end it with status 0. */
#include "victim-common.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long spin_counter;
static volatile int spin_stop;
static atomic_int busy_in_place;
static atomic_int blocked_tid;
static int pipe_fds[2];

int chain_a(int x);
int chain_b(int x);
int chain_c(int x);
int chain_x(int x);
int chain_y(int x);
int chain_z(int x);

__attribute__((noipa)) int chain_c(int x)
{
        atomic_store(&busy_in_place, 1);
        while (!spin_stop)
                spin_counter++;
        return x + (int)spin_counter;
}

__attribute__((noipa)) int chain_b(int x)
{
        int r = chain_c(x + 1);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

__attribute__((noipa)) int chain_a(int x)
{
        int r = chain_b(x + 1);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

__attribute__((noipa)) int chain_z(int x)
{
        char c;
        ssize_t n;

        atomic_store(&blocked_tid, gettid());
        n = read(pipe_fds[0], &c, 1);
        return x + (int)n;
}

__attribute__((noipa)) int chain_y(int x)
{
        int r = chain_z(x + 1);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

__attribute__((noipa)) int chain_x(int x)
{
        int r = chain_y(x + 1);
        __asm__ volatile("" ::: "memory");
        return r + 1;
}

static void *busy_main(void *arg)
{
        pthread_setname_np(pthread_self(), "chain-busy");
        return (void *)(intptr_t)chain_a(1);
}

static void *blocked_main(void *arg)
{
        pthread_setname_np(pthread_self(), "chain-blocked");
        for (;;)
                chain_x(1); /* read() returns only on EINTR: block again */
        return NULL;
}

int main(int argc, char **argv)
{
        pthread_t t;

        victim_die_with_parent();
        if (argc != 1) {
                fprintf(stderr, "usage: victim-chain\n");
                return 2;
        }
        if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
                perror("victim-chain: pipe");
                return 1;
        }
        victim_block_term();
        if (pthread_create(&t, NULL, busy_main, NULL) != 0 ||
            pthread_detach(t) != 0 ||
            pthread_create(&t, NULL, blocked_main, NULL) != 0 ||
            pthread_detach(t) != 0) {
                fprintf(stderr, "victim-chain: cannot create threads\n");
                return 1;
        }
        /* No event says "entered read()": poll, bounded (about 10 s). */
        for (int tries = 0; tries < 10000; tries++) {
                pid_t tid = atomic_load(&blocked_tid);
                if (atomic_load(&busy_in_place) && tid != 0 && victim_in_syscall(tid))
                        break;
                struct timespec ts = { .tv_nsec = 1000000 };
                nanosleep(&ts, NULL);
        }
        victim_printf(STDOUT_FILENO, "ready\n");
        victim_control_loop(NULL, NULL, NULL);
        _exit(0);
}
