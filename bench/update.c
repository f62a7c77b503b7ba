/* bench-update: what a live update costs the clients of a service under
 * load, next to a steady state and a naive restart measured in the same
 * run, and how long handing over a large state takes.
 *
 *   bench-update [--quick] [--json] [--updates N] [--liveup PATH]
 *                [--examples DIR] [--big PATH]
 *
 * Load: wrk -t2 -c64 --timeout 2s --latency on 127.0.0.1 against
 * examples/update/counter-http (feasibility study (f)'s method; wrk's
 * socket errors and non-2xx answers are the failed requests).
 * - steady: counter-http under `liveup run`, no update, 5 s (--quick 3 s);
 * - updates: the same service, N live updates (default 100, --quick 20)
 *   one after the other, 100 ms apart, alternating between the
 *   counter-http and counter-http-2 binaries; wrk runs from 1 s before
 *   the first to 1 s after the last. Per update: `liveup update` end to
 *   end (fork to exit), and the time the service did not accept: from
 *   the old version's freeze callback to the new version serving (both
 *   CLOCK_MONOTONIC stamps in the handed-over state, read from /stats);
 * - naive restart: counter-http run plainly; 10 times (--quick 3),
 *   SIGTERM, wait for the exit, start it again, wait until it accepts;
 *   failed requests per restart and the outage (SIGTERM to accepting).
 * Latency figures are wrk's over the whole phase (wrk leaves failed
 * requests out of them).
 *
 * Handover of a large state: tests/update/upd-big under `liveup run`, a 1 GiB
 * memfd (filled beforehand, untimed) alone, then with 1000 more fds
 * (socketpairs); 5 updates each (--quick 2). The new version reports the
 * time from the old version's prepare and from its freeze to having the
 * memfd mapped and every fd received. Floor, same run: the same fds
 * passed in-process over a SOCK_SEQPACKET pair (SCM_RIGHTS, 253 per
 * message) and the memfd mapped.
 *
 * Goals are printed beside the figures; the bench reports what it
 * measures and never fails on a goal. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#ifndef LIVEUP_PATH
#define LIVEUP_PATH "liveup"
#endif
#ifndef EXAMPLES_DIR
#define EXAMPLES_DIR "."
#endif
#ifndef BIG_PATH
#define BIG_PATH "upd-big"
#endif

#define BIG_BYTES (1ul << 30)
#define BIG_FDS 1000
#define GOAL_LATENCY_RATIO 2.0
#define GOAL_HANDOVER_US 1000.0

struct options {
        bool quick, json;
        unsigned updates, naive, big_reps;
        double steady_s;
        const char *liveup, *examples, *big;
};

struct wrk_result {
        bool valid;
        long requests, errors, non2xx;
        double p50_ms, p99_ms, max_ms, rps;
        char raw_errors[160];
};

static char runtime_dir[64];
static const char *liveup_path = LIVEUP_PATH;

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static unsigned free_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        unsigned port = 0;

        if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &l) == 0)
                port = ntohs(sa.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

/* Spawn argv; stdout to *ret_out (a pipe) if ret_out, stderr to
 * /dev/null if quiet. Returns the pid or -errno. */
static pid_t spawn(char *const argv[], int *ret_out, bool quiet)
{
        int p[2] = { -1, -1 };
        pid_t pid;

        if (ret_out && pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (ret_out)
                        dup2(p[1], STDOUT_FILENO);
                if (quiet) {
                        int n = open("/dev/null", O_WRONLY | O_CLOEXEC);
                        dup2(n, STDERR_FILENO);
                        if (!ret_out)
                                dup2(n, STDOUT_FILENO);
                }
                setenv("LIVEUP_RUNTIME_DIR", runtime_dir, 1);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (ret_out) {
                close(p[1]);
                *ret_out = p[0];
        }
        return pid;
}

static int wait_status(pid_t pid)
{
        int st;

        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Read everything from fd (closes it). */
static char *slurp(int fd)
{
        size_t n = 0, cap = 8192;
        char *buf = malloc(cap);
        ssize_t k;

        while (buf && (k = read(fd, buf + n, cap - n - 1)) > 0) {
                n += (size_t)k;
                if (cap - n < 2)
                        buf = realloc(buf, cap *= 2);
        }
        if (buf)
                buf[n] = 0;
        close(fd);
        return buf;
}

/* Read one line from fd within timeout_ms (byte by byte: the rest stays
 * in the pipe for the next call). */
static bool read_line(int fd, char *buf, size_t size, int timeout_ms)
{
        size_t n = 0;

        while (n + 1 < size) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, timeout_ms) <= 0 || read(fd, &buf[n], 1) != 1)
                        return false;
                if (buf[n] == '\n')
                        break;
                n++;
        }
        buf[n] = 0;
        return true;
}

/* One HTTP request (Connection: close); the body in buf. */
static bool http_get(unsigned port, const char *path, char *buf, size_t size)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        char req[256];
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        size_t n = 0;
        ssize_t k;
        char *body;

        if (fd < 0)
                return false;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return false;
        }
        k = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
                     path);
        if (write(fd, req, (size_t)k) != k) {
                close(fd);
                return false;
        }
        while (n + 1 < size && (k = read(fd, buf + n, size - n - 1)) > 0)
                n += (size_t)k;
        buf[n] = 0;
        close(fd);
        body = strstr(buf, "\r\n\r\n");
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body)
                return false;
        memmove(buf, body + 4, strlen(body + 4) + 1);
        return true;
}

/* Poll (1 ms) until the service on port answers; false after 10 s. */
static bool wait_serving(unsigned port)
{
        char buf[512];

        for (int i = 0; i < 10000; i++) {
                if (http_get(port, "/count", buf, sizeof(buf)))
                        return true;
                sleep_ms(1);
        }
        return false;
}

static uint64_t json_u64(const char *doc, const char *key)
{
        char pat[64];
        const char *p;

        snprintf(pat, sizeof(pat), "\"%s\":", key);
        p = strstr(doc, pat);
        return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* ---- wrk ---------------------------------------------------------------- */

static pid_t wrk_start(unsigned port, int *ret_out)
{
        char url[64];
        char *argv[] = { "wrk", "-t2", "-c64", "-d600s", "--timeout", "2s",
                         "--latency", url, NULL };

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
        return spawn(argv, ret_out, true);
}

static double wrk_ms(const char *s)
{
        char *end;
        double v = strtod(s, &end);

        if (strncmp(end, "us", 2) == 0)
                return v / 1000;
        if (strncmp(end, "ms", 2) == 0)
                return v;
        if (*end == 's')
                return v * 1000;
        if (*end == 'm')
                return v * 60000;
        return NAN;
}

/* Stop wrk (SIGINT: it prints its summary) and parse what it printed. */
static struct wrk_result wrk_stop(pid_t pid, int out)
{
        struct wrk_result w = { .p50_ms = NAN, .p99_ms = NAN, .max_ms = NAN };
        char *text, *p;
        long c, r, wr, t;

        kill(pid, SIGINT);
        text = slurp(out);
        (void)wait_status(pid);
        if (!text)
                return w;
        /* Latency  AVG  STDEV  MAX  +/-: the third value is the max. */
        if ((p = strstr(text, "Latency "))) {
                char a[32], b[32], m[32];
                if (sscanf(p, "Latency %31s %31s %31s", a, b, m) == 3)
                        w.max_ms = wrk_ms(m);
        }
        if ((p = strstr(text, " 50% ")))
                w.p50_ms = wrk_ms(p + 5 + strspn(p + 5, " "));
        if ((p = strstr(text, " 99% ")))
                w.p99_ms = wrk_ms(p + 5 + strspn(p + 5, " "));
        if ((p = strstr(text, " requests in ")))
                while (p > text && p[-1] >= '0' && p[-1] <= '9')
                        p--;
        if (p)
                w.requests = atol(p);
        if ((p = strstr(text, "Requests/sec:")))
                w.rps = atof(p + 13);
        if ((p = strstr(text, "Socket errors: ")) &&
            sscanf(p, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &c, &r, &wr,
                   &t) == 4) {
                w.errors = c + r + wr + t;
                snprintf(w.raw_errors, sizeof(w.raw_errors),
                         "connect %ld read %ld write %ld timeout %ld", c, r, wr, t);
        }
        if ((p = strstr(text, "Non-2xx or 3xx responses: ")))
                w.non2xx = atol(p + 26);
        w.valid = w.requests > 0;
        free(text);
        return w;
}

/* ---- a service under the keeper ----------------------------------------- */

struct service {
        pid_t keeper;
        int out; /* the keeper's stdout: the service's lines */
        char name[32];
};

static bool service_start(struct service *s, const char *name, char *const argv[])
{
        char *args[32] = { (char *)liveup_path, "run", "--name", (char *)name, "--" };
        size_t n = 5;
        char line[256];

        for (size_t i = 0; argv[i] && n < 31; i++)
                args[n++] = argv[i];
        args[n] = NULL;
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->keeper = spawn(args, &s->out, true);
        if (s->keeper < 0)
                return false;
        while (read_line(s->out, line, sizeof(line), 30000))
                if (strncmp(line, "ready ", 6) == 0)
                        return true;
        return false;
}

static void service_stop(struct service *s)
{
        if (s->keeper > 0) {
                kill(s->keeper, SIGTERM);
                (void)wait_status(s->keeper);
                close(s->out);
        }
        s->keeper = 0;
}

/* `liveup update NAME [-- argv]`: its exit status; wall time in *ret_us. */
static int update(const char *liveup, const char *name, char *const argv[], double *ret_us)
{
        char *args[32] = { (char *)liveup, "update", (char *)name };
        size_t n = 3;
        uint64_t t0 = now_ns();
        pid_t pid;
        int st;

        if (argv) {
                args[n++] = "--";
                for (size_t i = 0; argv[i] && n < 31; i++)
                        args[n++] = argv[i];
        }
        args[n] = NULL;
        pid = spawn(args, NULL, true);
        if (pid < 0)
                return -1;
        st = wait_status(pid);
        *ret_us = (double)(now_ns() - t0) / 1e3;
        return st;
}

/* ---- the phases --------------------------------------------------------- */

struct load_result {
        struct wrk_result steady, upd, naive;
        struct stats upd_wall, upd_pause, naive_outage;
        double pause_max_us;
        unsigned updates_ok, updates, naive_n;
        bool counter_ok;
        char error[160];
};

static void phase_load(const struct options *o, struct load_result *res)
{
        char ch[512], ch2[512], portbuf[16], buf[1024];
        struct series wall, pause_, outage;
        struct service svc = {};
        unsigned port = free_port();
        int out;
        pid_t w;

        snprintf(ch, sizeof(ch), "%s/counter-http", o->examples);
        snprintf(ch2, sizeof(ch2), "%s/counter-http-2", o->examples);
        snprintf(portbuf, sizeof(portbuf), "%u", port);
        char *argv1[] = { ch, "--port", portbuf, NULL };
        char *argv2[] = { ch2, "--port", portbuf, NULL };

        series_init(&wall, o->updates);
        series_init(&pause_, o->updates);
        series_init(&outage, o->naive);
        res->updates = o->updates;
        if (!service_start(&svc, "bench-update", argv1) || !wait_serving(port)) {
                snprintf(res->error, sizeof(res->error),
                         "counter-http did not start under liveup run");
                service_stop(&svc);
                return;
        }

        /* Steady state. */
        w = wrk_start(port, &out);
        sleep_ms((unsigned)(o->steady_s * 1000));
        res->steady = wrk_stop(w, out);

        /* Updates. */
        uint64_t c0 = 0;
        if (http_get(port, "/stats", buf, sizeof(buf)))
                c0 = json_u64(buf, "requests");
        w = wrk_start(port, &out);
        sleep_ms(1000);
        for (unsigned i = 0; i < o->updates; i++) {
                double us;
                int st = update(o->liveup, svc.name, i % 2 ? argv1 : argv2, &us);
                if (st == 0) {
                        res->updates_ok++;
                        wall.v[wall.n++] = us;
                        if (http_get(port, "/stats", buf, sizeof(buf))) {
                                uint64_t f = json_u64(buf, "frozen_ns"),
                                         s = json_u64(buf, "serving_ns");
                                if (s > f) {
                                        double p = (double)(s - f) / 1e3;
                                        pause_.v[pause_.n++] = p;
                                        if (p > res->pause_max_us)
                                                res->pause_max_us = p;
                                }
                        }
                }
                sleep_ms(100);
        }
        sleep_ms(1000);
        res->upd = wrk_stop(w, out);
        if (http_get(port, "/stats", buf, sizeof(buf))) {
                uint64_t c1 = json_u64(buf, "requests");
                /* The counter went on: at least the requests wrk completed. */
                res->counter_ok = c1 >= c0 + (uint64_t)res->upd.requests;
        }
        service_stop(&svc);
        res->upd_wall = stats_of(&wall, 0);
        res->upd_pause = stats_of(&pause_, 0);

        /* Naive restart: the same program, plainly. */
        port = free_port();
        snprintf(portbuf, sizeof(portbuf), "%u", port);
        pid_t srv = spawn(argv1, NULL, true);
        if (srv < 0 || !wait_serving(port)) {
                snprintf(res->error, sizeof(res->error), "counter-http did not start plainly");
                goto out;
        }
        w = wrk_start(port, &out);
        sleep_ms(1000);
        for (unsigned i = 0; i < o->naive; i++) {
                uint64_t t0 = now_ns();
                kill(srv, SIGTERM);
                (void)wait_status(srv);
                srv = spawn(argv1, NULL, true);
                if (srv < 0 || !wait_serving(port))
                        break;
                outage.v[outage.n++] = (double)(now_ns() - t0) / 1e3;
                res->naive_n++;
                sleep_ms(500);
        }
        sleep_ms(500);
        res->naive = wrk_stop(w, out);
        res->naive_outage = stats_of(&outage, 0);
out:
        if (srv > 0) {
                kill(srv, SIGTERM);
                (void)wait_status(srv);
        }
        series_done(&wall);
        series_done(&pause_);
        series_done(&outage);
}

struct big_result {
        unsigned fds, reps, ok;
        struct stats prepare, freeze, floor;
        bool check_ok;
        char error[160];
};

/* The floor: the same items passed in-process over SCM_RIGHTS and the
 * memfd mapped. */
static double floor_us(unsigned n_fds)
{
        int *fds = calloc(n_fds + 1, sizeof(int)), *got = calloc(n_fds + 1, sizeof(int));
        int sp[2], mfd;
        unsigned n = n_fds + 1, sent = 0, recvd = 0;
        double us = NAN;

        if (!fds || !got || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                goto out;
        mfd = memfd_create("floor", MFD_CLOEXEC);
        if (mfd < 0 || ftruncate(mfd, (off_t)BIG_BYTES) < 0)
                goto out;
        fds[0] = mfd;
        for (unsigned i = 1; i < n; i += 2)
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fds[i]) < 0)
                        goto out;
        uint64_t t0 = now_ns();
        while (sent < n || recvd < n) {
                union {
                        char buf[CMSG_SPACE(sizeof(int) * 253)];
                        struct cmsghdr align;
                } cm;
                char byte = 0;
                struct iovec iov = { &byte, 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf };
                unsigned k = n - sent < 253 ? n - sent : 253;
                struct cmsghdr *c;

                mh.msg_controllen = CMSG_SPACE(sizeof(int) * k);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * k);
                memcpy(CMSG_DATA(c), &fds[sent], sizeof(int) * k);
                if (sendmsg(sp[0], &mh, 0) < 0)
                        goto out;
                sent += k;
                mh.msg_controllen = sizeof(cm.buf);
                if (recvmsg(sp[1], &mh, MSG_CMSG_CLOEXEC) < 0)
                        goto out;
                c = CMSG_FIRSTHDR(&mh);
                memcpy(&got[recvd], CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0));
                recvd += (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        }
        void *m = mmap(NULL, BIG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, got[0], 0);
        us = (double)(now_ns() - t0) / 1e3;
        if (m != MAP_FAILED)
                munmap(m, BIG_BYTES);
        for (unsigned i = 0; i < n; i++) {
                close(fds[i]);
                close(got[i]);
        }
        close(sp[0]);
        close(sp[1]);
out:
        free(fds);
        free(got);
        return us;
}

static void phase_big(const struct options *o, unsigned n_fds, struct big_result *res)
{
        char bytes[32], fdsbuf[16], line[256], name[32];
        char *argv[] = { (char *)o->big, "--bytes", bytes, "--fds", fdsbuf, NULL };
        struct series prep, frz, flo;
        struct service svc = {};

        snprintf(bytes, sizeof(bytes), "%lu", BIG_BYTES);
        snprintf(fdsbuf, sizeof(fdsbuf), "%u", n_fds);
        snprintf(name, sizeof(name), "bench-big-%u", n_fds);
        res->fds = n_fds;
        res->reps = o->big_reps;
        res->check_ok = true;
        series_init(&prep, o->big_reps);
        series_init(&frz, o->big_reps);
        series_init(&flo, o->big_reps);
        for (unsigned i = 0; i < o->big_reps; i++)
                flo.v[flo.n++] = floor_us(n_fds);
        res->floor = stats_of(&flo, 0);
        if (!service_start(&svc, name, argv)) {
                snprintf(res->error, sizeof(res->error), "upd-big did not start");
                goto out;
        }
        for (unsigned i = 0; i < o->big_reps; i++) {
                double us, p, f;
                char check[8] = "";
                if (update(o->liveup, name, NULL, &us) != 0)
                        continue;
                while (read_line(svc.out, line, sizeof(line), 30000))
                        if (strncmp(line, "ready ", 6) == 0)
                                break;
                const char *a = strstr(line, "prepare_us="), *b = strstr(line, "freeze_us="),
                           *c = strstr(line, "check=");
                if (!a || !b || !c)
                        continue;
                p = atof(a + 11);
                f = atof(b + 10);
                sscanf(c + 6, "%7s", check);
                if (strcmp(check, "ok") != 0)
                        res->check_ok = false;
                prep.v[prep.n++] = p;
                frz.v[frz.n++] = f;
                res->ok++;
                sleep_ms(100);
        }
        res->prepare = stats_of(&prep, 0);
        res->freeze = stats_of(&frz, 0);
out:
        service_stop(&svc);
        series_done(&prep);
        series_done(&frz);
        series_done(&flo);
}

/* ---- output ------------------------------------------------------------- */

static void fmt_ms(char *buf, size_t size, double v)
{
        if (isnan(v))
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.2f ms", v);
}

static long failed(const struct wrk_result *w)
{
        return w->errors + w->non2xx;
}

static void print_table(const struct options *o, const struct load_result *l,
                        const struct big_result *big, size_t n_big)
{
        char a[32], b[32], c[32], s[64];
        double ratio = l->upd.p99_ms / l->steady.p99_ms;

        printf("Load: wrk -t2 -c64 --timeout 2s on 127.0.0.1, examples/update/counter-http\n\n");
        printf("| phase | requests | req/s | failed requests | p50 | p99 | max |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|\n");
        const struct {
                const char *name;
                const struct wrk_result *w;
        } rows[] = { { "steady (no update)", &l->steady },
                     { "live updates", &l->upd },
                     { "naive restarts", &l->naive } };
        for (size_t i = 0; i < 3; i++) {
                const struct wrk_result *w = rows[i].w;
                fmt_ms(a, sizeof(a), w->p50_ms);
                fmt_ms(b, sizeof(b), w->p99_ms);
                fmt_ms(c, sizeof(c), w->max_ms);
                printf("| %s | %ld | %.0f | %ld%s%s%s | %s | %s | %s |\n", rows[i].name,
                       w->requests, w->rps, failed(w), w->raw_errors[0] ? " (" : "",
                       w->raw_errors, w->raw_errors[0] ? ")" : "", a, b, c);
        }
        printf("\nLive updates: %u of %u completed; counter continued: %s\n", l->updates_ok,
               l->updates, l->counter_ok ? "yes" : "NO");
        fmt_stat(s, sizeof(s), &l->upd_wall);
        printf("  `liveup update` end to end (median / p90): %s µs\n", s);
        fmt_stat(s, sizeof(s), &l->upd_pause);
        printf("  not accepting, freeze to new version serving (median / p90): %s µs, "
               "max %.0f µs\n",
               s, l->pause_max_us);
        fmt_stat(s, sizeof(s), &l->naive_outage);
        printf("Naive restarts: %u; failed requests per restart: %.1f; outage, SIGTERM to "
               "accepting (median / p90): %s µs\n",
               l->naive_n, l->naive_n ? (double)failed(&l->naive) / l->naive_n : 0.0, s);
        if (l->error[0])
                printf("  error: %s\n", l->error);

        printf("\nHandover of a 1 GiB memfd (filled beforehand) and more fds, "
               "µs (median / p90):\n\n");
        printf("| fds besides the memfd | updates | prepare -> all received | freeze -> all "
               "received | floor: SCM_RIGHTS + mmap in-process | content |\n");
        printf("|---:|---:|---:|---:|---:|---|\n");
        for (size_t i = 0; i < n_big; i++) {
                char p[64], f[64], fl[64];
                fmt_stat(p, sizeof(p), &big[i].prepare);
                fmt_stat(f, sizeof(f), &big[i].freeze);
                fmt_stat(fl, sizeof(fl), &big[i].floor);
                printf("| %u | %u/%u | %s | %s | %s | %s |\n", big[i].fds, big[i].ok, big[i].reps,
                       p, f, fl,
                       big[i].error[0] ? big[i].error
                       : big[i].check_ok ? "intact"
                                         : "CHANGED");
        }

        printf("\nGoals (reported, not enforced):\n");
        printf("  0 failed requests over %u updates: %ld failed (%s)\n", l->updates,
               failed(&l->upd),
               failed(&l->upd) == 0 && l->updates_ok == l->updates ? "met" : "NOT met");
        printf("  1 GiB handed over in under 1 ms (freeze -> mapped, memfd alone): %.0f µs (%s)\n",
               n_big ? big[0].freeze.median : NAN,
               n_big && big[0].freeze.valid && big[0].freeze.median < GOAL_HANDOVER_US
                       ? "met"
                       : "NOT met");
        printf("  p99 during updates within 2x steady: %.2f / %.2f ms = %.2fx (%s)\n",
               l->upd.p99_ms, l->steady.p99_ms, ratio,
               ratio <= GOAL_LATENCY_RATIO ? "met" : "NOT met");
        (void)o;
}

static void json_ms(const char *name, double v)
{
        if (isnan(v))
                printf(",\"%s\":null", name);
        else
                printf(",\"%s\":%.3f", name, v);
}

static void json_wrk(const char *name, const struct wrk_result *w, bool comma)
{
        printf("\"%s\":{\"requests\":%ld,\"rps\":%.0f,\"failed\":%ld", name, w->requests,
               w->rps, failed(w));
        json_ms("p50_ms", w->p50_ms);
        json_ms("p99_ms", w->p99_ms);
        json_ms("max_ms", w->max_ms);
        printf("}%s", comma ? "," : "");
}

static void print_json(const struct load_result *l, const struct big_result *big, size_t n_big)
{
        printf("{\"load\":{");
        json_wrk("steady", &l->steady, true);
        json_wrk("live_updates", &l->upd, true);
        json_wrk("naive", &l->naive, true);
        printf("\"updates\":%u,\"updates_ok\":%u,\"naive_restarts\":%u,\"counter_ok\":%s,",
               l->updates, l->updates_ok, l->naive_n, l->counter_ok ? "true" : "false");
        json_stat("update_wall", &l->upd_wall, true);
        json_stat("not_accepting", &l->upd_pause, true);
        json_stat("naive_outage", &l->naive_outage, true);
        printf("\"not_accepting_max_us\":%.1f,\"error\":", l->pause_max_us);
        json_error(l->error);
        printf("},\"handover\":[");
        for (size_t i = 0; i < n_big; i++) {
                printf("%s{\"bytes\":%lu,\"fds\":%u,\"ok\":%u,\"content_ok\":%s,", i ? "," : "",
                       BIG_BYTES, big[i].fds, big[i].ok, big[i].check_ok ? "true" : "false");
                json_stat("prepare_to_received", &big[i].prepare, true);
                json_stat("freeze_to_received", &big[i].freeze, true);
                json_stat("floor", &big[i].floor, true);
                printf("\"error\":");
                json_error(big[i].error);
                printf("}");
        }
        printf("]}\n");
}

static void usage(FILE *f)
{
        fprintf(f, "usage: bench-update [--quick] [--json] [--updates N] [--liveup PATH]\n"
                   "                    [--examples DIR] [--big PATH]\n"
                   "  --quick      20 updates, 3 naive restarts, 2 handovers per size, 3 s steady\n"
                   "  --json       one JSON document on stdout instead of the tables\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "quick", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { "updates", required_argument, NULL, 'n' },
                { "liveup", required_argument, NULL, 'l' },
                { "examples", required_argument, NULL, 'e' },
                { "big", required_argument, NULL, 'b' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct options o = { .updates = 100, .naive = 10, .big_reps = 5, .steady_s = 5,
                             .liveup = LIVEUP_PATH, .examples = EXAMPLES_DIR, .big = BIG_PATH };
        struct load_result load = {};
        struct big_result big[2] = {};
        bool updates_set = false;
        struct rlimit rl;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'q':
                        o.quick = true;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'n':
                        o.updates = (unsigned)atoi(optarg);
                        updates_set = true;
                        break;
                case 'l':
                        o.liveup = optarg;
                        break;
                case 'e':
                        o.examples = optarg;
                        break;
                case 'b':
                        o.big = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (o.quick) {
                if (!updates_set)
                        o.updates = 20;
                o.naive = 3;
                o.big_reps = 2;
                o.steady_s = 3;
        }
        if (access("/usr/bin/wrk", X_OK) != 0 && system("command -v wrk > /dev/null") != 0) {
                fprintf(stderr, "bench-update: wrk is not installed (apt-get install wrk)\n");
                return 1;
        }
        /* The old version of update-big holds 2 x 1000 fds. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        signal(SIGPIPE, SIG_IGN);
        liveup_path = o.liveup;
        snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/liveup-bench-update.%d", (int)getpid());
        if (mkdir(runtime_dir, 0700) < 0) {
                perror("bench-update: mkdir");
                return 1;
        }

        phase_load(&o, &load);
        phase_big(&o, 0, &big[0]);
        phase_big(&o, BIG_FDS, &big[1]);

        if (o.json)
                print_json(&load, big, 2);
        else
                print_table(&o, &load, big, 2);
        (void)rmdir(runtime_dir);
        return 0;
}
