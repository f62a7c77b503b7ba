/* Small helpers used everywhere: scope cleanup, ownership transfer, array
 * sizes, and errno-preserving wrappers.
 *
 * Cleanup attributes follow systemd's style: a variable declared
 * `_cleanup_free_ char *s = NULL;` is freed when it goes out of scope;
 * TAKE_PTR()/TAKE_FD() hand ownership on and leave the variable empty so
 * that the cleanup does nothing. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define ALIGN_UP(x, a) ALIGN_DOWN((x) + (a) - 1, (a))

/* Take the value out of a variable, leaving its "empty" value behind. */
#define TAKE_GENERIC(var, type, nullvalue)                                     \
        ({                                                                     \
                type *_pvar_ = &(var);                                         \
                type _var_ = *_pvar_;                                          \
                type _nullvalue_ = nullvalue;                                  \
                *_pvar_ = _nullvalue_;                                         \
                _var_;                                                         \
        })
#define TAKE_PTR(p) TAKE_GENERIC(p, __typeof__(p), NULL)
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Declare `name##p(type **)` that calls `func(*p)` when non-NULL, for use
 * with _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                \
        static inline void func##p(type *p)                                    \
        {                                                                      \
                if (*p)                                                        \
                        func(*p);                                              \
        }

/* Negative errno of the last failed libc call; never 0 (a library that
 * fails without setting errno is reported as EIO rather than success). */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}
