/* Every TICK ms (argv[1], default 50) prints one line, flushed, with what
 * the functions under test compute now: a long-running process to patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct job {
        int id;
        int weight;
        char name[32];
};

long s1(long x);
long s2(long x);
int total(const struct job *a, const struct job *b);
int use1(int x);
int use2(int x);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        struct job a = { 1, 5, "a" }, b = { 2, 9, "b" };

        for (long n = 1;; n++) {
                printf("tick=%ld s1=%ld s2=%ld total=%d use1=%d use2=%d\n", n, s1(10), s2(10),
                       total(&a, &b), use1(20), use2(15));
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
