/* Test service for live update, using libliveup: a counter served over a
 * Unix stream socket, the counter in a memfd handed over on update (so it
 * continues), connections handed over at freeze (so none is dropped), and
 * with --fdkinds one fd of every kind (listening TCP, connected TCP, Unix
 * socket, pipe, eventfd, memfd) preserved by the first version and checked
 * by the next.
 *
 *   upd-svc --socket PATH [--mode MODE] [--schema N] [--accept MIN:MAX]
 *           [--fdkinds] [--thread] [--garble]
 *
 * Requests, one line each: "get" -> "N gen=G pid=P" (N = counter after
 * increment), "check" -> the --fdkinds report, "pid" -> "pid=P gen=G",
 * "fds" -> "fds 0,1,2,3": the fds this version was started with.
 * Events go to stdout, one line each, for the driver to wait on: "ready
 * gen=G pid=P restored=R counter=N", "frozen pid=P", "cancelled pid=P
 * reason=R", "finished pid=P", "fdcheck ...".
 *
 * MODE (acts in a new version only, i.e. after LIVEUP_TAKEN, except the
 * refuse-* ones, which act in the version that is asked to prepare or
 * freeze): normal, crash (abort before ready), exit (exit 3 before
 * ready), hang (never ready), refuse-prepare, refuse-freeze, linger (as
 * the old version, does not exit after FINISH: the keeper kills it).
 *
 * --thread: the library's dispatch thread runs the callbacks
 * (liveup_start_thread); a mutex keeps them and the serving loop apart. */
#include <liveup.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CONNS 64

struct state {
        uint64_t counter;
        uint32_t n_conns;
};

static struct liveup *lu;
static struct state *st;
static const char *mode = "normal";
static int listen_fd = -1;
static int conns[MAX_CONNS];
static size_t n_conns;
static bool frozen, finished;
static int wake_fd = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char fdreport[512] = "check fresh";
static char startfds[256] = "fds";

static void say(const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
        va_end(ap);
        buf[n++] = '\n';
        (void)!write(STDOUT_FILENO, buf, (size_t)n);
}

static void die(const char *what, int r)
{
        fprintf(stderr, "upd-svc: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

/* ---- the fd kinds --------------------------------------------------------- */

static int tcp_listener(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
                die("tcp listener", errno);
        return fd;
}

static int tcp_connect_to(int lfd)
{
        struct sockaddr_in sa;
        socklen_t l = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || getsockname(lfd, (struct sockaddr *)&sa, &l) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -1;
        return fd;
}

static void fdkinds_create(void)
{
        int lfd = tcp_listener(), a, b, sp[2], p[2], efd, mfd;

        a = tcp_connect_to(lfd);
        b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (a < 0 || b < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 ||
            pipe2(p, O_CLOEXEC) < 0)
                die("fd kinds", errno);
        efd = eventfd(0, EFD_CLOEXEC);
        mfd = memfd_create("blob", MFD_CLOEXEC);
        if (efd < 0 || mfd < 0 || pwrite(mfd, "hello", 5, 0) != 5)
                die("fd kinds", errno);
        /* The data the next version must find, written before handover. */
        if (write(a, "ping", 4) != 4 || write(sp[0], "ping", 4) != 4 || write(p[1], "ping", 4) != 4)
                die("fd kinds data", errno);
        uint64_t v = 42;
        if (write(efd, &v, sizeof(v)) != sizeof(v))
                die("eventfd", errno);
        const struct {
                const char *name;
                int fd;
        } items[] = { { "tcp-listen", lfd }, { "tcp-a", a },      { "tcp-b", b },
                      { "unix-a", sp[0] },   { "unix-b", sp[1] }, { "pipe-r", p[0] },
                      { "pipe-w", p[1] },    { "eventfd", efd },  { "memfd", mfd } };
        for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
                int r = liveup_preserve_fd(lu, items[i].name, items[i].fd, 1);
                if (r < 0)
                        die("preserve", r);
        }
        /* Ours stay open too (the library holds duplicates). */
}

static bool read_exact(int fd, char *buf, size_t n)
{
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        size_t got = 0;

        while (got < n) {
                if (poll(&pf, 1, 2000) <= 0)
                        return false;
                ssize_t k = read(fd, buf + got, n - got);
                if (k <= 0)
                        return false;
                got += (size_t)k;
        }
        return true;
}

static const char *check_pair(const char *an, const char *bn, bool ping_on_b)
{
        int a = liveup_retrieve_fd(lu, an, NULL), b = liveup_retrieve_fd(lu, bn, NULL);
        char buf[4];
        const char *res = "ok";

        if (a < 0 || b < 0)
                res = "missing";
        else if (ping_on_b && (!read_exact(b, buf, 4) || memcmp(buf, "ping", 4) != 0))
                res = "no-ping";
        else if (write(b, "pong", 4) != 4 || !read_exact(a, buf, 4) || memcmp(buf, "pong", 4) != 0)
                res = "broken";
        if (a >= 0)
                close(a);
        if (b >= 0)
                close(b);
        return res;
}

static void fdkinds_check(void)
{
        const char *tl = "ok", *tcp, *ux, *pp = "ok", *ev = "ok", *mf = "ok";
        int lfd = liveup_retrieve_fd(lu, "tcp-listen", NULL);
        int acc = 0;
        socklen_t l = sizeof(acc);
        char buf[8];

        if (lfd < 0)
                tl = "missing";
        else if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0 || !acc)
                tl = "not-listening";
        else {
                int c = tcp_connect_to(lfd);
                struct pollfd pf = { .fd = lfd, .events = POLLIN };
                int s = c >= 0 && poll(&pf, 1, 2000) > 0 ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
                if (s < 0)
                        tl = "no-accept";
                if (c >= 0)
                        close(c);
                if (s >= 0)
                        close(s);
        }
        if (lfd >= 0)
                close(lfd);
        tcp = check_pair("tcp-a", "tcp-b", true);
        ux = check_pair("unix-a", "unix-b", true);

        int pr = liveup_retrieve_fd(lu, "pipe-r", NULL), pw = liveup_retrieve_fd(lu, "pipe-w", NULL);
        if (pr < 0 || pw < 0)
                pp = "missing";
        else if (!read_exact(pr, buf, 4) || memcmp(buf, "ping", 4) != 0)
                pp = "no-ping";
        else if (write(pw, "x", 1) != 1 || !read_exact(pr, buf, 1))
                pp = "broken";

        int efd = liveup_retrieve_fd(lu, "eventfd", NULL);
        uint64_t v = 0;
        if (efd < 0)
                ev = "missing";
        else if (read(efd, &v, sizeof(v)) != sizeof(v) || v != 42)
                ev = "wrong-value";

        int mfd = liveup_retrieve_fd(lu, "memfd", NULL);
        if (mfd < 0)
                mf = "missing";
        else if (pread(mfd, buf, 5, 0) != 5 || memcmp(buf, "hello", 5) != 0)
                mf = "wrong-content";

        snprintf(fdreport, sizeof(fdreport),
                 "check tcp-listen=%s tcp=%s unix=%s pipe=%s eventfd=%s memfd=%s", tl, tcp, ux,
                 pp, ev, mf);
        say("fd%s", fdreport);
}

/* ---- participants ------------------------------------------------------- */

static int prepare(struct liveup *l, void *ud, char *why, size_t size)
{
        if (strcmp(mode, "refuse-prepare") == 0) {
                snprintf(why, size, "test service told to refuse");
                return -EBUSY;
        }
        return 0;
}

static int freeze(struct liveup *l, void *ud, char *why, size_t size)
{
        if (strcmp(mode, "refuse-freeze") == 0) {
                snprintf(why, size, "test service told to refuse the freeze");
                return -EBUSY;
        }
        pthread_mutex_lock(&lock);
        frozen = true;
        /* Idle connections go to the next version. */
        for (size_t i = 0; i < n_conns; i++) {
                char name[32];
                snprintf(name, sizeof(name), "conn.%zu", i);
                (void)liveup_preserve_fd(l, name, conns[i], 1);
        }
        st->n_conns = (uint32_t)n_conns;
        pthread_mutex_unlock(&lock);
        say("frozen pid=%d", (int)getpid());
        return 0;
}

static void cancel(struct liveup *l, void *ud, enum liveup_cancel_reason reason)
{
        pthread_mutex_lock(&lock);
        for (uint32_t i = 0; i < st->n_conns; i++) {
                char name[32];
                snprintf(name, sizeof(name), "conn.%u", i);
                (void)liveup_unpreserve(l, name);
        }
        st->n_conns = 0;
        frozen = false;
        pthread_mutex_unlock(&lock);
        say("cancelled pid=%d reason=%d", (int)getpid(), (int)reason);
        uint64_t one = 1;
        (void)!write(wake_fd, &one, sizeof(one));
}

static void finish(struct liveup *l, void *ud)
{
        say("finished pid=%d", (int)getpid());
}

static void on_exit_thread(struct liveup *l, void *ud)
{
        pthread_mutex_lock(&lock);
        finished = true;
        pthread_mutex_unlock(&lock);
        uint64_t one = 1;
        (void)!write(wake_fd, &one, sizeof(one));
}

/* --garble: before the library speaks, send the keeper junk on our
 * LIVEUP_FD: short and random packets, a wrong size, a PRESERVE without
 * its fd, a READY with an fd. The keeper must drop each and go on. */
static void garble(void)
{
        const char *e = getenv("LIVEUP_FD");
        int fd = e ? atoi(e) : -1;
        uint8_t junk[64];
        uint32_t hdr[2];

        if (fd < 0)
                return;
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t)(i * 37 + 11);
        (void)!send(fd, junk, 3, 0);
        (void)!send(fd, junk, sizeof(junk), 0);
        hdr[0] = 100; /* size says 100, packet has 8 */
        hdr[1] = 9;   /* READY */
        (void)!send(fd, hdr, sizeof(hdr), 0);
        hdr[0] = 8;
        hdr[1] = 2; /* PRESERVE without attributes or fd */
        (void)!send(fd, hdr, sizeof(hdr), 0);
        /* READY carrying an fd it must not have. */
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        hdr[1] = 9;
        struct iovec iov = { .iov_base = hdr, .iov_len = sizeof(hdr) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        int one = STDERR_FILENO;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &one, sizeof(int));
        (void)!sendmsg(fd, &mh, 0);
}

/* ---- serving ------------------------------------------------------------ */

static int unix_listener(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        unlink(path);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
                die("listener", errno);
        return fd;
}

static void drop_conn(size_t i)
{
        close(conns[i]);
        conns[i] = conns[--n_conns];
}

static void serve_conn(size_t i)
{
        char buf[256], out[256];
        ssize_t n = read(conns[i], buf, sizeof(buf) - 1);
        int len = 0;

        if (n <= 0) {
                drop_conn(i);
                return;
        }
        buf[n] = 0;
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                if (strcmp(line, "get") == 0)
                        len = snprintf(out, sizeof(out), "%llu gen=%u pid=%d\n",
                                       (unsigned long long)++st->counter,
                                       liveup_generation(lu), (int)getpid());
                else if (strcmp(line, "check") == 0)
                        len = snprintf(out, sizeof(out), "%s\n", fdreport);
                else if (strcmp(line, "fds") == 0)
                        len = snprintf(out, sizeof(out), "%s\n", startfds);
                else if (strcmp(line, "pid") == 0)
                        len = snprintf(out, sizeof(out), "pid=%d gen=%u\n", (int)getpid(),
                                       liveup_generation(lu));
                else
                        len = snprintf(out, sizeof(out), "error unknown request\n");
                if (write(conns[i], out, (size_t)len) != len) {
                        drop_conn(i);
                        return;
                }
        }
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' }, { "mode", required_argument, NULL, 'm' },
                { "schema", required_argument, NULL, 'S' }, { "accept", required_argument, NULL, 'a' },
                { "fdkinds", no_argument, NULL, 'f' },      { "thread", no_argument, NULL, 't' },
                { "garble", no_argument, NULL, 'g' },
                {},
        };
        const char *path = NULL;
        unsigned schema = 1, amin = 0, amax = 0;
        bool accept_rule = false, fdkinds = false, threaded = false;
        int restored = 0, taken, c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        path = optarg;
                        break;
                case 'm':
                        mode = optarg;
                        break;
                case 'S':
                        schema = (unsigned)atoi(optarg);
                        break;
                case 'a':
                        if (sscanf(optarg, "%u:%u", &amin, &amax) != 2)
                                die("--accept MIN:MAX", EINVAL);
                        accept_rule = true;
                        break;
                case 'f':
                        fdkinds = true;
                        break;
                case 't':
                        threaded = true;
                        break;
                case 'g':
                        garble();
                        break;
                default:
                        return 2;
                }
        }
        if (!path)
                die("--socket PATH is required", EINVAL);
        /* The fds we were started with: 0-2, LIVEUP_FD, nothing else. */
        for (int fd = 0; fd < 1024; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        snprintf(startfds + strlen(startfds), sizeof(startfds) - strlen(startfds),
                                 "%c%d", strlen(startfds) == 3 ? ' ' : ',', fd);
        wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        r = liveup_open(&lu, 0);
        if (r < 0)
                die("liveup_open", r);
        static const struct liveup_participant_ops ops = {
                .prepare = prepare, .freeze = freeze, .cancel = cancel, .finish = finish,
        };
        r = liveup_participant_add(lu, "counter", &ops, NULL);
        if (r < 0)
                die("participant", r);
        if (accept_rule && (r = liveup_accept(lu, "state", amin, amax)) < 0)
                die("accept", r);

        taken = liveup_takeover(lu);
        if (taken == -EPROTO) {
                fprintf(stderr, "upd-svc: takeover refused (schema)\n");
                return 4;
        }
        if (taken < 0)
                die("takeover", taken);

        r = liveup_memfd_map(lu, "state", 4096, schema, (void **)&st, NULL, &restored);
        if (r < 0)
                die("memfd_map", r);
        if (taken == LIVEUP_TAKEN) {
                listen_fd = liveup_retrieve_fd(lu, "listener", NULL);
                for (uint32_t i = 0; i < st->n_conns && n_conns < MAX_CONNS; i++) {
                        char name[32];
                        snprintf(name, sizeof(name), "conn.%u", i);
                        int fd = liveup_retrieve_fd(lu, name, NULL);
                        if (fd >= 0)
                                conns[n_conns++] = fd;
                }
                st->n_conns = 0;
                if (fdkinds)
                        fdkinds_check();
                if (strcmp(mode, "crash") == 0)
                        abort();
                if (strcmp(mode, "exit") == 0)
                        exit(3);
                if (strcmp(mode, "hang") == 0)
                        for (;;)
                                pause();
        }
        if (listen_fd < 0)
                listen_fd = unix_listener(path);
        if ((r = liveup_preserve_fd(lu, "listener", listen_fd, 1)) < 0)
                die("preserve listener", r);
        if (fdkinds && taken != LIVEUP_TAKEN)
                fdkinds_create();
        if (threaded && (r = liveup_start_thread(lu, on_exit_thread, NULL)) < 0)
                die("start_thread", r);

        r = liveup_ready(lu);
        if (r < 0)
                die("ready", r);
        say("ready gen=%u pid=%d restored=%d counter=%llu", liveup_generation(lu), (int)getpid(),
            restored, (unsigned long long)st->counter);

        for (;;) {
                struct pollfd pfd[MAX_CONNS + 3];
                size_t n = 0, base;

                pthread_mutex_lock(&lock);
                if (finished) {
                        pthread_mutex_unlock(&lock);
                        break;
                }
                pfd[n++] = (struct pollfd){ .fd = wake_fd, .events = POLLIN };
                pfd[n++] = (struct pollfd){ .fd = threaded ? -1 : liveup_get_fd(lu),
                                            .events = POLLIN };
                pfd[n++] = (struct pollfd){ .fd = frozen ? -1 : listen_fd, .events = POLLIN };
                base = n;
                for (size_t i = 0; i < n_conns; i++)
                        pfd[n++] = (struct pollfd){ .fd = frozen ? -1 : conns[i], .events = POLLIN };
                pthread_mutex_unlock(&lock);

                if (poll(pfd, n, -1) < 0)
                        continue;
                if (pfd[0].revents) {
                        uint64_t v;
                        (void)!read(wake_fd, &v, sizeof(v));
                        continue;
                }
                if (pfd[1].revents) {
                        r = liveup_dispatch(lu);
                        if (r == LIVEUP_EXIT && strcmp(mode, "linger") == 0) {
                                say("lingering pid=%d", (int)getpid());
                                continue;
                        }
                        if (r == LIVEUP_EXIT)
                                break;
                        continue;
                }
                pthread_mutex_lock(&lock);
                if (!frozen) {
                        if (pfd[2].revents && n_conns < MAX_CONNS) {
                                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                                if (fd >= 0)
                                        conns[n_conns++] = fd;
                        }
                        for (size_t i = n - base; i-- > 0;)
                                if (pfd[base + i].revents && i < n_conns)
                                        serve_conn(i);
                }
                pthread_mutex_unlock(&lock);
        }
        liveup_close(lu);
        return 0;
}
