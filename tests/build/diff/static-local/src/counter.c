/* Two counters, each in a function-local static named "calls". */
int count_a(void)
{
        static int calls;

        calls++;
        return calls * 10 + 1;
}

int count_b(void)
{
        static int calls;

        calls++;
        return calls;
}
