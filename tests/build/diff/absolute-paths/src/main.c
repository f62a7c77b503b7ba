#include <assert.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int checked(int x)
{
        assert(x > 0);
        return x * 2;
}

__attribute__((noinline)) int other(int x)
{
        return x * 3 + 1;
}

int main(void)
{
        for (;;) {
                printf("c=%d other=%d\n", checked(2), other(2));
                fflush(stdout);
                usleep(100000);
        }
}
