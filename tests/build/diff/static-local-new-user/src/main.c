#include <stdio.h>
#include <unistd.h>

static inline int tick(void)
{
        static int calls;
        return ++calls;
}

__attribute__((noinline)) int a(void)
{
        return tick();
}

int main(void)
{
        for (;;) {
                printf("a=%d\n", a());
                fflush(stdout);
                usleep(100000);
        }
}
