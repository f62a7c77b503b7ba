/* Helpers shared by the benchmarks: sample series and their statistics
 * (median, p90...), pacing between repetitions, the tracer's SCHED_FIFO
 * switch, and the wait of the bare ptrace baseline (the physical floor
 * every benchmark prints its figures beside). */
#include "common.h"

#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool fifo_ok = true;
char fifo_error[128];

/* ---- statistics --------------------------------------------------------- */

int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* Median and p90 (nearest rank) of s->v[skip..n). */
struct stats stats_of(const struct series *s, size_t skip)
{
        struct stats st = {};
        size_t n;
        double *v;

        if (s->n <= skip)
                return st;
        n = s->n - skip;
        v = malloc(n * sizeof(*v));
        if (!v)
                return st;
        memcpy(v, s->v + skip, n * sizeof(*v));
        qsort(v, n, sizeof(*v), cmp_double);
        st.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
        st.p90 = v[(size_t)ceil(0.9 * (double)n) - 1];
        st.valid = true;
        free(v);
        return st;
}

int series_init(struct series *s, size_t cap)
{
        s->v = calloc(cap, sizeof(*s->v));
        s->n = 0;
        return s->v ? 0 : -ENOMEM;
}

void series_done(struct series *s)
{
        free(s->v);
        s->v = NULL;
        s->n = 0;
}

double us_since(uint64_t t0, uint64_t t1)
{
        return (double)(t1 - t0) / 1000.0;
}

void pace(void)
{
        struct timespec ts = { .tv_nsec = PACE_NS };

        nanosleep(&ts, NULL);
}

/* ---- the victim --------------------------------------------------------- */

bool fifo_raise(void)
{
        struct sched_param sp = { .sched_priority = 1 };

        if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0) {
                if (fifo_ok)
                        snprintf(fifo_error, sizeof(fifo_error), "%s", strerror(errno));
                fifo_ok = false;
                return false;
        }
        return true;
}

void fifo_lower(bool raised)
{
        struct sched_param sp = { .sched_priority = 0 };

        if (raised)
                sched_setscheduler(0, SCHED_OTHER, &sp);
}

ssize_t tid_index(const pid_t *tids, size_t n, pid_t tid)
{
        for (size_t lo = 0, hi = n; lo < hi;) {
                size_t mid = lo + (hi - lo) / 2;
                if (tids[mid] == tid)
                        return (ssize_t)mid;
                if (tids[mid] < tid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* Wait until every thread in tids[] reports PTRACE_EVENT_STOP. A
 * signal-delivery-stop is resumed with its signal (the interrupt stays
 * pending and stops the thread right after). */
int wait_all_stopped(const pid_t *tids, size_t n, char *err, size_t err_size)
{
        size_t stopped = 0;

        while (stopped < n) {
                int status;
                pid_t tid = waitpid(-1, &status, __WALL);

                if (tid < 0) {
                        if (errno == EINTR)
                                continue;
                        snprintf(err, err_size, "waitpid: %s", strerror(errno));
                        return -errno;
                }
                if (tid_index(tids, n, tid) < 0)
                        continue;
                if (!WIFSTOPPED(status)) {
                        snprintf(err, err_size, "thread %d exited", tid);
                        return -ESRCH;
                }
                if ((status >> 16) == PTRACE_EVENT_STOP) {
                        stopped++;
                        continue;
                }
                ptrace(PTRACE_CONT, tid, 0, (void *)(uintptr_t)WSTOPSIG(status));
        }
        return 0;
}


/* ---- output ------------------------------------------------------------ */

void fmt_stat(char *buf, size_t size, const struct stats *s)
{
        if (s->valid)
                snprintf(buf, size, "%.0f / %.0f", s->median, s->p90);
        else
                snprintf(buf, size, "n/a");
}

void json_stat(const char *name, const struct stats *s, bool comma)
{
        if (s->valid)
                printf("\"%s\": {\"median\": %.1f, \"p90\": %.1f}%s", name, s->median, s->p90,
                       comma ? ", " : "");
        else
                printf("\"%s\": null%s", name, comma ? ", " : "");
}

void json_string(const char *s)
{
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        printf("\\%c", *s);
                else if ((unsigned char)*s < 0x20)
                        printf("\\u%04x", (unsigned char)*s);
                else
                        putchar(*s);
        }
        putchar('"');
}

void json_error(const char *e)
{
        if (e[0])
                json_string(e);
        else
                printf("null");
}


int parse_thread_list(const char *s, unsigned *threads, size_t max, size_t *ret_n)
{
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                pid_t v;

                if (n == max || parse_pid(tok, &v) < 0 || v > 4096)
                        return -EINVAL;
                threads[n++] = (unsigned)v;
        }
        if (n == 0)
                return -EINVAL;
        *ret_n = n;
        return 0;
}

int parse_reps(const char *s, unsigned *ret)
{
        pid_t v;

        if (parse_pid(s, &v) < 0 || v < 2 || v > 100000)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}
