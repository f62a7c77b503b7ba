/* The multiples of 3 in 1..n. */
int count_multiples(int n)
{
        int c = 0;

        for (int i = 1; i < n; i++)
                if (i % 3 == 0)
                        c++;
        return c;
}

int twice(int x)
{
        return 2 * x;
}
