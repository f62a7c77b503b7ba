/* A table lookup whose error path calls a cold function: gcc -O2 moves
 * that path out of get() into get.cold (in .text.unlikely). */
static int table[64] = { 10, 11, 12, 13, 14, 15, 16, 17 };
static int reported;

__attribute__((cold, noinline)) void report(int i)
{
        reported += i != 0;
}

int get(int i)
{
        if (i < 0 || i >= 64) {
                report(i);
                return -1;
        }
        return table[i] * 3 + 1;
}

int bad_calls(void)
{
        return reported;
}
