/* Functions gcc -O2 clones or splits:
 *   scale(x, 3) from both callers: ipa-cp makes scale.constprop.0;
 *   cost() reads one field of *j: ipa-sra makes cost.isra.0 (an int);
 *   memo(): a cheap cache check inlined into its callers, the rest split
 *   off (partial inlining) as memo.part.0. */
#include <stdio.h>
#include <string.h>

struct job {
        int id;
        int weight;
        char name[32];
};

static __attribute__((noinline)) long scale(long x, int factor)
{
        long r = 0;

        for (long i = 0; i < x; i++)
                r += (i * factor) ^ (i >> 3);
        return r;
}

long s1(long x)
{
        return scale(x, 3);
}

long s2(long x)
{
        return scale(x + 1, 3) * 2;
}

static __attribute__((noinline)) int cost(const struct job *j)
{
        int c = 0;

        for (int i = 0; i < j->weight; i++)
                c += i * i % 7;
        return c;
}

int total(const struct job *a, const struct job *b)
{
        return cost(a) + cost(b);
}

static int last_x = -1, last_r;

static int memo(int x)
{
        char buf[32];
        unsigned r = 0;

        if (x == last_x)
                return last_r;
        for (int i = 0; i < x; i++) {
                r = r * 31 + i;
                r ^= r >> 7;
        }
        snprintf(buf, sizeof(buf), "%u", r);
        r += (int)strlen(buf);
        last_x = x;
        last_r = (int)r;
        return last_r;
}

int use1(int x)
{
        return memo(x) + 1;
}

int use2(int x)
{
        return memo(x * 2) + 2;
}
