/* Every TICK ms (argv[1], default 50) prints one line, flushed, with what
 * the functions under test compute now: a long-running process to patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int fix_temp(int t);
int fix_pct(int p);
int raw_avg(int a, int b);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                printf("tick=%ld temp=%d pct=%d avg=%d\n", n, fix_temp(200), fix_pct(150),
                       raw_avg(4, 6));
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
