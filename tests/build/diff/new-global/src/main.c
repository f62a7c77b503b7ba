/* Every TICK ms (argv[1], default 50) prints one line, flushed, with what
 * the functions under test compute now: a long-running process to patch. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int admit(int load);
int spare(int load);

int main(int argc, char **argv)
{
        long ms = argc > 1 ? atol(argv[1]) : 50;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        for (long n = 1;; n++) {
                int a50 = admit(50), a70 = admit(70);

                printf("tick=%ld admit50=%d admit70=%d spare=%d\n", n, a50, a70, spare(70));
                fflush(stdout);
                nanosleep(&ts, NULL);
        }
}
