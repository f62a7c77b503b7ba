/* Time, string and error-message helpers shared by every layer. */
#pragma once

#include "macro.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

/* Monotonic clock in nanoseconds. */
static inline uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A message for the user that travels up from where the detail is known to
 * where the decision to print is made (STYLE.md: libraries do not log).
 * Functions that take a `struct errbuf *` may leave it untouched on
 * failure; callers then fall back to strerror(). NULL is always allowed. */
struct errbuf {
        char msg[1024];
};

_printf_(2, 3) void errbuf_set(struct errbuf *e, const char *fmt, ...);
/* The message, or strerror(-r) when nothing was set. */
const char *errbuf_or_strerror(const struct errbuf *e, int r);

/* Parse a decimal pid/tid; -EINVAL unless the whole string is a positive
 * number that fits. */
int parse_pid(const char *s, pid_t *ret);
/* Parse seconds as a decimal ("5", "0.5"); -EINVAL on junk or negative. */
int parse_seconds(const char *s, double *ret);

/* Read a whole small file (e.g. under /proc) into a NUL-terminated
 * buffer. */
int read_file_str(const char *path, char **ret, size_t *ret_len);

/* The last component of a path: what follows its last '/', or all of it
 * ("src/x.c" -> "x.c", "x.c" -> "x.c", "src/" -> ""). Points into `path`.
 * Not basename(3): whether <string.h> gives GNU's or <libgen.h> POSIX's
 * (which may write to its argument) depends on what a file includes. */
static inline const char *path_basename(const char *path)
{
        const char *s = strrchr(path, '/');

        return s ? s + 1 : path;
}
