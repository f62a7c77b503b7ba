/* Shared helpers of the victim programs; see victim-common.h.
 *
 * Everything here runs in the victim's main thread. It uses only
 * async-signal-safe output (write(2)) for lines a driver waits for, and
 * poll(2) on stdin and a signalfd for SIGTERM, so the main thread spends
 * its life in one blocking syscall that a tracer can interrupt. */
#include "victim-common.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

void victim_die_with_parent(void)
{
        pid_t parent = getppid();

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
                perror("victim: PR_SET_PDEATHSIG");
                exit(1);
        }
        /* The parent may have died between getppid() and the prctl: then
         * we were reparented (to init or a subreaper) already. */
        if (getppid() != parent)
                _exit(1);
}

void victim_block_term(void)
{
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
}

long victim_parse_long(const char *what, const char *s, long min, long max)
{
        char *end;
        long v;

        errno = 0;
        v = s ? strtol(s, &end, 10) : 0;
        if (!s || !*s || errno || *end || v < min || v > max) {
                fprintf(stderr, "victim: bad %s '%s' (want %ld..%ld)\n", what,
                        s ? s : "", min, max);
                exit(2);
        }
        return v;
}

void victim_printf(int fd, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n >= sizeof(buf))
                n = sizeof(buf) - 1;
        for (size_t off = 0; off < (size_t)n;) {
                ssize_t k = write(fd, buf + off, (size_t)n - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                off += (size_t)k;
        }
}

static bool stdin_is_channel(void)
{
        struct stat st;

        if (fstat(STDIN_FILENO, &st) < 0)
                return false;
        return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO);
}

/* Handle the complete lines in buf[0..*len), keep the rest. Returns true
 * when "quit" was seen. */
static bool serve_lines(char *buf, size_t *len, victim_command_fn fn, void *userdata)
{
        char *line = buf, *nl;

        while ((nl = memchr(line, '\n', *len - (size_t)(line - buf)))) {
                *nl = 0;
                if (nl > line && nl[-1] == '\r')
                        nl[-1] = 0;
                if (strcmp(line, "quit") == 0)
                        return true;
                if (*line && fn)
                        fn(line, userdata);
                line = nl + 1;
        }
        *len -= (size_t)(line - buf);
        memmove(buf, line, *len);
        return false;
}

enum victim_end victim_control_loop(victim_command_fn fn, void *userdata, atomic_ulong *eintr)
{
        struct pollfd pfd[2];
        char buf[1024];
        size_t len = 0;
        sigset_t set;
        int sfd;

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);
        if (sfd < 0) {
                perror("victim: signalfd");
                exit(1);
        }
        pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = stdin_is_channel() ? STDIN_FILENO : -1,
                                  .events = POLLIN };

        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR) {
                                if (eintr)
                                        atomic_fetch_add(eintr, 1);
                                continue;
                        }
                        perror("victim: poll");
                        exit(1);
                }
                if (pfd[0].revents)
                        return VICTIM_END_TERM;
                if (pfd[1].revents) {
                        ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
                        if (n < 0 && errno == EINTR) {
                                if (eintr)
                                        atomic_fetch_add(eintr, 1);
                                continue;
                        }
                        if (n < 0 && errno == EAGAIN)
                                continue;
                        if (n <= 0)
                                return VICTIM_END_EOF;
                        len += (size_t)n;
                        if (serve_lines(buf, &len, fn, userdata))
                                return VICTIM_END_QUIT;
                        if (len == sizeof(buf) - 1)
                                len = 0; /* an overlong line: drop it */
                }
        }
}

unsigned long victim_count_threads(void)
{
        unsigned long n = 0;
        struct dirent *de;
        DIR *d;

        d = opendir("/proc/self/task");
        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

bool victim_in_syscall(int tid)
{
        char path[64], buf[128] = {};
        FILE *f;
        long nr;
        bool ok;

        snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
        f = fopen(path, "re");
        if (!f)
                return false;
        ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%ld", &nr) == 1 && nr >= 0;
        fclose(f);
        return ok;
}
