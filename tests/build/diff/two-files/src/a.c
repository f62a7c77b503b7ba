/* a.c: its own static count and check(), named as b.c's are. */
static int count, hits;

static __attribute__((noinline)) int check(int x)
{
        if (x <= 0)
                return 0;
        return x % 3 == 0;
}

int step_a(void)
{
        count++;
        if (check(count))
                hits++;
        return 1;
}

int count_a(void)
{
        return count;
}

int hits_a(void)
{
        return hits;
}
