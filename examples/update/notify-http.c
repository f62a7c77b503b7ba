/* notify-http: the HTTP/1.1 keep-alive counter of counter-http, live-
 * updatable with nothing but systemd's protocols: it links no liveup code
 * and runs the same under systemd (a socket unit or FileDescriptorStore)
 * as under `liveup run`.
 *
 *   notify-http [--port PORT] [--addr ADDR] [--tag TEXT] [--fail crash|exit|hang]
 *
 * PORT defaults to $NOTIFY_HTTP_PORT, then 8080. Requests: GET / ,
 * GET /count, GET /kv/KEY, GET /set?K=V, as counter-http. Responses carry
 * "X-Served-By: notify-http/TAG gen=G pid=P".
 *
 * The protocols, all of them:
 *   - at start, LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID (fds from 3 on) may
 *     hold "listener" (the listening socket) and "state" (a memfd with
 *     the counter and the cache); what is missing is created and given
 *     to the manager's fd store: FDSTORE=1 + FDNAME=NAME on
 *     $NOTIFY_SOCKET, the fd attached with SCM_RIGHTS;
 *   - READY=1 (and STATUS=) once it serves;
 *   - on SIGTERM: STOPPING=1, stop accepting (the next version has the
 *     same listening socket), answer each connection's next request with
 *     "Connection: close", close the idle ones after DRAIN_IDLE_MS, and
 *     exit 0 when none is left.
 * Under `liveup update` the new version starts with the stored fds while
 * the old one serves; both accept on the one listening socket until the
 * new one says READY=1, then the old one gets SIGTERM and drains. No
 * connection is cut: each is closed only after a response that says so.
 *
 * --fail makes a version started with a stored state crash, exit or hang
 * before READY=1 (the tests' and the README's failed updates).
 *
 * Two versions share the state memfd, so it has a process-shared robust
 * mutex (a version killed while holding it leaves it recoverable).
 * Single-threaded epoll loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "1"
#endif

#define STATE_MAGIC 0x7074746879666e6full /* "onfyhttp" */
#define MAX_CONNS 1024
#define BUF_MAX 4096
#define KV_MAX 256
#define KEY_MAX 32
#define VAL_MAX 128
#define DRAIN_IDLE_MS 5000
#define TAG_LISTEN MAX_CONNS
#define TAG_SIGNAL (MAX_CONNS + 1)

struct state {
        uint64_t magic;
        pthread_mutex_t lock; /* process-shared, robust */
        uint32_t generation;  /* +1 per version started */
        uint64_t requests;
        struct {
                char key[KEY_MAX];
                char val[VAL_MAX];
        } kv[KV_MAX];
};

struct conn {
        int fd; /* -1 = free */
        bool closing; /* response said "Connection: close"; waiting for EOF */
        size_t in_len;
        char in[BUF_MAX];
};

static struct state *st;
static struct conn conns[MAX_CONNS];
static int epfd, listen_fd = -1;
static unsigned generation;
static bool draining;
static const char *tag = VERSION;

static void die(const char *what, int e)
{
        fprintf(stderr, "notify-http: %s: %s\n", what, strerror(e));
        exit(1);
}

/* sd_notify(), with fds: one datagram to $NOTIFY_SOCKET ("@..." is an
 * abstract name). Nothing to do without the variable. */
static void notify(const char *text, int fd)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = {};
        struct msghdr mh = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
        int s;

        if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, path, strlen(path));
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = 0;
        mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
        if (fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0 || sendmsg(s, &mh, MSG_NOSIGNAL) < 0)
                fprintf(stderr, "notify-http: cannot notify '%s': %s\n", text, strerror(errno));
        if (s >= 0)
                close(s);
}

static void lock(void)
{
        if (pthread_mutex_lock(&st->lock) == EOWNERDEAD)
                pthread_mutex_consistent(&st->lock); /* a version died holding it */
}

static void unlock(void)
{
        pthread_mutex_unlock(&st->lock);
}

static void watch(int fd, uint32_t t)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = t };

        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                die("epoll_ctl", errno);
}

static void conn_close(struct conn *c)
{
        close(c->fd);
        c->fd = -1;
        c->closing = false;
        c->in_len = 0;
}

static size_t n_open(void)
{
        size_t n = 0;

        for (size_t i = 0; i < MAX_CONNS; i++)
                n += conns[i].fd >= 0;
        return n;
}

/* Build the answer to one request (path, under the state lock). */
static int answer(const char *path, char *body, size_t size)
{
        lock();
        uint64_t n = ++st->requests;
        int status = 200;

        if (strcmp(path, "/") == 0)
                snprintf(body, size, "notify-http %s gen %u: %llu requests\n", tag, generation,
                         (unsigned long long)n);
        else if (strcmp(path, "/count") == 0)
                snprintf(body, size, "%llu\n", (unsigned long long)n);
        else if (strncmp(path, "/kv/", 4) == 0) {
                status = 404;
                snprintf(body, size, "no such key\n");
                for (size_t i = 0; i < KV_MAX; i++)
                        if (strcmp(st->kv[i].key, path + 4) == 0) {
                                status = 200;
                                snprintf(body, size, "%s\n", st->kv[i].val);
                        }
        } else if (strncmp(path, "/set?", 5) == 0 && strchr(path, '=')) {
                const char *k = path + 5, *eq = strchr(k, '=');
                size_t kl = (size_t)(eq - k), fr = KV_MAX;

                status = 400;
                snprintf(body, size, "bad key or value\n");
                if (kl > 0 && kl < KEY_MAX && strlen(eq + 1) < VAL_MAX) {
                        for (size_t i = 0; i < KV_MAX; i++) {
                                if (strncmp(st->kv[i].key, k, kl) == 0 && !st->kv[i].key[kl]) {
                                        fr = i;
                                        break;
                                }
                                if (fr == KV_MAX && !st->kv[i].key[0])
                                        fr = i;
                        }
                        status = 507;
                        snprintf(body, size, "cache full\n");
                        if (fr < KV_MAX) {
                                memcpy(st->kv[fr].key, k, kl);
                                st->kv[fr].key[kl] = 0;
                                snprintf(st->kv[fr].val, VAL_MAX, "%s", eq + 1);
                                status = 200;
                                snprintf(body, size, "%s=%s\n", st->kv[fr].key, st->kv[fr].val);
                        }
                }
        } else {
                status = 404;
                snprintf(body, size, "not found\n");
        }
        unlock();
        return status;
}

/* Answer every complete request buffered on c; false if c was closed. */
static bool conn_requests(struct conn *c)
{
        char *end;

        while ((end = memmem(c->in, c->in_len, "\r\n\r\n", 4))) {
                char method[8], path[256], version[16], body[256], out[512];
                size_t used = (size_t)(end + 4 - c->in);
                int status = 400, n;
                bool close_it;

                *end = 0;
                if (sscanf(c->in, "%7s %255s %15s", method, path, version) == 3 &&
                    strcmp(method, "GET") == 0)
                        status = answer(path, body, sizeof(body));
                else
                        snprintf(body, sizeof(body), "GET only, no body\n");
                close_it = draining || status == 400 ||
                           strcasestr(c->in, "\r\nConnection: close") ||
                           strcmp(version, "HTTP/1.1") != 0;
                n = snprintf(out, sizeof(out),
                             "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                             "X-Served-By: notify-http/%s gen=%u pid=%d\r\n%s\r\n%s",
                             status, status == 200 ? "OK" : "Error", strlen(body), tag,
                             generation, (int)getpid(), close_it ? "Connection: close\r\n" : "",
                             body);
                /* Responses are small: a fresh keep-alive socket's buffer
                 * takes them whole; a client that does not read is cut. */
                if (write(c->fd, out, (size_t)n) != n) {
                        conn_close(c);
                        return false;
                }
                memmove(c->in, c->in + used, c->in_len - used);
                c->in_len -= used;
                if (close_it) {
                        /* Lingering close: FIN now, close on the client's
                         * EOF, so an unread byte cannot turn it into a RST
                         * that destroys the response. */
                        (void)shutdown(c->fd, SHUT_WR);
                        c->closing = true;
                        c->in_len = 0;
                        return true;
                }
        }
        if (c->in_len == BUF_MAX) {
                conn_close(c); /* header block too large */
                return false;
        }
        return true;
}

static void conn_serve(struct conn *c)
{
        for (;;) {
                ssize_t n = read(c->fd, c->in + c->in_len, BUF_MAX - c->in_len);

                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        conn_close(c);
                        return;
                }
                if (c->closing) {
                        c->in_len = 0; /* discard until EOF */
                        continue;
                }
                c->in_len += (size_t)n;
                if (!conn_requests(c))
                        return;
        }
}

static void accept_all(void)
{
        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                size_t i;

                if (fd < 0)
                        return;
                for (i = 0; i < MAX_CONNS && conns[i].fd >= 0; i++)
                        ;
                if (i == MAX_CONNS) {
                        close(fd);
                        continue;
                }
                conns[i].fd = fd;
                watch(fd, (uint32_t)i);
        }
}

/* SIGTERM: stop accepting, answer each connection's next request with
 * "Connection: close". */
static void start_drain(void)
{
        draining = true;
        notify("STOPPING=1", -1);
        (void)epoll_ctl(epfd, EPOLL_CTL_DEL, listen_fd, NULL);
        close(listen_fd); /* the fd store and the next version keep it open */
        for (size_t i = 0; i < MAX_CONNS; i++)
                if (conns[i].fd >= 0 && !conns[i].closing && conns[i].in_len > 0)
                        (void)conn_requests(&conns[i]);
        printf("draining pid=%d connections=%zu\n", (int)getpid(), n_open());
}

/* The fds the manager passed: LISTEN_FDS from fd 3, named by
 * LISTEN_FDNAMES, for us only if LISTEN_PID is our pid. */
static void take_listen_fds(int *ret_listen, int *ret_state)
{
        const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
        char names[1024], *save = NULL, *name;
        int n;

        if (!pid || !nfds || atoi(pid) != (int)getpid())
                return;
        n = atoi(nfds);
        snprintf(names, sizeof(names), "%s", getenv("LISTEN_FDNAMES") ?: "");
        name = strtok_r(names, ":", &save);
        for (int i = 0; i < n; i++, name = strtok_r(NULL, ":", &save)) {
                int fd = 3 + i;
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                if (name && strcmp(name, "listener") == 0)
                        *ret_listen = fd;
                else if (name && strcmp(name, "state") == 0)
                        *ret_state = fd;
                else
                        close(fd);
        }
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
}

static int tcp_listen(const char *addr, unsigned port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        int fd, one = 1;

        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                die("--addr", EINVAL);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket", errno);
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0)
                die("cannot listen", errno);
        return fd;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "port", required_argument, NULL, 'p' },
                { "addr", required_argument, NULL, 'a' },
                { "tag", required_argument, NULL, 't' },
                { "fail", required_argument, NULL, 'f' },
                {},
        };
        const char *addr = "127.0.0.1", *fail = "";
        unsigned port = 8080;
        int state_fd = -1, sfd, c;
        bool restored;
        sigset_t mask;
        char text[128];

        if (getenv("NOTIFY_HTTP_PORT"))
                port = (unsigned)atoi(getenv("NOTIFY_HTTP_PORT"));
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (c == 'p')
                        port = (unsigned)atoi(optarg);
                else if (c == 'a')
                        addr = optarg;
                else if (c == 't')
                        tag = optarg;
                else if (c == 'f')
                        fail = optarg;
                else
                        return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < MAX_CONNS; i++)
                conns[i].fd = -1;

        take_listen_fds(&listen_fd, &state_fd);
        if (listen_fd < 0) {
                listen_fd = tcp_listen(addr, port);
                notify("FDSTORE=1\nFDNAME=listener", listen_fd);
        }
        /* An inherited listener may be blocking: we need it not to be. */
        (void)fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
        restored = state_fd >= 0;
        if (!restored) {
                state_fd = memfd_create("state", MFD_CLOEXEC);
                if (state_fd < 0 || ftruncate(state_fd, sizeof(struct state)) < 0)
                        die("memfd", errno);
        }
        st = mmap(NULL, sizeof(struct state), PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
        if (st == MAP_FAILED)
                die("mmap", errno);
        if (restored && st->magic != STATE_MAGIC)
                die("the stored state is not ours", EPROTO);
        if (restored && strcmp(fail, "crash") == 0)
                abort();
        if (restored && strcmp(fail, "exit") == 0)
                exit(3);
        if (restored && strcmp(fail, "hang") == 0)
                for (;;)
                        pause();
        if (!restored) {
                pthread_mutexattr_t a;
                pthread_mutexattr_init(&a);
                pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
                pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
                pthread_mutex_init(&st->lock, &a);
                st->magic = STATE_MAGIC;
                notify("FDSTORE=1\nFDNAME=state", state_fd);
        }
        lock();
        generation = ++st->generation;
        unlock();

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (sfd < 0 || epfd < 0)
                die("signalfd/epoll", errno);
        watch(sfd, TAG_SIGNAL);
        watch(listen_fd, TAG_LISTEN);

        snprintf(text, sizeof(text), "READY=1\nSTATUS=version %s, generation %u, serving", tag,
                 generation);
        notify(text, -1);
        printf("ready version=%s gen=%u pid=%d port=%u requests=%llu\n", tag, generation,
               (int)getpid(), port, (unsigned long long)st->requests);

        for (;;) {
                struct epoll_event ev[64];
                int n = epoll_wait(epfd, ev, 64, draining ? DRAIN_IDLE_MS : -1);

                if (n == 0 && draining) {
                        printf("drained pid=%d: closing %zu idle connections\n", (int)getpid(),
                               n_open());
                        return 0; /* idle that long: the client will reconnect */
                }
                for (int k = 0; k < n; k++) {
                        uint32_t t = ev[k].data.u32;

                        if (t == TAG_SIGNAL) {
                                struct signalfd_siginfo si;
                                while (read(sfd, &si, sizeof(si)) == sizeof(si))
                                        ;
                                if (!draining)
                                        start_drain();
                        } else if (t == TAG_LISTEN) {
                                if (!draining)
                                        accept_all();
                        } else if (t < MAX_CONNS && conns[t].fd >= 0)
                                conn_serve(&conns[t]);
                }
                if (draining && n_open() == 0) {
                        printf("drained pid=%d\n", (int)getpid());
                        return 0;
                }
        }
}
