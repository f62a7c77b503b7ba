/* Every TICK ms (argv[1], default 50) prints one line, flushed, with what
 * the functions under test compute now: a long-running process to patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int over(int x);
int zero(void);
int record(int x);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                printf("tick=%ld over=%d zero=%d record=%d\n", n, over(11), zero(),
                       record((int)n));
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
