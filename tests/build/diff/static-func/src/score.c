/* A score from two weights; weight() is file-local and kept out of line. */
static __attribute__((noinline)) int weight(int x)
{
        if (x > 100)
                return 100;
        return x * x + 1;
}

int score(int a, int b)
{
        return weight(a) + weight(b);
}

int bonus(int a)
{
        return weight(a) * 2;
}
