/* A tiny TAP harness for unit tests: each TEST() runs in its own forked
 * child (a crash or a failed check fails that test only), and main()
 * prints TAP ("1..N", "ok N name", "not ok N name"). Checks print the
 * failing expression and location to stderr.
 *
 *   TEST(parses_maps) { CHECK(x == 1); CHECK_OK(r); }
 *   TAP_MAIN()
 *
 * A test may call tap_skip("reason") to report itself skipped. Each test
 * gets TAP_TIMEOUT seconds (default 60) before it is killed and fails. */
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TAP_TIMEOUT
#define TAP_TIMEOUT 60
#endif

struct tap_test {
        const char *name;
        void (*fn)(void);
};

#define TAP_MAX_TESTS 256
static struct tap_test tap_tests[TAP_MAX_TESTS];
static int tap_n_tests;

#define TEST(name)                                                             \
        static void test_##name(void);                                         \
        __attribute__((constructor)) static void tap_register_##name(void)     \
        {                                                                      \
                if (tap_n_tests < TAP_MAX_TESTS)                               \
                        tap_tests[tap_n_tests++] =                             \
                                (struct tap_test){ #name, test_##name };       \
        }                                                                      \
        static void test_##name(void)

#define TAP_SKIP_EXIT 77

__attribute__((noreturn, unused)) static void tap_skip(const char *why)
{
        fprintf(stdout, "SKIP %s\n", why);
        fflush(stdout);
        _exit(TAP_SKIP_EXIT);
}

#define CHECK(expr)                                                            \
        do {                                                                   \
                if (!(expr)) {                                                 \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
                                __LINE__, #expr);                              \
                        fflush(stderr);                                        \
                        _exit(1);                                              \
                }                                                              \
        } while (0)

/* For functions returning >= 0 or -errno. */
#define CHECK_OK(expr)                                                         \
        do {                                                                   \
                long _r_ = (long)(expr);                                       \
                if (_r_ < 0) {                                                 \
                        fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__,    \
                                __LINE__, #expr, strerror((int)-_r_));         \
                        fflush(stderr);                                        \
                        _exit(1);                                              \
                }                                                              \
        } while (0)

#define CHECK_ERR(expr, err)                                                   \
        do {                                                                   \
                long _r_ = (long)(expr);                                       \
                if (_r_ != -(long)(err)) {                                     \
                        fprintf(stderr,                                        \
                                "%s:%d: %s returned %ld (%s), expected -%s\n", \
                                __FILE__, __LINE__, #expr, _r_,                \
                                _r_ < 0 ? strerror((int)-_r_) : "success",     \
                                #err);                                         \
                        fflush(stderr);                                        \
                        _exit(1);                                              \
                }                                                              \
        } while (0)

#define CHECK_STREQ(a, b)                                                      \
        do {                                                                   \
                const char *_a_ = (a), *_b_ = (b);                             \
                if (!_a_ || !_b_ || strcmp(_a_, _b_) != 0) {                   \
                        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, \
                                __LINE__, _a_ ? _a_ : "(null)",                \
                                _b_ ? _b_ : "(null)");                         \
                        fflush(stderr);                                        \
                        _exit(1);                                              \
                }                                                              \
        } while (0)

static int tap_run(int argc, char **argv)
{
        int failed = 0;

        printf("1..%d\n", tap_n_tests);
        fflush(stdout);
        for (int i = 0; i < tap_n_tests; i++) {
                const struct tap_test *t = &tap_tests[i];
                int status = 0;
                pid_t pid;

                if (argc > 1 && strcmp(argv[1], t->name) != 0) {
                        printf("ok %d %s # SKIP not selected\n", i + 1, t->name);
                        continue;
                }
                fflush(stdout);
                fflush(stderr);
                pid = fork();
                if (pid < 0) {
                        printf("not ok %d %s # fork: %s\n", i + 1, t->name,
                               strerror(errno));
                        failed++;
                        continue;
                }
                if (pid == 0) {
                        alarm(TAP_TIMEOUT);
                        t->fn();
                        /* stdout is line-buffered (TAP_MAIN): nothing is
                         * left to flush but a partial line. */
                        fflush(stdout);
                        _exit(0);
                }
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        printf("ok %d %s\n", i + 1, t->name);
                else if (WIFEXITED(status) && WEXITSTATUS(status) == TAP_SKIP_EXIT)
                        printf("ok %d %s # SKIP\n", i + 1, t->name);
                else {
                        failed++;
                        if (WIFSIGNALED(status))
                                printf("not ok %d %s # killed by signal %d%s\n",
                                       i + 1, t->name, WTERMSIG(status),
                                       WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
                        else
                                printf("not ok %d %s\n", i + 1, t->name);
                }
                fflush(stdout);
        }
        return failed ? 1 : 0;
}

#define TAP_MAIN()                                                             \
        int main(int argc, char **argv)                                        \
        {                                                                      \
                setvbuf(stdout, NULL, _IOLBF, 0);                              \
                return tap_run(argc, argv);                                    \
        }
