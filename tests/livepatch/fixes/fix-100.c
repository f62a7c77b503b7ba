/* compute(x) becomes x + 100: the target's static lpt_offset (1) times
 * 100, through libc (snprintf, atoi), and the target's static counter
 * lpt_calls goes on counting. Both statics are declared extern: liveup
 * resolves them to the running program's own. */
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
        snprintf(buf, sizeof(buf), "%d", lpt_offset * 100);
        return x + atoi(buf);
}
