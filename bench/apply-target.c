/* bench-apply-target: where bench-apply measures what a call to a
 * live-patched function costs next to a direct call.
 *
 *   bench-apply-target
 *
 * Writes "ready\n" to stdout, then serves one command per line on stdin:
 *   measure N   call callee() N times in a dependent chain (each call takes
 *               the previous result), and answer `ns=<ns per call>`;
 *   quit        exit 0 (end of stdin too).
 * callee() is noipa (never inlined or cloned: every call goes through
 * its entry, where a patch's jump lands) and 6 bytes long at -O2 (lea;
 * ret), long enough for the 5-byte jump. Between commands the only
 * thread sits in read(2), so a patch goes in at the first attempt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

unsigned long callee(unsigned long x);

__attribute__((noipa)) unsigned long callee(unsigned long x)
{
        return x * 3 + 1;
}

static volatile unsigned long sink;

static void say(const char *s)
{
        size_t n = strlen(s);

        while (n > 0) {
                ssize_t k = write(STDOUT_FILENO, s, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                s += k;
                n -= (size_t)k;
        }
}

static void measure(unsigned long n)
{
        struct timespec t0, t1;
        unsigned long acc = 1;
        char line[64];
        double ns;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned long i = 0; i < n; i++)
                acc = callee(acc);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        sink = acc;
        ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        snprintf(line, sizeof(line), "ns=%.4f\n", n ? ns / (double)n : 0.0);
        say(line);
}

int main(void)
{
        char buf[256];
        size_t len = 0;

        say("ready\n");
        for (;;) {
                ssize_t k = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
                char *nl;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return 0;
                len += (size_t)k;
                buf[len] = 0;
                while ((nl = strchr(buf, '\n'))) {
                        *nl = 0;
                        if (strncmp(buf, "measure ", 8) == 0)
                                measure(strtoul(buf + 8, NULL, 10));
                        else if (strcmp(buf, "quit") == 0)
                                return 0;
                        else
                                say("unknown command\n");
                        len -= (size_t)(nl + 1 - buf);
                        memmove(buf, nl + 1, len + 1);
                }
                if (len == sizeof(buf) - 1)
                        len = 0;
        }
}
