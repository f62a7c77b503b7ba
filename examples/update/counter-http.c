/* counter-http: a small HTTP/1.1 keep-alive server that live-updates with
 * libliveup, without dropping a connection or losing a request.
 *
 *   counter-http [--port PORT] [--addr ADDR] [--tag TEXT] [--schema N]
 *                [--fail crash|exit|hang]
 *
 * PORT defaults to $COUNTER_HTTP_PORT, then 8080; ADDR to 127.0.0.1. It
 * answers:
 *   GET /            "counter-http 1 gen 2: 41 requests"
 *   GET /count       the request counter (this request included)
 *   GET /kv/KEY      a cache entry (404 if none); PUT /kv/KEY stores the body
 *   GET /set?K=V     stores K=V (for clients without PUT)
 *   GET /stats       JSON: version, generation, pid, counters, last handover
 * Every response says who served it: "X-Served-By: counter-http/1 gen=2
 * pid=812" (the version is VERSION at build time, or --tag).
 *
 * All the state lives in one memfd mapped with liveup_memfd_map(), named
 * "state": a header (magic, schema, size), the request counter, the
 * key/value cache and one slot per connection holding its partially read
 * request and its unsent response. A new version maps the same pages (no
 * copy), checks the header and goes on. Only the slot -> fd table is
 * private to a process.
 *
 * Live update (the participant "http"):
 *   freeze   take the listener and every connection out of epoll (the
 *            listening socket stays open: new connections wait in the
 *            backlog, bytes wait in the socket buffers) and preserve each
 *            connection's fd as "c<slot>"; its buffered bytes are already
 *            in the slot, so the new version resumes exactly where we
 *            stopped: no request is lost or answered twice;
 *   cancel   put the fds back into epoll and serve on. If a newer version
 *            served meanwhile (an update held in `updated`, then
 *            cancelled), resynchronise with the slot table it left:
 *            connections it closed are closed here, the ones it accepted
 *            are gone with it;
 *   finish   nothing: liveup_dispatch() returns LIVEUP_EXIT and we exit
 *            (the connections live on in the new version).
 * The listening socket is preserved as "listener" at start-up.
 *
 * --schema N pretends the state layout is version N: the program accepts
 * only N (`liveup update` to a different N is refused before the old
 * version is disturbed). --fail makes a new version (one that took over)
 * crash, exit or hang before it is ready, to show the automatic cancel.
 *
 * Without a keeper (run plainly) it is the same server, never updated.
 * Single-threaded: one epoll loop serves the listener, the connections
 * and the keeper's socket. */
#include <liveup.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "1"
#endif

#define STATE_MAGIC 0x7074746874636c75ull /* "ulcthttp" */
#define STATE_SCHEMA 1
#define MAX_CONNS 512
#define IN_MAX 4096
#define OUT_MAX 4096
#define KV_MAX 256
#define KEY_MAX 32
#define VAL_MAX 128
#define TAG_LISTEN MAX_CONNS
#define TAG_LIVEUP (MAX_CONNS + 1)

/* A connection, in the shared state: id 0 means the slot is free. */
struct conn_slot {
        uint64_t id;
        uint32_t in_len;
        uint32_t out_len, out_off;
        uint32_t close_after; /* close once the response is sent */
        char in[IN_MAX];
        char out[OUT_MAX];
};

struct kv_entry {
        char key[KEY_MAX]; /* "" = free */
        char val[VAL_MAX];
};

/* The memfd "state". The layout is schema STATE_SCHEMA: change it, bump
 * the schema. */
struct state {
        uint64_t magic;
        uint32_t schema;
        uint32_t generation; /* of the version that serves from it */
        uint64_t size;
        uint64_t requests;
        uint64_t next_conn_id;
        uint64_t updates;
        uint64_t frozen_ns, serving_ns; /* last handover, CLOCK_MONOTONIC */
        struct kv_entry kv[KV_MAX];
        struct conn_slot conns[MAX_CONNS];
};

static struct liveup *lu;
static struct state *st;
static int conn_fd[MAX_CONNS]; /* private: slot -> fd, -1 = none */
static uint64_t conn_id[MAX_CONNS]; /* private: the slot's id when we took it */
static bool conn_preserved[MAX_CONNS];
static int epfd = -1, listen_fd = -1;
static bool frozen;
static const char *tag = VERSION;

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "counter-http: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static void watch(int fd, uint32_t tag_, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.u32 = tag_ };

        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
            (errno != EEXIST || epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0))
                die("epoll_ctl", errno);
}

static void unwatch(int fd)
{
        (void)epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- connections -------------------------------------------------------- */

static void conn_close(size_t i)
{
        if (conn_fd[i] >= 0) {
                /* shutdown, not just close: during an update another
                 * process may hold the same socket. */
                (void)shutdown(conn_fd[i], SHUT_RDWR);
                close(conn_fd[i]);
        }
        conn_fd[i] = -1;
        st->conns[i].id = 0;
        st->conns[i].in_len = st->conns[i].out_len = st->conns[i].out_off = 0;
        st->conns[i].close_after = 0;
}

static void conn_events(size_t i)
{
        struct conn_slot *c = &st->conns[i];

        watch(conn_fd[i], (uint32_t)i, c->out_len > c->out_off ? EPOLLOUT : EPOLLIN);
}

static void respond(struct conn_slot *c, int status, const char *ctype, const char *fmt, ...)
{
        static const char *const reasons[] = { [200] = "OK",         [400] = "Bad Request",
                                               [404] = "Not Found",  [405] = "Method Not Allowed",
                                               [413] = "Payload Too Large",
                                               [431] = "Request Header Fields Too Large",
                                               [507] = "Insufficient Storage" };
        char body[2048];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(body, sizeof(body), fmt, ap);
        va_end(ap);
        if (n < 0 || n >= (int)sizeof(body))
                n = 0;
        n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                     "X-Served-By: counter-http/%s gen=%u pid=%d\r\n%s\r\n%.*s",
                     status, reasons[status] ?: "", ctype, n, tag, liveup_generation(lu),
                     (int)getpid(), c->close_after ? "Connection: close\r\n" : "", n, body);
        c->out_len = n < (int)sizeof(c->out) ? (uint32_t)n : (uint32_t)sizeof(c->out);
        c->out_off = 0;
}

static struct kv_entry *kv_find(const char *key, bool create)
{
        struct kv_entry *free_e = NULL;

        for (size_t i = 0; i < KV_MAX; i++) {
                if (strcmp(st->kv[i].key, key) == 0)
                        return &st->kv[i];
                if (!free_e && !st->kv[i].key[0])
                        free_e = &st->kv[i];
        }
        if (!create || !free_e)
                return NULL;
        snprintf(free_e->key, sizeof(free_e->key), "%s", key);
        return free_e;
}

static bool valid_key(const char *k, size_t n)
{
        if (n == 0 || n >= KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)k[i]) && k[i] != '-' && k[i] != '_' && k[i] != '.')
                        return false;
        return true;
}

static void kv_store(struct conn_slot *c, const char *key, size_t klen, const char *val,
                     size_t vlen)
{
        char k[KEY_MAX];
        struct kv_entry *e;

        if (!valid_key(key, klen) || vlen >= VAL_MAX) {
                respond(c, 400, "text/plain", "bad key or value too long\n");
                return;
        }
        memcpy(k, key, klen);
        k[klen] = 0;
        e = kv_find(k, true);
        if (!e) {
                respond(c, 507, "text/plain", "cache full\n");
                return;
        }
        memcpy(e->val, val, vlen);
        e->val[vlen] = 0;
        respond(c, 200, "text/plain", "%s=%s\n", e->key, e->val);
}

/* Does the header block [h, end) have a header `name` whose value
 * contains `value` (both case-insensitive)? */
static bool header_has(const char *h, const char *end, const char *name, const char *value)
{
        size_t nl = strlen(name);

        for (const char *p = h; p < end;) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        eol = end;
                if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
                        char v[128];
                        size_t vl = (size_t)(eol - p - nl - 1);
                        if (vl >= sizeof(v))
                                vl = sizeof(v) - 1;
                        memcpy(v, p + nl + 1, vl);
                        v[vl] = 0;
                        if (!value || strcasestr(v, value))
                                return true;
                }
                p = eol + 2;
        }
        return false;
}

static long content_length(const char *h, const char *end)
{
        static const char name[] = "content-length:";

        for (const char *p = h; p < end;) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        eol = end;
                if ((size_t)(eol - p) > sizeof(name) - 1 &&
                    strncasecmp(p, name, sizeof(name) - 1) == 0)
                        return strtol(p + sizeof(name) - 1, NULL, 10);
                p = eol + 2;
        }
        return 0;
}

/* Handle the complete request at the start of c->in, if there is one:
 * build its response in c->out and drop its bytes. Returns true if it
 * consumed a request. */
static bool handle_request(struct conn_slot *c)
{
        char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        char method[8], path[256], version[16];
        const char *body, *line_end;
        size_t used;
        long clen;

        if (!hend) {
                if (c->in_len == IN_MAX) {
                        c->close_after = 1;
                        respond(c, 431, "text/plain", "request too large\n");
                        c->in_len = 0;
                        return true;
                }
                return false;
        }
        clen = content_length(c->in, hend);
        if (clen < 0 || clen > VAL_MAX) {
                c->close_after = 1;
                respond(c, 413, "text/plain", "body too large\n");
                c->in_len = 0;
                return true;
        }
        used = (size_t)(hend + 4 - c->in) + (size_t)clen;
        if (used > c->in_len)
                return false; /* the body is still on its way */
        body = hend + 4;
        line_end = memmem(c->in, (size_t)(hend + 2 - c->in), "\r\n", 2);

        st->requests++;
        if (sscanf(c->in, "%7s %255s %15s", method, path, version) != 3) {
                c->close_after = 1;
                respond(c, 400, "text/plain", "bad request line\n");
        } else {
                bool keep = strcmp(version, "HTTP/1.1") == 0
                                    ? !header_has(line_end, hend, "connection", "close")
                                    : header_has(line_end, hend, "connection", "keep-alive");
                c->close_after = !keep;
                if (strcmp(method, "GET") == 0 && strcmp(path, "/") == 0)
                        respond(c, 200, "text/plain", "counter-http %s gen %u: %llu requests\n",
                                tag, liveup_generation(lu), (unsigned long long)st->requests);
                else if (strcmp(method, "GET") == 0 && strcmp(path, "/count") == 0)
                        respond(c, 200, "text/plain", "%llu\n", (unsigned long long)st->requests);
                else if (strcmp(method, "GET") == 0 && strncmp(path, "/kv/", 4) == 0) {
                        struct kv_entry *e = kv_find(path + 4, false);
                        if (e)
                                respond(c, 200, "text/plain", "%s\n", e->val);
                        else
                                respond(c, 404, "text/plain", "no such key\n");
                } else if (strcmp(method, "PUT") == 0 && strncmp(path, "/kv/", 4) == 0)
                        kv_store(c, path + 4, strlen(path + 4), body, (size_t)clen);
                else if (strcmp(method, "GET") == 0 && strncmp(path, "/set?", 5) == 0) {
                        const char *k = path + 5, *eq = strchr(k, '=');
                        if (eq)
                                kv_store(c, k, (size_t)(eq - k), eq + 1, strlen(eq + 1));
                        else
                                respond(c, 400, "text/plain", "use /set?KEY=VALUE\n");
                } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stats") == 0)
                        respond(c, 200, "application/json",
                                "{\"version\":\"%s\",\"generation\":%u,\"pid\":%d,"
                                "\"requests\":%llu,\"updates\":%llu,\"frozen_ns\":%llu,"
                                "\"serving_ns\":%llu}\n",
                                tag, liveup_generation(lu), (int)getpid(),
                                (unsigned long long)st->requests,
                                (unsigned long long)st->updates,
                                (unsigned long long)st->frozen_ns,
                                (unsigned long long)st->serving_ns);
                else if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0)
                        respond(c, 405, "text/plain", "GET or PUT\n");
                else
                        respond(c, 404, "text/plain", "not found\n");
        }
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= (uint32_t)used;
        return true;
}

/* Make progress on connection i: send what is pending, then answer the
 * requests buffered, one at a time, then read more. */
static void conn_serve(size_t i)
{
        struct conn_slot *c = &st->conns[i];

        for (;;) {
                while (c->out_off < c->out_len) {
                        ssize_t n = write(conn_fd[i], c->out + c->out_off, c->out_len - c->out_off);
                        if (n < 0 && errno == EAGAIN) {
                                conn_events(i);
                                return;
                        }
                        if (n <= 0) {
                                conn_close(i);
                                return;
                        }
                        c->out_off += (uint32_t)n;
                }
                c->out_off = c->out_len = 0;
                if (c->close_after) {
                        conn_close(i);
                        return;
                }
                if (handle_request(c))
                        continue;
                ssize_t n = read(conn_fd[i], c->in + c->in_len, IN_MAX - c->in_len);
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        conn_close(i);
                        return;
                }
                c->in_len += (uint32_t)n;
        }
        conn_events(i);
}

static void accept_all(void)
{
        static size_t hint;

        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                size_t i, k;

                if (fd < 0)
                        return; /* EAGAIN, or an error of that one connection */
                for (k = 0, i = hint; k < MAX_CONNS && st->conns[i].id; k++)
                        i = (i + 1) % MAX_CONNS;
                if (k == MAX_CONNS) {
                        close(fd); /* full */
                        continue;
                }
                hint = (i + 1) % MAX_CONNS;
                memset(&st->conns[i], 0, offsetof(struct conn_slot, in));
                st->conns[i].id = conn_id[i] = ++st->next_conn_id;
                conn_fd[i] = fd;
                watch(fd, (uint32_t)i, EPOLLIN);
        }
}

/* ---- the participant ---------------------------------------------------- */

static int on_freeze(struct liveup *l, void *userdata, char *why, size_t why_size)
{
        st->frozen_ns = now_ns();
        frozen = true;
        unwatch(listen_fd);
        for (size_t i = 0; i < MAX_CONNS; i++) {
                char name[16];
                int r;

                if (conn_fd[i] < 0)
                        continue;
                unwatch(conn_fd[i]);
                snprintf(name, sizeof(name), "c%zu", i);
                r = liveup_preserve_fd(l, name, conn_fd[i], STATE_SCHEMA);
                if (r < 0) {
                        snprintf(why, why_size, "cannot preserve connection %zu: %s", i,
                                 strerror(-r));
                        return r; /* the library cancels: on_cancel thaws */
                }
                conn_preserved[i] = true;
        }
        return 0;
}

static void on_cancel(struct liveup *l, void *userdata, enum liveup_cancel_reason reason)
{
        if (!frozen)
                return;
        frozen = false;
        for (size_t i = 0; i < MAX_CONNS; i++) {
                if (conn_preserved[i]) {
                        char name[16];
                        snprintf(name, sizeof(name), "c%zu", i);
                        (void)liveup_unpreserve(l, name);
                        conn_preserved[i] = false;
                }
        }
        /* A newer version that served (held in `updated`) left the slot
         * table as it was when it was killed: what it closed must go
         * here too, what it accepted is gone with it. */
        if (st->generation != liveup_generation(l))
                fprintf(stderr, "counter-http: generation %u serves again after a rollback\n",
                        liveup_generation(l));
        st->generation = liveup_generation(l);
        watch(listen_fd, TAG_LISTEN, EPOLLIN);
        for (size_t i = 0; i < MAX_CONNS; i++) {
                if (conn_fd[i] >= 0 && st->conns[i].id != conn_id[i]) {
                        close(conn_fd[i]); /* the newer version closed it */
                        conn_fd[i] = -1;
                }
                if (conn_fd[i] < 0 && st->conns[i].id != 0) {
                        st->conns[i].id = 0; /* accepted by the newer version */
                        st->conns[i].in_len = st->conns[i].out_len = st->conns[i].out_off = 0;
                }
                if (conn_fd[i] >= 0)
                        conn_serve(i); /* answers what queued meanwhile */
        }
}

/* ---- start-up ----------------------------------------------------------- */

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

/* A new version: take the connections the old one left in the slots. */
static size_t take_connections(void)
{
        size_t n = 0;

        for (size_t i = 0; i < MAX_CONNS; i++) {
                char name[16];

                if (!st->conns[i].id)
                        continue;
                snprintf(name, sizeof(name), "c%zu", i);
                conn_fd[i] = liveup_retrieve_fd(lu, name, NULL);
                if (conn_fd[i] < 0) {
                        st->conns[i].id = 0; /* not handed over: forget it */
                        continue;
                }
                conn_id[i] = st->conns[i].id;
                n++;
        }
        return n;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "port", required_argument, NULL, 'p' },
                { "addr", required_argument, NULL, 'a' },
                { "tag", required_argument, NULL, 't' },
                { "schema", required_argument, NULL, 's' },
                { "fail", required_argument, NULL, 'f' },
                {},
        };
        static const struct liveup_participant_ops ops = {
                .freeze = on_freeze,
                .cancel = on_cancel,
        };
        const char *addr = "127.0.0.1", *fail = NULL;
        unsigned port = 8080, schema = STATE_SCHEMA;
        size_t size, n_taken = 0;
        int restored, taken, c, r;

        if (getenv("COUNTER_HTTP_PORT"))
                port = (unsigned)atoi(getenv("COUNTER_HTTP_PORT"));
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'p':
                        port = (unsigned)atoi(optarg);
                        break;
                case 'a':
                        addr = optarg;
                        break;
                case 't':
                        tag = optarg;
                        break;
                case 's':
                        schema = (unsigned)atoi(optarg);
                        break;
                case 'f':
                        fail = optarg;
                        break;
                default:
                        return 2;
                }
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < MAX_CONNS; i++)
                conn_fd[i] = -1;

        r = liveup_open(&lu, 0);
        if (r < 0)
                die("liveup_open", r);
        r = liveup_participant_add(lu, "http", &ops, NULL);
        if (r < 0)
                die("liveup_participant_add", r);
        r = liveup_accept(lu, "state", schema, schema);
        if (r < 0)
                die("liveup_accept", r);
        taken = liveup_takeover(lu);
        if (taken == -EPROTO) {
                fprintf(stderr, "counter-http: the old version's state is not schema %u\n",
                        schema);
                return 1;
        }
        if (taken < 0)
                die("liveup_takeover", taken);

        r = liveup_memfd_map(lu, "state", sizeof(struct state), schema, (void **)&st, &size,
                             &restored);
        if (r < 0)
                die("liveup_memfd_map", r);
        if (restored && (st->magic != STATE_MAGIC || st->schema != schema ||
                         st->size != sizeof(struct state) || size < sizeof(struct state))) {
                fprintf(stderr, "counter-http: the handed-over state is not ours (schema %u)\n",
                        schema);
                return 1; /* before ready: the keeper cancels, the old version thaws */
        }
        if (!restored) {
                st->magic = STATE_MAGIC;
                st->schema = schema;
                st->size = sizeof(struct state);
        }

        if (taken == LIVEUP_TAKEN) {
                listen_fd = liveup_retrieve_fd(lu, "listener", NULL);
                if (listen_fd < 0)
                        die("no listener handed over", listen_fd);
                /* The failure modes, for the tests and the README: nothing
                 * shared was touched yet. */
                if (fail && strcmp(fail, "crash") == 0)
                        abort();
                if (fail && strcmp(fail, "exit") == 0)
                        exit(3);
                if (fail && strcmp(fail, "hang") == 0)
                        for (;;)
                                pause();
                n_taken = take_connections();
        } else
                listen_fd = tcp_listen(addr, port);
        r = liveup_preserve_fd(lu, "listener", listen_fd, 1);
        if (r < 0)
                die("liveup_preserve_fd", r);

        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                die("epoll_create1", errno);
        r = liveup_ready(lu);
        if (r < 0)
                die("liveup_ready", r);
        st->generation = liveup_generation(lu);
        if (liveup_get_fd(lu) >= 0)
                watch(liveup_get_fd(lu), TAG_LIVEUP, EPOLLIN);
        watch(listen_fd, TAG_LISTEN, EPOLLIN);
        for (size_t i = 0; i < MAX_CONNS; i++)
                if (conn_fd[i] >= 0)
                        conn_serve(i); /* what queued while the old one was frozen */
        if (taken == LIVEUP_TAKEN) {
                st->serving_ns = now_ns();
                st->updates++;
        }
        printf("ready version=%s gen=%u pid=%d port=%u requests=%llu connections=%zu\n", tag,
               liveup_generation(lu), (int)getpid(), port, (unsigned long long)st->requests,
               n_taken);

        for (;;) {
                struct epoll_event ev[64];
                int n = epoll_wait(epfd, ev, 64, -1);

                for (int k = 0; k < n; k++) {
                        uint32_t t = ev[k].data.u32;

                        if (t == TAG_LIVEUP) {
                                r = liveup_dispatch(lu);
                                if (r == LIVEUP_EXIT) {
                                        liveup_close(lu);
                                        return 0;
                                }
                        } else if (frozen)
                                continue; /* an event reported before the freeze */
                        else if (t == TAG_LISTEN)
                                accept_all();
                        else if (t < MAX_CONNS && conn_fd[t] >= 0)
                                conn_serve(t);
                }
        }
}
