/* Spawning versions; see spawn.h. Between fork() and exec() the child
 * only calls async-signal-safe functions on data prepared by the parent
 * (the keeper is single-threaded, but the rule costs nothing), except
 * one snprintf() of LISTEN_PID into a slot the parent sized. */
#include "update/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

static bool is_ours(const char *e)
{
        static const char *const vars[] = {
                "LIVEUP_FD=",   "LIVEUP_NAME=",    "LIVEUP_GENERATION=", "NOTIFY_SOCKET=",
                "LISTEN_FDS=",  "LISTEN_FDNAMES=", "LISTEN_PID=",
        };

        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                if (strncmp(e, vars[i], strlen(vars[i])) == 0)
                        return true;
        return false;
}

struct env {
        char **v;
        size_t n;
};

static void env_free(struct env *e)
{
        for (size_t i = 0; i < e->n; i++)
                free(e->v[i]);
        free(e->v);
}

_printf_(2, 3) static char *env_add(struct env *e, const char *fmt, ...)
{
        char **v = realloc(e->v, (e->n + 2) * sizeof(*v));
        va_list ap;
        char *s;

        if (!v)
                return NULL;
        e->v = v;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return NULL;
        v[e->n++] = s;
        v[e->n] = NULL;
        return s;
}

int upd_check_exec(const char *file, char *ret_path, size_t size)
{
        const char *path = getenv("PATH");
        struct stat st;
        int r = -ENOENT;

        if (strchr(file, '/')) {
                if (stat(file, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode) || access(file, X_OK) < 0)
                        return -EACCES;
                snprintf(ret_path, size, "%s", file);
                return 0;
        }
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                const char *c = strchrnul(path, ':');
                char buf[PATH_MAX];

                snprintf(buf, sizeof(buf), "%.*s/%s", (int)(c - path), c == path ? "." : path,
                         file);
                if (stat(buf, &st) == 0) {
                        if (S_ISREG(st.st_mode) && access(buf, X_OK) == 0) {
                                snprintf(ret_path, size, "%s", buf);
                                return 0;
                        }
                        r = -EACCES;
                }
                path = *c ? c + 1 : c;
        }
        return r;
}

static int build_env(const struct upd_spawn_opts *o, int sock_target, struct env *e,
                     char **ret_listen_pid)
{
        size_t n = o->listen ? o->listen->n : 0;

        for (char **p = environ; p && *p; p++)
                if (!is_ours(*p) && !env_add(e, "%s", *p))
                        return -ENOMEM;
        if (!env_add(e, "LIVEUP_FD=%d", sock_target) || !env_add(e, "LIVEUP_NAME=%s", o->name) ||
            !env_add(e, "LIVEUP_GENERATION=%u", o->generation) ||
            !env_add(e, "NOTIFY_SOCKET=%s", o->notify_path))
                return -ENOMEM;
        *ret_listen_pid = NULL;
        if (n > 0) {
                size_t len = 0;
                _cleanup_free_ char *names = NULL;

                for (size_t i = 0; i < n; i++)
                        len += strlen(o->listen->items[i].name) + 1;
                names = calloc(1, len + 1);
                if (!names)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                strcat(names, ":");
                        strcat(names, o->listen->items[i].name);
                }
                if (!env_add(e, "LISTEN_FDS=%zu", n) ||
                    !env_add(e, "LISTEN_FDNAMES=%s", names))
                        return -ENOMEM;
                /* Filled in by the child with its own pid. */
                *ret_listen_pid = env_add(e, "LISTEN_PID=%-20s", "");
                if (!*ret_listen_pid)
                        return -ENOMEM;
        }
        return 0;
}

_Noreturn static void child(const struct upd_spawn_opts *o, pid_t keeper, int sock, int errw,
                            char **envp, char *listen_pid)
{
        size_t n = o->listen ? o->listen->n : 0;
        int high = (int)n + 4;
        int tmp[UPD_ITEMS_MAX + 1];
        sigset_t none;
        int e;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < _NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        signal(s, SIG_DFL);
        if (o->pdeathsig) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        goto fail;
                if (getppid() != keeper)
                        _exit(127);
        }
        /* Everything we place first goes above the targets, so no dup2()
         * below closes a source (or the error pipe) before it is copied. */
        errw = fcntl(errw, F_DUPFD_CLOEXEC, high);
        if (errw < 0)
                _exit(127);
        for (size_t i = 0; i < n; i++)
                if ((tmp[i] = fcntl(o->listen->items[i].fd, F_DUPFD_CLOEXEC, high)) < 0)
                        goto fail;
        if ((tmp[n] = fcntl(sock, F_DUPFD_CLOEXEC, high)) < 0)
                goto fail;
        for (size_t i = 0; i <= n; i++)
                if (dup2(tmp[i], 3 + (int)i) < 0)
                        goto fail;
        /* Whatever the keeper itself inherited without O_CLOEXEC (from a
         * shell, a supervisor) must not reach the service either: mark
         * everything above our fds close-on-exec (Linux >= 5.11). */
        (void)syscall(SYS_close_range, (unsigned)(4 + n), ~0u, CLOSE_RANGE_CLOEXEC);
        if (listen_pid)
                snprintf(listen_pid, strlen(listen_pid) + 1, "LISTEN_PID=%d", (int)getpid());
        execvpe(o->argv[0], o->argv, envp);
fail:
        e = errno;
        (void)!write(errw, &e, sizeof(e));
        _exit(127);
}

int upd_spawn(const struct upd_spawn_opts *o, pid_t *ret_pid, int *ret_pidfd, int *ret_sock,
              struct errbuf *err)
{
        _cleanup_(env_free) struct env env = {};
        _cleanup_close_ int mine = -EBADF, theirs = -EBADF, errr = -EBADF, errw = -EBADF;
        size_t n = o->listen ? o->listen->n : 0;
        char *listen_pid;
        int sp[2], ep[2], pidfd, e = 0;
        pid_t keeper = getpid(), pid;
        ssize_t k;
        int r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        mine = sp[0];
        theirs = sp[1];
        if (pipe2(ep, O_CLOEXEC) < 0)
                return -errno;
        errr = ep[0];
        errw = ep[1];
        r = build_env(o, 3 + (int)n, &env, &listen_pid);
        if (r < 0)
                return r;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child(o, keeper, theirs, errw, env.v, listen_pid);

        errw = safe_close(errw);
        theirs = safe_close(theirs);
        do
                k = read(errr, &e, sizeof(e));
        while (k < 0 && errno == EINTR);
        if (k == sizeof(e)) {
                (void)waitpid(pid, NULL, 0);
                errbuf_set(err, "cannot execute '%s': %s", o->argv[0], strerror(e));
                /* "No such file..." -> "no such file...": messages are lowercase. */
                if (err && err->msg[0]) {
                        char *c = strstr(err->msg, "': ");
                        if (c && c[3] >= 'A' && c[3] <= 'Z' && !(c[4] >= 'A' && c[4] <= 'Z'))
                                c[3] = (char)(c[3] - 'A' + 'a');
                }
                return -e;
        }
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                r = -errno;
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                return r;
        }
        if (fcntl(mine, F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                close(pidfd);
                return r;
        }
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        *ret_sock = TAKE_FD(mine);
        return 0;
}
