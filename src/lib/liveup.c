/* libliveup: the service's side of the keeper protocol (include/liveup.h,
 * docs/internals/update.md).
 *
 * A session holds: the keeper socket (LIVEUP_FD, -1 outside a keeper),
 * the participants in registration order, the fds preserved for the next
 * version (our own duplicates), the accept rules, and the items handed
 * to us (new version). The old version's side is a small state machine
 * mirrored from the keeper's:
 *
 *     IDLE --PREPARE--> PREPARED --FREEZE--> FROZEN --FINISH--> FINISHED
 *     PREPARED | FROZEN --CANCEL or keeper lost--> IDLE
 *
 * Preserved fds are recorded at any time and sent in bulk after the
 * prepare callbacks; while PREPARED/FROZEN each preserve/unpreserve goes
 * out at once (freeze callbacks add idle connections that way).
 *
 * When the keeper goes away (end of stream), a prepared or frozen session
 * cancels itself (reason KEEPER_LOST: the old version thaws and serves
 * on), and the socket's fd number is taken over by an eventfd that never
 * becomes readable, so an event loop polling liveup_get_fd() neither
 * spins on a hang-up nor sees a closed fd. Messages that arrive while
 * liveup_takeover() waits for its items (a PREPARE for an early update)
 * are queued and handled by the next liveup_dispatch(). */
#include <liveup.h>

#include "update/msgio.h"
#include "update/proto.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

_Static_assert(LIVEUP_NAME_MAX == UPD_NAME_MAX, "name limits differ");
_Static_assert((int)LIVEUP_CANCEL_REQUESTED == (int)UPD_CANCEL_REQUESTED &&
                       (int)LIVEUP_CANCEL_REFUSED == (int)UPD_CANCEL_REFUSED &&
                       (int)LIVEUP_CANCEL_NEW_FAILED == (int)UPD_CANCEL_NEW_FAILED &&
                       (int)LIVEUP_CANCEL_KEEPER_LOST == (int)UPD_CANCEL_KEEPER_LOST,
               "cancel reasons differ");

#define MAX_PARTICIPANTS 64
#define MAX_QUEUED 16

struct participant {
        char name[LIVEUP_NAME_MAX];
        struct liveup_participant_ops ops;
        void *userdata;
        bool prepared;
};

struct item {
        char name[LIVEUP_NAME_MAX];
        int fd;
        uint32_t schema;
};

struct rule {
        char name[LIVEUP_NAME_MAX];
        uint32_t min, max;
};

struct queued {
        enum upd_msg_type type;
        uint32_t reason;
        uint32_t count;
};

enum phase { PH_IDLE, PH_PREPARED, PH_FROZEN, PH_FINISHED };

struct liveup {
        int fd;
        unsigned generation;
        bool keeper_lost, took_over, takeover_called;
        uint32_t seq; /* the keeper's number of the update being prepared */
        enum phase phase;
        struct participant parts[MAX_PARTICIPANTS];
        size_t n_parts;
        struct item *kept; /* preserved for the next version */
        size_t n_kept;
        struct item *got; /* handed to us */
        size_t n_got;
        struct rule *rules;
        size_t n_rules;
        struct queued queue[MAX_QUEUED];
        size_t n_queue;
        pthread_t thread;
        bool thread_running;
        void (*on_exit)(struct liveup *lu, void *userdata);
        void *exit_userdata;
};

/* ---- small helpers ------------------------------------------------------ */

/* Does this message echo the update's number (proto.h)? */
static bool numbered(enum upd_msg_type type)
{
        return type == UPD_MSG_PRESERVE || type == UPD_MSG_UNPRESERVE ||
               type == UPD_MSG_PREPARED || type == UPD_MSG_FROZEN || type == UPD_MSG_REFUSE;
}

/* Send one message of `type` with the attributes given (name and why may
 * be NULL; schema only with PRESERVE) and at most one fd. Nothing is sent
 * outside a keeper or once it is gone. */
static int send_msg(struct liveup *lu, enum upd_msg_type type, const char *name,
                    const char *why, uint32_t schema, int fd)
{
        struct upd_msg_builder *b;
        int r;

        if (lu->fd < 0 || lu->keeper_lost)
                return 0;
        b = malloc(sizeof(*b));
        if (!b)
                return -ENOMEM;
        upd_msg_begin(b, type);
        if (name)
                upd_msg_put_str(b, UPD_TAG_NAME, name);
        if (why)
                upd_msg_put_str(b, UPD_TAG_WHY, why);
        if (type == UPD_MSG_PRESERVE)
                upd_msg_put_u32(b, UPD_TAG_SCHEMA, schema);
        if (numbered(type))
                upd_msg_put_u32(b, UPD_TAG_COUNT, lu->seq);
        r = upd_msg_send(lu->fd, b, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
        free(b);
        return r;
}

static int send_empty(struct liveup *lu, enum upd_msg_type type)
{
        return send_msg(lu, type, NULL, NULL, 0, -1);
}

static int send_named(struct liveup *lu, enum upd_msg_type type, const char *name,
                      uint32_t schema, int fd)
{
        return send_msg(lu, type, name, NULL, schema, fd);
}

static int send_why(struct liveup *lu, enum upd_msg_type type, const char *why)
{
        return send_msg(lu, type, NULL, why, 0, -1);
}

static struct item *find_item(struct item *v, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i].name, name) == 0)
                        return &v[i];
        return NULL;
}

static void drop_item(struct item *v, size_t *n, struct item *it)
{
        size_t i = (size_t)(it - v);

        memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
        (*n)--;
}

static int add_item(struct item **v, size_t *n, const char *name, int fd, uint32_t schema)
{
        struct item *nv = realloc(*v, (*n + 1) * sizeof(**v));

        if (!nv)
                return -ENOMEM;
        *v = nv;
        memset(&nv[*n], 0, sizeof(nv[*n]));
        snprintf(nv[*n].name, sizeof(nv[*n].name), "%s", name);
        nv[*n].fd = fd;
        nv[*n].schema = schema;
        (*n)++;
        return 0;
}

static int env_uint(const char *var, unsigned *ret)
{
        const char *s = getenv(var);
        char *end;
        unsigned long v;

        if (!s || !*s)
                return -ENOENT;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v > INT32_MAX)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* ---- session ------------------------------------------------------------ */

int liveup_open(struct liveup **ret, unsigned flags)
{
        struct liveup *lu;
        unsigned fd, gen = 1;
        struct stat st;
        int type = 0;
        socklen_t len = sizeof(type);
        int r;

        if (!ret || flags != 0)
                return -EINVAL;
        lu = calloc(1, sizeof(*lu));
        if (!lu)
                return -ENOMEM;
        lu->fd = -1;
        lu->generation = 1;
        r = env_uint("LIVEUP_FD", &fd);
        if (r == -ENOENT) {
                *ret = lu;
                return 0;
        }
        if (r < 0 || fstat((int)fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
            getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
            type != SOCK_SEQPACKET) {
                free(lu);
                return -EBADF;
        }
        if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0) {
                r = -errno;
                free(lu);
                return r;
        }
        (void)env_uint("LIVEUP_GENERATION", &gen);
        lu->fd = (int)fd;
        lu->generation = gen ? gen : 1;
        /* Children of the service are not versions. */
        unsetenv("LIVEUP_FD");
        unsetenv("LIVEUP_NAME");
        unsetenv("LIVEUP_GENERATION");

        struct upd_msg_builder *b = malloc(sizeof(*b));
        if (!b) {
                free(lu);
                return -ENOMEM;
        }
        upd_msg_begin(b, UPD_MSG_HELLO);
        upd_msg_put_u32(b, UPD_TAG_PROTO, UPD_PROTO_VERSION);
        upd_msg_put_u32(b, UPD_TAG_GENERATION, lu->generation);
        upd_msg_put_u32(b, UPD_TAG_PID, (uint32_t)getpid());
        r = upd_msg_send(lu->fd, b, NULL, 0);
        free(b);
        if (r < 0) {
                close(lu->fd);
                free(lu);
                return r;
        }
        *ret = lu;
        return 0;
}

void liveup_close(struct liveup *lu)
{
        if (!lu)
                return;
        if (lu->thread_running && !pthread_equal(lu->thread, pthread_self())) {
                pthread_cancel(lu->thread);
                pthread_join(lu->thread, NULL);
        }
        for (size_t i = 0; i < lu->n_kept; i++)
                close(lu->kept[i].fd);
        for (size_t i = 0; i < lu->n_got; i++)
                close(lu->got[i].fd);
        free(lu->kept);
        free(lu->got);
        free(lu->rules);
        if (lu->fd >= 0)
                close(lu->fd);
        free(lu);
}

unsigned liveup_generation(const struct liveup *lu)
{
        return lu ? lu->generation : 0;
}

int liveup_get_fd(const struct liveup *lu)
{
        return lu ? lu->fd : -1;
}

int liveup_participant_add(struct liveup *lu, const char *name,
                           const struct liveup_participant_ops *ops, void *userdata)
{
        struct participant *p;

        if (!lu || !ops || !upd_name_valid(name))
                return -EINVAL;
        for (size_t i = 0; i < lu->n_parts; i++)
                if (strcmp(lu->parts[i].name, name) == 0)
                        return -EEXIST;
        if (lu->n_parts >= MAX_PARTICIPANTS)
                return -ENOSPC;
        p = &lu->parts[lu->n_parts++];
        memset(p, 0, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s", name);
        p->ops = *ops;
        p->userdata = userdata;
        return 0;
}

/* ---- preserved items ---------------------------------------------------- */

static bool collecting(const struct liveup *lu)
{
        return lu->phase == PH_PREPARED || lu->phase == PH_FROZEN;
}

int liveup_preserve_fd(struct liveup *lu, const char *name, int fd, uint32_t schema)
{
        struct item *it;
        int copy, r;

        if (!lu || !upd_name_valid(name) || fd < 0)
                return -EINVAL;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        it = find_item(lu->kept, lu->n_kept, name);
        if (it) {
                close(it->fd);
                it->fd = copy;
                it->schema = schema;
        } else {
                r = add_item(&lu->kept, &lu->n_kept, name, copy, schema);
                if (r < 0) {
                        close(copy);
                        return r;
                }
        }
        if (collecting(lu))
                return send_named(lu, UPD_MSG_PRESERVE, name, schema, copy);
        return 0;
}

int liveup_unpreserve(struct liveup *lu, const char *name)
{
        struct item *it;

        if (!lu || !upd_name_valid(name))
                return -EINVAL;
        it = find_item(lu->kept, lu->n_kept, name);
        if (!it)
                return -ENOENT;
        close(it->fd);
        drop_item(lu->kept, &lu->n_kept, it);
        if (collecting(lu))
                return send_named(lu, UPD_MSG_UNPRESERVE, name, 0, -1);
        return 0;
}

int liveup_accept(struct liveup *lu, const char *name, uint32_t min_schema,
                  uint32_t max_schema)
{
        struct rule *r;

        if (!lu || !upd_name_valid(name) || min_schema > max_schema)
                return -EINVAL;
        if (lu->takeover_called)
                return -EBUSY;
        for (size_t i = 0; i < lu->n_rules; i++)
                if (strcmp(lu->rules[i].name, name) == 0) {
                        lu->rules[i].min = min_schema;
                        lu->rules[i].max = max_schema;
                        return 0;
                }
        r = realloc(lu->rules, (lu->n_rules + 1) * sizeof(*r));
        if (!r)
                return -ENOMEM;
        lu->rules = r;
        r = &r[lu->n_rules++];
        snprintf(r->name, sizeof(r->name), "%s", name);
        r->min = min_schema;
        r->max = max_schema;
        return 0;
}

int liveup_retrieve_fd(struct liveup *lu, const char *name, uint32_t *ret_schema)
{
        struct item *it;
        int fd;

        if (!lu || !name)
                return -EINVAL;
        it = find_item(lu->got, lu->n_got, name);
        if (!it)
                return -ENOENT;
        fd = it->fd;
        if (ret_schema)
                *ret_schema = it->schema;
        drop_item(lu->got, &lu->n_got, it);
        return fd;
}

int liveup_memfd_map(struct liveup *lu, const char *name, size_t size, uint32_t schema,
                     void **ret_addr, size_t *ret_size, int *ret_restored)
{
        struct stat st;
        int restored = 0;
        void *addr;
        int fd, r;

        if (!lu || !ret_addr || !upd_name_valid(name))
                return -EINVAL;
        fd = liveup_retrieve_fd(lu, name, NULL);
        if (fd >= 0) {
                if (fstat(fd, &st) < 0 || st.st_size <= 0) {
                        r = fd < 0 ? -errno : -EINVAL;
                        close(fd);
                        return r;
                }
                size = (size_t)st.st_size;
                restored = 1;
        } else {
                if (size == 0)
                        return -EINVAL;
                fd = memfd_create(name, MFD_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (ftruncate(fd, (off_t)size) < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
        }
        addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (addr == MAP_FAILED) {
                r = -errno;
                close(fd);
                return r;
        }
        r = liveup_preserve_fd(lu, name, fd, schema);
        close(fd);
        if (r < 0) {
                munmap(addr, size);
                return r;
        }
        *ret_addr = addr;
        if (ret_size)
                *ret_size = size;
        if (ret_restored)
                *ret_restored = restored;
        return 0;
}

/* ---- the old version's side -------------------------------------------- */

static void cancel_prepared(struct liveup *lu, enum liveup_cancel_reason reason)
{
        for (size_t i = lu->n_parts; i-- > 0;) {
                struct participant *p = &lu->parts[i];
                if (!p->prepared)
                        continue;
                p->prepared = false;
                if (p->ops.cancel)
                        p->ops.cancel(lu, p->userdata, reason);
        }
        lu->phase = PH_IDLE;
}

/* Run one kind of callback in order; on a refusal, cancel what was
 * prepared (reverse order) and send REFUSE. */
static int run_forward(struct liveup *lu, bool freeze)
{
        char why[UPD_TEXT_MAX];

        for (size_t i = 0; i < lu->n_parts; i++) {
                struct participant *p = &lu->parts[i];
                int (*cb)(struct liveup *, void *, char *, size_t) =
                        freeze ? p->ops.freeze : p->ops.prepare;
                int r = 0;

                why[0] = 0;
                if (cb)
                        r = cb(lu, p->userdata, why, sizeof(why));
                if (r < 0) {
                        char msg[UPD_TEXT_MAX + LIVEUP_NAME_MAX + 64];
                        why[sizeof(why) - 1] = 0;
                        snprintf(msg, sizeof(msg), "participant '%s' refused to %s: %s",
                                 p->name, freeze ? "freeze" : "prepare",
                                 why[0] ? why : strerror(-r));
                        cancel_prepared(lu, LIVEUP_CANCEL_REFUSED);
                        return send_why(lu, UPD_MSG_REFUSE, msg);
                }
                if (!freeze)
                        p->prepared = true;
        }
        return 1;
}

static int on_prepare(struct liveup *lu)
{
        int r;

        if (lu->phase != PH_IDLE)
                return 0;
        r = run_forward(lu, false);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < lu->n_kept; i++) {
                r = send_named(lu, UPD_MSG_PRESERVE, lu->kept[i].name, lu->kept[i].schema,
                               lu->kept[i].fd);
                if (r < 0)
                        return r;
        }
        lu->phase = PH_PREPARED;
        return send_empty(lu, UPD_MSG_PREPARED);
}

static int on_freeze(struct liveup *lu)
{
        int r;

        if (lu->phase != PH_PREPARED)
                return 0;
        r = run_forward(lu, true);
        if (r <= 0)
                return r;
        lu->phase = PH_FROZEN;
        return send_empty(lu, UPD_MSG_FROZEN);
}

static int on_finish(struct liveup *lu)
{
        for (size_t i = lu->n_parts; i-- > 0;)
                if (lu->parts[i].ops.finish)
                        lu->parts[i].ops.finish(lu, lu->parts[i].userdata);
        lu->phase = PH_FINISHED;
        return LIVEUP_EXIT;
}

static void keeper_lost(struct liveup *lu)
{
        int efd;

        if (lu->keeper_lost)
                return;
        lu->keeper_lost = true;
        if (collecting(lu))
                cancel_prepared(lu, LIVEUP_CANCEL_KEEPER_LOST);
        /* Keep the fd number, make it never readable (see the top). */
        efd = eventfd(0, EFD_CLOEXEC);
        if (efd >= 0) {
                (void)dup3(efd, lu->fd, O_CLOEXEC);
                close(efd);
        }
}

static int handle(struct liveup *lu, enum upd_msg_type type, uint32_t reason, uint32_t count)
{
        switch (type) {
        case UPD_MSG_PREPARE:
                if (lu->phase == PH_IDLE)
                        lu->seq = count;
                return on_prepare(lu);
        case UPD_MSG_FREEZE:
                return on_freeze(lu);
        case UPD_MSG_CANCEL:
                if (collecting(lu))
                        cancel_prepared(lu, reason ? (enum liveup_cancel_reason)reason
                                                   : LIVEUP_CANCEL_REQUESTED);
                return 0;
        case UPD_MSG_FINISH:
                return on_finish(lu);
        case UPD_MSG_COMMITTED:
                /* We are the service now: outlive the keeper. */
                (void)prctl(PR_SET_PDEATHSIG, 0);
                return 0;
        default:
                return 0;
        }
}

static bool readable(int fd, int timeout_ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        return r > 0;
}

/* Receive one message; -EAGAIN when none is queued (timeout_ms 0). Loss
 * of the keeper is handled here. */
static int receive(struct liveup *lu, int timeout_ms, struct upd_msg *m, int *ret_fd)
{
        int r;

        if (!readable(lu->fd, timeout_ms))
                return -EAGAIN;
        r = upd_msg_recv(lu->fd, m, ret_fd, NULL);
        if (r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN) {
                keeper_lost(lu);
                return -ECONNRESET;
        }
        return r;
}

int liveup_dispatch(struct liveup *lu)
{
        int r = 0;

        if (!lu)
                return -EINVAL;
        if (lu->fd < 0 || lu->keeper_lost)
                return 0;
        while (lu->n_queue > 0) {
                struct queued q = lu->queue[0];
                memmove(&lu->queue[0], &lu->queue[1], (--lu->n_queue) * sizeof(q));
                r = handle(lu, q.type, q.reason, q.count);
                if (r != 0)
                        return r;
        }
        for (;;) {
                struct upd_msg m;
                int fd = -1;

                r = receive(lu, 0, &m, &fd);
                if (r == -EAGAIN || r == -ECONNRESET)
                        return 0;
                if (r == -EBADMSG)
                        continue;
                if (r < 0)
                        return r;
                if (fd >= 0)
                        close(fd); /* no message to an old version carries one */
                r = handle(lu, m.type, m.reason, m.count);
                upd_msg_done(&m);
                if (r != 0)
                        return r;
        }
}

/* ---- the new version's side -------------------------------------------- */

int liveup_takeover(struct liveup *lu)
{
        struct upd_msg_builder *b;
        int r;

        if (!lu)
                return -EINVAL;
        if (lu->takeover_called)
                return -EALREADY;
        lu->takeover_called = true;
        if (lu->fd < 0 || lu->keeper_lost)
                return LIVEUP_FRESH;

        b = malloc(sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < lu->n_rules; i++) {
                upd_msg_begin(b, UPD_MSG_ACCEPT);
                upd_msg_put_str(b, UPD_TAG_NAME, lu->rules[i].name);
                upd_msg_put_u32(b, UPD_TAG_MIN, lu->rules[i].min);
                upd_msg_put_u32(b, UPD_TAG_MAX, lu->rules[i].max);
                r = upd_msg_send(lu->fd, b, NULL, 0);
                if (r < 0) {
                        free(b);
                        return r;
                }
        }
        free(b);
        r = send_empty(lu, UPD_MSG_TAKEOVER);
        if (r < 0)
                return r;

        for (;;) {
                struct upd_msg m;
                int fd = -1;

                r = receive(lu, -1, &m, &fd);
                if (r == -EBADMSG)
                        continue;
                if (r == -ECONNRESET)
                        return LIVEUP_FRESH; /* no keeper, no update */
                if (r < 0)
                        return r;
                switch (m.type) {
                case UPD_MSG_ITEM:
                        r = add_item(&lu->got, &lu->n_got, m.name, fd, m.schema);
                        if (r < 0)
                                close(fd);
                        fd = -1;
                        break;
                case UPD_MSG_ITEMS_END: {
                        bool fresh = m.fresh != 0;
                        upd_msg_done(&m);
                        if (fresh)
                                return LIVEUP_FRESH;
                        lu->took_over = true;
                        return LIVEUP_TAKEN;
                }
                case UPD_MSG_TAKEOVER_REFUSED:
                        upd_msg_done(&m);
                        return -EPROTO;
                default:
                        if (lu->n_queue < MAX_QUEUED)
                                lu->queue[lu->n_queue++] =
                                        (struct queued){ m.type, m.reason, m.count };
                        break;
                }
                if (fd >= 0)
                        close(fd);
                upd_msg_done(&m);
        }
}

int liveup_ready(struct liveup *lu)
{
        if (!lu)
                return -EINVAL;
        for (size_t i = 0; i < lu->n_got; i++)
                close(lu->got[i].fd);
        lu->n_got = 0;
        return send_empty(lu, UPD_MSG_READY);
}

/* ---- the dispatch thread ------------------------------------------------ */

static void *thread_main(void *arg)
{
        struct liveup *lu = arg;

        for (;;) {
                int r;

                if (!readable(lu->fd, -1))
                        continue;
                r = liveup_dispatch(lu);
                if (r == LIVEUP_EXIT) {
                        if (lu->on_exit)
                                lu->on_exit(lu, lu->exit_userdata);
                        else
                                exit(0);
                        return NULL;
                }
        }
}

int liveup_start_thread(struct liveup *lu, void (*on_exit)(struct liveup *lu, void *userdata),
                        void *userdata)
{
        int r;

        if (!lu)
                return -EINVAL;
        if (lu->thread_running)
                return -EALREADY;
        if (lu->fd < 0)
                return 0;
        lu->on_exit = on_exit;
        lu->exit_userdata = userdata;
        r = pthread_create(&lu->thread, NULL, thread_main, lu);
        if (r != 0)
                return -r;
        lu->thread_running = true;
        return 0;
}
