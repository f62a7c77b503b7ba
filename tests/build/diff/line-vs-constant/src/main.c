#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) int limit(void)
{
        return 20;
}

__attribute__((noinline)) int other(int x)
{
        return x * 3 + 1;
}

int main(void)
{
        for (;;) {
                printf("limit=%d other=%d\n", limit(), other(2));
                fflush(stdout);
                usleep(100000);
        }
}
