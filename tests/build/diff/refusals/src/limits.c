/* A threshold, a history of values, and a function too short to patch. */
int threshold = 10;
int history[4];

/* 1 when x is over the threshold. */
int over(int x)
{
        return x > threshold;
}

/* 0: xor %eax,%eax; ret (3 bytes). */
__attribute__((noinline)) int zero(void)
{
        return 0;
}

/* Records x in the history; returns how many of its values are odd. */
int record(int x)
{
        int odd = 0;

        history[x % 4] = x;
        for (int i = 0; i < 4; i++)
                odd += history[i] & 1;
        return odd;
}
