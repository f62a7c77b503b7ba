#include <stdio.h>
#include <unistd.h>
static __attribute__((noinline)) int helper(int x) { return x + 1; }
__attribute__((noinline)) int work(int x) { return helper(x) * 2; }
int main(void)
{
        for (;;) {
                printf("w=%d\n", work(3));
                fflush(stdout);
                usleep(100000);
        }
}
