/* Small operations, two of which embed their line numbers (__LINE__):
 * assert() passes it to __assert_fail, WARN() prints it. */
#include <assert.h>
#include <stdio.h>

#define WARN(fmt, ...) fprintf(stderr, "%s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__)

int checked_div(int a, int b)
{
        assert(b != 0);
        return a / b;
}

int warn_big(int x)
{
        if (x > 1000000)
                WARN("%d is big", x);
        return x % 7;
}

int next_id(int x)
{
        if (x < 0)
                return 1;
        return x + 1;
}
