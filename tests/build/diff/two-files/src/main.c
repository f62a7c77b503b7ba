/* Every TICK ms (argv[1], default 50) calls step_a() and step_b() once and
 * prints one line, flushed: "same" while each file's own static counters
 * say what the tick number says (a.c: count = n, hits = n / 3; b.c:
 * count = n), i.e. while every function uses its own file's statics. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int step_a(void);
int count_a(void);
int hits_a(void);
int step_b(void);
int count_b(void);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                int va = step_a(), vb = step_b();
                int same = count_a() == n && hits_a() == n / 3 && count_b() == n;

                printf("tick=%ld va=%d vb=%d %s\n", n, va, vb, same ? "same" : "DIFF");
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
