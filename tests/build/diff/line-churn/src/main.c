/* Every TICK ms (argv[1], default 50) prints one line, flushed, with what
 * the functions under test compute now: a long-running process to patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int checked_div(int a, int b);
int warn_big(int x);
int next_id(int x);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                printf("tick=%ld div=%d big=%d next=%d\n", n, checked_div(84, 2),
                       warn_big((int)n), next_id(999));
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
