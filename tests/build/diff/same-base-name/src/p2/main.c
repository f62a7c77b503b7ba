#include <stdio.h>
static __attribute__((noinline)) int helper(int x) { return x * 7 + 3; }
int main(int argc, char **argv)
{
        (void)argv;
        printf("%d %d\n", helper(argc), helper(argc + 5));
        return 0;
}
