/* compute(x) becomes x + 400, through data the patch itself defines: an
 * initialised static (.data) and a zeroed one (.bss), both written on
 * every call, so the patch's data must be mapped writable (and its code
 * executable, never both). */
extern unsigned long lpt_calls;

static int step = 4;          /* .data */
static unsigned long patched; /* .bss */

int compute(int x);

int compute(int x)
{
        __atomic_fetch_add(&lpt_calls, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&patched, 1, __ATOMIC_RELAXED);
        if (x == 0x7eadbeef)
                return -1;
        step = 4 + (int)(patched & 0); /* a store into .data */
        return x + step * 100;
}
