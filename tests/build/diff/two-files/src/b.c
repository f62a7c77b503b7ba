/* b.c: its own static count and check(), named as a.c's are. */
static int count;

static __attribute__((noinline)) int check(int x)
{
        if (x < 0)
                return 0;
        return (x & 1) + 1;
}

int step_b(void)
{
        count++;
        return check(count);
}

int count_b(void)
{
        return count;
}
