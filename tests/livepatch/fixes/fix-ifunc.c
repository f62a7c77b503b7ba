/* compute(x) becomes x + 300, through libc functions that glibc provides
 * as GNU indirect functions (strlen, memcpy: STT_GNU_IFUNC, whose symbol
 * is a resolver that returns the implementation for this CPU). A patch
 * must end up calling the implementation, as the target itself does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern volatile int lpt_offset;
extern unsigned long lpt_calls;

int compute(int x);

int compute(int x)
{
        static const char zeros[] = "000";
        char buf[16];
        size_t n, k;

        __atomic_fetch_add(&lpt_calls, 1, __ATOMIC_RELAXED);
        if (x == 0x7eadbeef)
                return -1;
        snprintf(buf, sizeof(buf), "%d", lpt_offset * 3); /* "3" */
        n = strlen(buf);
        if (n > 4) /* never, unless strlen is not strlen */
                n = 0;
        k = (size_t)lpt_offset + 1; /* 2, unknown to gcc: a real call */
        memcpy(buf + n, zeros, k);  /* "300" */
        buf[n + k] = 0;
        return x + atoi(buf);
}
