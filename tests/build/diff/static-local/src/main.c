/* Every TICK ms (argv[1], default 50) calls each counter once and prints
 * one line, flushed: "same" while both counters equal the tick number,
 * i.e. while each function counts in its own static variable and kept
 * its count across a patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int count_a(void);
int count_b(void);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                int a = count_a(), b = count_b();

                printf("tick=%ld a=%d b=%d version=%d %s\n", n, a / 10, b, a % 10,
                       a / 10 == n && b == n ? "same" : "DIFF");
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
