/* The functions the live-patching tests replace (see lpt.h).
 *
 * compute() uses two statics of this file (lpt_offset, read; lpt_calls,
 * incremented) and calls libc (snprintf, atoi), as the patches in
 * fixes/ do: a patch declares the statics extern and liveup resolves them
 * to these, so the count goes on across patches. Every function is noipa
 * (never inlined, cloned or folded into a caller), so callers always go
 * through its entry, where the jump is written. */
#include "lpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* volatile: at -O2 a never-written static would be folded away, and a
 * patch could not refer to it. */
static volatile int lpt_offset = 1;
static unsigned long lpt_calls;

__attribute__((noipa)) int compute(int x)
{
        char buf[16];

        __atomic_fetch_add(&lpt_calls, 1, __ATOMIC_RELAXED);
        if (x == LPT_MARKER)
                return -1;
        snprintf(buf, sizeof(buf), "%d", lpt_offset);
        return x + atoi(buf);
}

__attribute__((noipa)) unsigned long lpt_calls_get(void)
{
        return __atomic_load_n(&lpt_calls, __ATOMIC_RELAXED);
}

__attribute__((noipa)) int wait_here(int fd)
{
        unsigned char c;
        ssize_t n;

        do
                n = read(fd, &c, 1);
        while (n < 0 && errno == EINTR);
        return n == 1 ? c : -1;
}

__attribute__((noipa, used)) void lpt_nop(void)
{
}

#ifndef LPT_NO_EXTRA
__attribute__((noipa)) int lpt_extra(void)
{
        return 42;
}
#endif
