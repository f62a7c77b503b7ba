/* Helpers of util.h. */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <string.h>

void errbuf_set(struct errbuf *e, const char *fmt, ...)
{
        va_list ap;

        if (!e)
                return;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
}

const char *errbuf_or_strerror(const struct errbuf *e, int r)
{
        if (e && e->msg[0])
                return e->msg;
        return strerror(r < 0 ? -r : r);
}

int parse_pid(const char *s, pid_t *ret)
{
        char *end;
        long v;

        if (!s || !*s || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v <= 0 || v > INT_MAX)
                return -EINVAL;
        *ret = (pid_t)v;
        return 0;
}

int parse_seconds(const char *s, double *ret)
{
        char *end;
        double v;

        /* Plain decimal only: strtod would also take blanks, signs,
         * hexadecimal, exponents, "inf". */
        if (!s || !*s || strspn(s, "0123456789.") != strlen(s) || !strpbrk(s, "0123456789"))
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno || *end || !isfinite(v) || v < 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int read_file_str(const char *path, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 4096;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len + 1 >= cap) {
                        char *nb;

                        if (cap > (64u << 20))
                                return -EFBIG;
                        nb = realloc(buf, cap * 2);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap *= 2;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}
