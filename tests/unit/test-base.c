/* Unit tests of src/base: /proc parsing (maps, objects, tasks, thread
 * names, states and status fields) checked against what this process and
 * its children really are, fd passing over a SOCK_SEQPACKET socketpair
 * (fds arrive working, excess fds are refused without leaking), and the
 * string parsers and helpers.
 *
 * Each test runs in its own forked child (tests/tap.h), so threads,
 * children and fds a test creates die with it. Waiting for another
 * thread or process to reach a state polls /proc with a bounded number of
 * retries: no event announces "now sleeping in read()". */
#include "tap.h"

#include "base/fdpass.h"
#include "base/log.h"
#include "base/procfs.h"
#include "base/util.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------ */

static void short_pause(void)
{
        struct timespec ts = { .tv_nsec = 1000000 };

        nanosleep(&ts, NULL);
}

/* Poll until thread `tid` of `pid` is in state `want` (about 5 s). */
static bool wait_state(pid_t pid, pid_t tid, char want)
{
        for (int i = 0; i < 5000; i++) {
                char s;
                if (procfs_thread_state(pid, tid, &s) >= 0 && s == want)
                        return true;
                short_pause();
        }
        return false;
}

static size_t count_open_fds(void)
{
        _cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        size_t n = 0;

        CHECK(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        return n - 1; /* the directory's own fd */
}

static char *self_exe(void)
{
        char *p = realpath("/proc/self/exe", NULL);

        CHECK(p);
        return p;
}

/* Threads parked in read() on a pipe until the test ends. */
struct parked {
        pthread_barrier_t barrier;
        int pipe[2];
        pid_t tids[8];
        atomic_int next;
};

static void *parked_main(void *arg)
{
        struct parked *p = arg;
        char c;

        p->tids[atomic_fetch_add(&p->next, 1)] = gettid();
        pthread_barrier_wait(&p->barrier);
        (void)read(p->pipe[0], &c, 1);
        return NULL;
}

static void start_parked(struct parked *p, unsigned n, pthread_t *ret)
{
        CHECK(pipe2(p->pipe, O_CLOEXEC) == 0);
        CHECK(pthread_barrier_init(&p->barrier, NULL, n + 1) == 0);
        for (unsigned i = 0; i < n; i++)
                CHECK(pthread_create(&ret[i], NULL, parked_main, p) == 0);
        pthread_barrier_wait(&p->barrier);
}

static int the_text_marker(void);
static __attribute__((noinline)) int the_text_marker(void)
{
        return 42;
}

/* ---- procfs: maps ------------------------------------------------------- */

TEST(maps_self_text_and_stack)
{
        _cleanup_free_ char *exe = self_exe();
        struct procfs_maps m = {};
        uint64_t text = (uint64_t)(uintptr_t)&the_text_marker;
        bool found_text = false, found_stack = false;

        CHECK_OK(procfs_maps_read(getpid(), &m));
        CHECK(m.n > 5);
        for (size_t i = 0; i < m.n; i++) {
                const struct procfs_map *e = &m.maps[i];

                CHECK(e->start < e->end);
                if (i > 0)
                        CHECK(m.maps[i - 1].end <= e->start); /* sorted */
                if (text >= e->start && text < e->end) {
                        CHECK(e->perms & PROCFS_PERM_X);
                        CHECK(e->perms & PROCFS_PERM_R);
                        CHECK(!(e->perms & PROCFS_PERM_W));
                        CHECK_STREQ(e->path, exe);
                        CHECK(!e->deleted);
                        CHECK(e->inode != 0);
                        found_text = true;
                }
                if (strcmp(e->path, "[stack]") == 0) {
                        uint64_t here = (uint64_t)(uintptr_t)&found_stack;
                        CHECK(e->perms & PROCFS_PERM_W);
                        CHECK(here >= e->start && here < e->end);
                        found_stack = true;
                }
        }
        CHECK(found_text);
        CHECK(found_stack);
        procfs_maps_done(&m);
        CHECK(m.n == 0 && m.maps == NULL);
}

TEST(maps_find)
{
        struct procfs_maps m = {};
        const struct procfs_map *e;
        static int a_global;
        int a_local;

        CHECK_OK(procfs_maps_read(0 + getpid(), &m));

        e = procfs_maps_find(&m, (uint64_t)(uintptr_t)&the_text_marker);
        CHECK(e);
        CHECK(e->perms & PROCFS_PERM_X);

        e = procfs_maps_find(&m, (uint64_t)(uintptr_t)&a_global);
        CHECK(e);
        CHECK(e->perms & PROCFS_PERM_W);

        e = procfs_maps_find(&m, (uint64_t)(uintptr_t)&a_local);
        CHECK(e);
        CHECK_STREQ(e->path, "[stack]");

        /* Boundaries: start is inside, end is not. */
        for (size_t i = 0; i < m.n; i++) {
                CHECK(procfs_maps_find(&m, m.maps[i].start) == &m.maps[i]);
                CHECK(procfs_maps_find(&m, m.maps[i].end - 1) == &m.maps[i]);
                if (i + 1 < m.n && m.maps[i].end < m.maps[i + 1].start)
                        CHECK(procfs_maps_find(&m, m.maps[i].end) == NULL);
        }
        CHECK(procfs_maps_find(&m, 0) == NULL);
        CHECK(procfs_maps_find(&m, UINT64_MAX) == NULL);
        procfs_maps_done(&m);
}

TEST(maps_deleted_file)
{
        char path[] = "/tmp/test-base-XXXXXX";
        struct procfs_maps m = {};
        const struct procfs_map *e;
        void *addr;
        int fd;

        fd = mkostemp(path, O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(ftruncate(fd, 4096) == 0);
        addr = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(addr != MAP_FAILED);
        CHECK(unlink(path) == 0);

        CHECK_OK(procfs_maps_read(getpid(), &m));
        e = procfs_maps_find(&m, (uint64_t)(uintptr_t)addr);
        CHECK(e);
        CHECK(e->deleted);
        CHECK_STREQ(e->path, path); /* " (deleted)" stripped */
        CHECK(e->perms & PROCFS_PERM_SHARED);
        CHECK(e->offset == 0);
        procfs_maps_done(&m);
        munmap(addr, 4096);
        close(fd);
}

TEST(objects_executable_base)
{
        _cleanup_free_ char *exe = self_exe();
        _cleanup_free_ struct procfs_object *objs = NULL;
        struct procfs_maps m = {};
        const struct procfs_object *o = NULL;
        uint64_t text = (uint64_t)(uintptr_t)&the_text_marker;
        size_t n = 0;
        bool vdso = false;

        CHECK_OK(procfs_maps_read(getpid(), &m));
        CHECK_OK(procfs_objects(&m, &objs, &n));
        CHECK(n > 2);
        for (size_t i = 0; i < n; i++) {
                CHECK(objs[i].path[0] != 0); /* anonymous maps are no object */
                if (strcmp(objs[i].path, exe) == 0) {
                        CHECK(!o); /* one object per file */
                        o = &objs[i];
                }
                if (strcmp(objs[i].path, "[vdso]") == 0)
                        vdso = true;
        }
        CHECK(o);
        CHECK(vdso);

        /* The base is the offset-0 mapping, and an ELF header is there. */
        bool found_base = false;
        for (size_t i = 0; i < m.n; i++)
                if (strcmp(m.maps[i].path, exe) == 0 && m.maps[i].offset == 0) {
                        CHECK(o->base == m.maps[i].start);
                        found_base = true;
                }
        CHECK(found_base);
        CHECK(memcmp((const void *)(uintptr_t)o->base, "\177ELF", 4) == 0);
        CHECK(o->start <= o->base && o->base < o->end);
        CHECK(o->exec_start < o->exec_end);
        CHECK(text >= o->exec_start && text < o->exec_end);
        CHECK(o->inode != 0);

        free(TAKE_PTR(objs)); /* before the maps it points into */
        procfs_maps_done(&m);
}

/* ---- procfs: tasks and threads ----------------------------------------- */

TEST(tasks_lists_every_thread)
{
        static struct parked p; /* outlives the test: its threads still use it */
        pthread_t t[3];
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0;

        start_parked(&p, 3, t);
        CHECK_OK(procfs_tasks(getpid(), &tids, &n));
        CHECK(n == 4);
        for (size_t i = 1; i < n; i++)
                CHECK(tids[i - 1] < tids[i]); /* sorted */
        bool main_found = false;
        for (size_t i = 0; i < n; i++)
                if (tids[i] == getpid())
                        main_found = true;
        CHECK(main_found);
        for (unsigned k = 0; k < 3; k++) {
                bool found = false;
                for (size_t i = 0; i < n; i++)
                        if (tids[i] == p.tids[k])
                                found = true;
                CHECK(found);
        }
}

TEST(thread_name)
{
        static struct parked p; /* outlives the test: its threads still use it */
        pthread_t t[1];
        char name[64];

        start_parked(&p, 1, t);
        CHECK(pthread_setname_np(t[0], "tb-named") == 0);
        CHECK_OK(procfs_thread_name(getpid(), p.tids[0], name, sizeof(name)));
        CHECK_STREQ(name, "tb-named");

        /* Names may hold spaces and parentheses. */
        CHECK(pthread_setname_np(t[0], "a (b) c") == 0);
        CHECK_OK(procfs_thread_name(getpid(), p.tids[0], name, sizeof(name)));
        CHECK_STREQ(name, "a (b) c");

        /* A small buffer truncates, NUL-terminated. */
        CHECK_OK(procfs_thread_name(getpid(), p.tids[0], name, 3));
        CHECK_STREQ(name, "a ");
}

TEST(thread_state_sleeping)
{
        static struct parked p; /* outlives the test: its threads still use it */
        pthread_t t[1];
        char s;

        start_parked(&p, 1, t);
        /* The name has a ')' to exercise the parser's "last ')'" rule. */
        CHECK(pthread_setname_np(t[0], "x) R (y") == 0);
        CHECK(wait_state(getpid(), p.tids[0], 'S'));
        CHECK_OK(procfs_thread_state(getpid(), p.tids[0], &s));
        CHECK(s == 'S');
        CHECK_STREQ(procfs_state_name(s), "sleeping");

        /* This thread is running while it reads its own state. */
        CHECK_OK(procfs_thread_state(getpid(), gettid(), &s));
        CHECK(s == 'R');
}

TEST(thread_state_stopped_child)
{
        pid_t pid;
        int status;
        char s;

        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        CHECK(kill(pid, SIGSTOP) == 0);
        CHECK(waitpid(pid, &status, WUNTRACED) == pid);
        CHECK(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP);
        CHECK_OK(procfs_thread_state(pid, pid, &s));
        CHECK(s == 'T');
        CHECK_STREQ(procfs_state_name(s), "stopped");

        CHECK(kill(pid, SIGKILL) == 0);
        CHECK(waitpid(pid, &status, 0) == pid);
}

TEST(tracer_pid_and_tgid)
{
        static struct parked p; /* outlives the test: its threads still use it */
        pthread_t t[1];
        pid_t tracer = -1, tgid = -1;

        start_parked(&p, 1, t);
        CHECK_OK(procfs_tracer_pid(getpid(), 0, &tracer));
        CHECK(tracer == 0);
        tracer = -1;
        CHECK_OK(procfs_tracer_pid(getpid(), p.tids[0], &tracer));
        CHECK(tracer == 0);

        CHECK_OK(procfs_tgid(p.tids[0], &tgid));
        CHECK(tgid == getpid());
        CHECK_OK(procfs_tgid(getpid(), &tgid));
        CHECK(tgid == getpid());
}

TEST(status_field)
{
        char buf[64];

        CHECK_OK(procfs_status_field(getpid(), 0, "Pid", buf, sizeof(buf)));
        CHECK(atoi(buf) == getpid());
        CHECK_OK(procfs_status_field(getpid(), gettid(), "Tgid", buf, sizeof(buf)));
        CHECK(atoi(buf) == getpid());
        /* A field name that is a prefix of another one must not match it. */
        CHECK_ERR(procfs_status_field(getpid(), 0, "Pi", buf, sizeof(buf)), ENOENT);
        CHECK_ERR(procfs_status_field(getpid(), 0, "NoSuchField", buf, sizeof(buf)), ENOENT);
}

TEST(dead_pid_gives_esrch)
{
        _cleanup_free_ pid_t *tids = NULL;
        struct procfs_maps m = {};
        pid_t pid, x;
        size_t n;
        int status;
        char buf[32], s;

        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
                _exit(0);
        CHECK(waitpid(pid, &status, 0) == pid);

        /* The pid could be reused in between; on an idle test machine it is
         * not (pids count up). */
        CHECK_ERR(procfs_maps_read(pid, &m), ESRCH);
        CHECK_ERR(procfs_tasks(pid, &tids, &n), ESRCH);
        CHECK_ERR(procfs_thread_name(pid, pid, buf, sizeof(buf)), ESRCH);
        CHECK_ERR(procfs_thread_state(pid, pid, &s), ESRCH);
        CHECK_ERR(procfs_tracer_pid(pid, 0, &x), ESRCH);
        CHECK_ERR(procfs_tgid(pid, &x), ESRCH);
        CHECK_ERR(procfs_status_field(pid, pid, "Name", buf, sizeof(buf)), ESRCH);
}

static void *report_tid(void *arg)
{
        *(pid_t *)arg = gettid();
        return NULL;
}

TEST(dead_thread_gives_esrch)
{
        pthread_t t;
        pid_t tid = 0;
        char s;

        CHECK(pthread_create(&t, NULL, report_tid, &tid) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        CHECK(tid > 0 && tid != getpid());
        /* pthread_join() returns when the kernel clears the tid, a little
         * before it releases the task: poll, bounded. */
        int r = 0;
        for (int i = 0; i < 5000; i++) {
                r = procfs_thread_state(getpid(), tid, &s);
                if (r == -ESRCH)
                        break;
                short_pause();
        }
        CHECK_ERR(r, ESRCH);
}

/* ---- fdpass ------------------------------------------------------------- */

TEST(fdpass_roundtrip)
{
        int sv[2], pipes[3][2], out[3], got[8];
        char buf[64] = {};
        size_t len = 0, n_fds = 0;
        static const char payload[] = "three fds";

        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        for (int i = 0; i < 3; i++) {
                CHECK(pipe2(pipes[i], O_CLOEXEC) == 0);
                out[i] = pipes[i][1];
        }
        CHECK_OK(fdpass_send(sv[0], payload, sizeof(payload), out, 3));
        CHECK_OK(fdpass_recv(sv[1], buf, sizeof(buf), &len, got, ELEMENTSOF(got), &n_fds));
        CHECK(len == sizeof(payload));
        CHECK(memcmp(buf, payload, len) == 0);
        CHECK(n_fds == 3);

        for (int i = 0; i < 3; i++) {
                char c = (char)('a' + i), r = 0;

                CHECK(got[i] != out[i]); /* a new descriptor ... */
                CHECK(fcntl(got[i], F_GETFD) & FD_CLOEXEC);
                /* ... for the same pipe, in order. */
                CHECK(write(got[i], &c, 1) == 1);
                CHECK(read(pipes[i][0], &r, 1) == 1);
                CHECK(r == c);
                close(got[i]);
        }
}

TEST(fdpass_payload_only)
{
        int sv[2], got[2];
        char buf[16];
        size_t len = 0, n_fds = 99;

        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        CHECK_OK(fdpass_send(sv[0], "x", 1, NULL, 0));
        CHECK_OK(fdpass_recv(sv[1], buf, sizeof(buf), &len, got, 2, &n_fds));
        CHECK(len == 1 && buf[0] == 'x');
        CHECK(n_fds == 0);
}

TEST(fdpass_too_many_fds_no_leak)
{
        int sv[2], p[2], out[5], got[2] = { -1, -1 };
        char buf[16];
        size_t len = 77, n_fds = 77, before, after;

        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        for (int i = 0; i < 5; i++)
                out[i] = p[i % 2];
        CHECK_OK(fdpass_send(sv[0], "many", 4, out, 5));

        before = count_open_fds();
        CHECK_ERR(fdpass_recv(sv[1], buf, sizeof(buf), &len, got, 2, &n_fds), EMSGSIZE);
        after = count_open_fds();
        CHECK(before == after);
        /* Outputs are untouched on failure. */
        CHECK(len == 77 && n_fds == 77);

        /* The socket still works afterwards. */
        CHECK_OK(fdpass_send(sv[0], "ok", 2, out, 1));
        CHECK_OK(fdpass_recv(sv[1], buf, sizeof(buf), &len, got, 2, &n_fds));
        CHECK(len == 2 && n_fds == 1);
        close(got[0]);
        CHECK(count_open_fds() == after);
}

TEST(fdpass_limits_and_eof)
{
        int sv[2], fds[FDPASS_MAX + 1], got[1];
        char buf[8];
        size_t len, n;

        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = sv[0];
        CHECK_ERR(fdpass_send(sv[0], "x", 1, fds, FDPASS_MAX + 1), E2BIG);

        /* FDPASS_MAX is accepted by the kernel (SCM_MAX_FD). */
        CHECK_OK(fdpass_send(sv[0], "x", 1, fds, FDPASS_MAX));
        int *many = calloc(FDPASS_MAX, sizeof(int));
        CHECK(many);
        CHECK_OK(fdpass_recv(sv[1], buf, sizeof(buf), &len, many, FDPASS_MAX, &n));
        CHECK(n == FDPASS_MAX);
        for (size_t i = 0; i < n; i++)
                close(many[i]);
        free(many);

        close(sv[0]);
        CHECK_ERR(fdpass_recv(sv[1], buf, sizeof(buf), &len, got, 1, &n), ECONNRESET);
}

/* ---- util --------------------------------------------------------------- */

TEST(parse_pid)
{
        pid_t p = 0;

        CHECK_OK(parse_pid("1", &p));
        CHECK(p == 1);
        CHECK_OK(parse_pid("4242", &p));
        CHECK(p == 4242);
        CHECK_OK(parse_pid("2147483647", &p));
        CHECK(p == INT_MAX);

        p = 7;
        CHECK_ERR(parse_pid("0", &p), EINVAL);
        CHECK_ERR(parse_pid("-1", &p), EINVAL);
        CHECK_ERR(parse_pid("+1", &p), EINVAL);
        CHECK_ERR(parse_pid("", &p), EINVAL);
        CHECK_ERR(parse_pid(NULL, &p), EINVAL);
        CHECK_ERR(parse_pid("12a", &p), EINVAL);
        CHECK_ERR(parse_pid("1.0", &p), EINVAL);
        CHECK_ERR(parse_pid("2147483648", &p), EINVAL);
        CHECK_ERR(parse_pid("99999999999999999999999", &p), EINVAL);
        CHECK(p == 7); /* untouched on failure */
}

TEST(parse_whole_string_only)
{
        pid_t p = 7;
        double d = 3;

        /* util.h: "the whole string is a positive number", seconds "as a
         * decimal": no blanks around it (strtol/strtod skip leading
         * ones), no hexadecimal (strtod takes "0x10"). */
        CHECK_ERR(parse_pid(" 1", &p), EINVAL);
        CHECK_ERR(parse_pid("1 ", &p), EINVAL);
        CHECK_ERR(parse_pid(" -1", &p), EINVAL);
        CHECK(p == 7);
        CHECK_ERR(parse_seconds(" 5", &d), EINVAL);
        CHECK_ERR(parse_seconds("5 ", &d), EINVAL);
        CHECK_ERR(parse_seconds("0x10", &d), EINVAL);
        CHECK(d == 3);
}

TEST(parse_seconds)
{
        double d = -1;

        CHECK_OK(parse_seconds("5", &d));
        CHECK(d == 5.0);
        CHECK_OK(parse_seconds("0.5", &d));
        CHECK(d == 0.5);
        CHECK_OK(parse_seconds("0", &d));
        CHECK(d == 0.0);
        CHECK_OK(parse_seconds("120.25", &d));
        CHECK(d == 120.25);

        d = 3;
        CHECK_ERR(parse_seconds("", &d), EINVAL);
        CHECK_ERR(parse_seconds(NULL, &d), EINVAL);
        CHECK_ERR(parse_seconds("-1", &d), EINVAL);
        CHECK_ERR(parse_seconds("-0.5", &d), EINVAL);
        CHECK_ERR(parse_seconds("abc", &d), EINVAL);
        CHECK_ERR(parse_seconds("5s", &d), EINVAL);
        CHECK_ERR(parse_seconds("1.2.3", &d), EINVAL);
        CHECK_ERR(parse_seconds("inf", &d), EINVAL);
        CHECK_ERR(parse_seconds("nan", &d), EINVAL);
        CHECK_ERR(parse_seconds("1e999", &d), EINVAL);
        CHECK(d == 3); /* untouched on failure */
}

TEST(path_basename)
{
        static const char s[] = "/usr/lib/libc.so.6";

        CHECK_STREQ(path_basename("src/x.c"), "x.c");
        CHECK_STREQ(path_basename("x.c"), "x.c");
        CHECK_STREQ(path_basename("src/"), "");
        CHECK_STREQ(path_basename(""), "");
        CHECK(path_basename(s) == s + 9); /* into the string, not a copy */
}

TEST(read_file_str_and_errbuf)
{
        _cleanup_free_ char *s = NULL;
        struct errbuf e = {};
        size_t len = 0;

        CHECK_OK(read_file_str("/proc/self/status", &s, &len));
        CHECK(len == strlen(s));
        CHECK(len > 100); /* bigger than one read from /proc may return */
        CHECK(strncmp(s, "Name:", 5) == 0);
        CHECK_ERR(read_file_str("/nonexistent/file", &s, &len), ENOENT);

        CHECK_STREQ(errbuf_or_strerror(NULL, -ESRCH), strerror(ESRCH));
        CHECK_STREQ(errbuf_or_strerror(&e, -EPERM), strerror(EPERM));
        errbuf_set(&e, "pid %d: %s", 12, "gone");
        CHECK_STREQ(errbuf_or_strerror(&e, -ESRCH), "pid 12: gone");
        errbuf_set(NULL, "ignored %d", 1);
}

TAP_MAIN()
