/* compute(x) becomes x + 200 (stacked on top of fix-100 by the tests):
 * the target's statics again, and libc through other functions. */
#include <stdio.h>
#include <stdlib.h>

extern volatile int lpt_offset;
extern unsigned long lpt_calls;

int compute(int x);

int compute(int x)
{
        char buf[16];

        __atomic_fetch_add(&lpt_calls, 1, __ATOMIC_RELAXED);
        if (x == 0x7eadbeef)
                return -1;
        /* "2" then "00": 200 for lpt_offset 1. */
        snprintf(buf, sizeof(buf), "%d00", lpt_offset * 2);
        return x + (int)strtol(buf, NULL, 10);
}
