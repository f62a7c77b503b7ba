/* Every TICK ms (argv[1], default 50) prints one line, flushed, with what
 * the functions under test compute now: a long-running process to patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int get(int i);
int bad_calls(void);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                int good = get(5), bad = get(-1);

                printf("tick=%ld good=%d bad=%d reported=%d\n", n, good, bad, bad_calls());
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
