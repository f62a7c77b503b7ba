/* The fix for shop.c: pad the cents to two digits. Only this function is
 * replaced. `prices_formatted` is declared extern: liveup resolves it to
 * the running program's own static variable, so the count goes on. */
#include <stdio.h>

extern unsigned long prices_formatted;

void format_price(char *buf, size_t size, unsigned cents)
{
        __atomic_fetch_add(&prices_formatted, 1, __ATOMIC_RELAXED);
        snprintf(buf, size, "$%u.%02u", cents / 100, cents % 100);
}
