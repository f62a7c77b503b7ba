/* Helpers shared by the benchmarks (bench/common.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef PACE_NS
#define PACE_NS (20ull * 1000 * 1000) /* between repetitions */
#endif

/* Samples, in µs. */
struct series {
        double *v;
        size_t n;
};

struct stats {
        double median, p90;
        bool valid;
};

int cmp_double(const void *a, const void *b);
/* Median and p90 of s, skipping the first `skip` samples (warm-up). */
struct stats stats_of(const struct series *s, size_t skip);
int series_init(struct series *s, size_t cap);
void series_done(struct series *s);
double us_since(uint64_t t0, uint64_t t1);
/* Sleep PACE_NS between repetitions, so the target runs undisturbed. */
void pace(void);

/* The tracer at SCHED_FIFO priority 1 for a window (and back). The first
 * refusal is kept in fifo_error and fifo_ok turns false. */
extern bool fifo_ok;
extern char fifo_error[128];
bool fifo_raise(void);
void fifo_lower(bool raised);

/* Index of tid in the sorted tids[], or -1. */
ssize_t tid_index(const pid_t *tids, size_t n, pid_t tid);
/* The bare baseline's wait: until every thread in tids[] reports
 * PTRACE_EVENT_STOP (signal-delivery-stops resumed with their signal). */
int wait_all_stopped(const pid_t *tids, size_t n, char *err, size_t err_size);

/* "median / p90" in µs, or "-" when there are no samples. */
void fmt_stat(char *buf, size_t size, const struct stats *s);
/* JSON pieces printed to stdout. */
void json_stat(const char *name, const struct stats *s, bool comma);
void json_string(const char *s);
void json_error(const char *e);

/* Options the benches share: --threads LIST ("1,16,64", each 1..4096,
 * at most max of them) and --reps N (2..100000). -EINVAL when bad. */
int parse_thread_list(const char *s, unsigned *threads, size_t max, size_t *ret_n);
int parse_reps(const char *s, unsigned *ret);
