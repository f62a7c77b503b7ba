/* Unit tests of libliveup (src/lib) against a fake keeper: the test holds
 * the keeper's end of the SOCK_SEQPACKET pair and plays its part, so the
 * library's side of the protocol is checked message by message:
 * callbacks in registration order (cancel and finish in reverse), a
 * refusing participant, preserved fds sent at PREPARE, FINISH ->
 * LIVEUP_EXIT, keeper loss mid-update (cancel with KEEPER_LOST, fd no
 * longer readable), takeover with items / refused / fresh, messages
 * queued during takeover, and the no-keeper mode. */
#include "tap.h"

#include <liveup.h>

#include "update/msgio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

static char log_buf[256];

static void logf_(const char *s)
{
        strncat(log_buf, s, sizeof(log_buf) - strlen(log_buf) - 1);
}

static int cb_prepare(struct liveup *lu, void *ud, char *why, size_t size)
{
        const char *n = ud;
        char s[16];

        snprintf(s, sizeof(s), "p%s ", n);
        logf_(s);
        if (strcmp(n, "B!") == 0) {
                snprintf(why, size, "busy");
                return -EBUSY;
        }
        return 0;
}

static int cb_freeze(struct liveup *lu, void *ud, char *why, size_t size)
{
        char s[16];

        snprintf(s, sizeof(s), "f%s ", (const char *)ud);
        logf_(s);
        return 0;
}

static void cb_cancel(struct liveup *lu, void *ud, enum liveup_cancel_reason r)
{
        char s[16];

        snprintf(s, sizeof(s), "c%s%d ", (const char *)ud, (int)r);
        logf_(s);
}

static void cb_finish(struct liveup *lu, void *ud)
{
        char s[16];

        snprintf(s, sizeof(s), "F%s ", (const char *)ud);
        logf_(s);
}

static const struct liveup_participant_ops ops = {
        .prepare = cb_prepare, .freeze = cb_freeze, .cancel = cb_cancel, .finish = cb_finish,
};

/* The fake keeper's end; the library gets the other through LIVEUP_FD. */
static int keeper_setup(void)
{
        int sp[2];
        char v[16];

        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0);
        fcntl(sp[0], F_SETFD, FD_CLOEXEC);
        snprintf(v, sizeof(v), "%d", sp[1]);
        setenv("LIVEUP_FD", v, 1);
        setenv("LIVEUP_GENERATION", "2", 1);
        return sp[0];
}

static struct upd_msg_builder b;

static void ksend(int k, enum upd_msg_type t)
{
        upd_msg_begin(&b, t);
        CHECK_OK(upd_msg_send(k, &b, NULL, 0));
}

/* Receive one message at the keeper; its type, *ret_fd its fd. */
static enum upd_msg_type krecv(int k, struct upd_msg *m, int *ret_fd)
{
        struct pollfd p = { .fd = k, .events = POLLIN };
        int fd = -1;

        CHECK(poll(&p, 1, 5000) == 1);
        CHECK_OK(upd_msg_recv(k, m, &fd, NULL));
        if (ret_fd)
                *ret_fd = fd;
        else if (fd >= 0)
                close(fd);
        return m->type;
}

static void expect_type(int k, enum upd_msg_type t)
{
        struct upd_msg m;

        CHECK(krecv(k, &m, NULL) == t);
        upd_msg_done(&m);
}

static struct liveup *open_abc(int k)
{
        struct liveup *lu;

        CHECK_OK(liveup_open(&lu, 0));
        CHECK(getenv("LIVEUP_FD") == NULL); /* not for the service's children */
        CHECK(liveup_generation(lu) == 2);
        expect_type(k, UPD_MSG_HELLO);
        CHECK_OK(liveup_participant_add(lu, "A", &ops, "A"));
        CHECK_OK(liveup_participant_add(lu, "B", &ops, "B"));
        CHECK_OK(liveup_participant_add(lu, "C", &ops, "C"));
        CHECK_ERR(liveup_participant_add(lu, "C", &ops, "C"), EEXIST);
        return lu;
}

TEST(no_keeper_is_a_noop)
{
        struct liveup *lu;
        void *addr;
        size_t size;
        int restored = -1;

        unsetenv("LIVEUP_FD");
        CHECK_OK(liveup_open(&lu, 0));
        CHECK(liveup_get_fd(lu) == -1);
        CHECK(liveup_generation(lu) == 1);
        CHECK_OK(liveup_participant_add(lu, "x", &ops, "x"));
        CHECK_OK(liveup_accept(lu, "state", 1, 1));
        CHECK(liveup_takeover(lu) == LIVEUP_FRESH);
        CHECK_OK(liveup_memfd_map(lu, "state", 100, 1, &addr, &size, &restored));
        CHECK(size == 100 && restored == 0 && ((char *)addr)[99] == 0);
        CHECK_OK(liveup_preserve_fd(lu, "out", 1, 1));
        CHECK_ERR(liveup_retrieve_fd(lu, "out", NULL), ENOENT);
        CHECK_OK(liveup_ready(lu));
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_OK(liveup_start_thread(lu, NULL, NULL));
        CHECK_ERR(liveup_open(&lu, 1), EINVAL);
        liveup_close(lu);
}

TEST(callbacks_in_order_preserve_finish)
{
        int k = keeper_setup(), fd, p[2];
        struct liveup *lu = open_abc(k);
        struct upd_msg m;
        char c;

        CHECK(pipe(p) == 0);
        CHECK_OK(liveup_preserve_fd(lu, "pipe", p[0], 5));
        CHECK_ERR(liveup_preserve_fd(lu, "bad/name", p[0], 5), EINVAL);

        /* The update's number comes back on every answer (proto.h). */
        upd_msg_begin(&b, UPD_MSG_PREPARE);
        upd_msg_put_u32(&b, UPD_TAG_COUNT, 7);
        CHECK_OK(upd_msg_send(k, &b, NULL, 0));
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_STREQ(log_buf, "pA pB pC ");
        CHECK(krecv(k, &m, &fd) == UPD_MSG_PRESERVE);
        CHECK_STREQ(m.name, "pipe");
        CHECK(m.schema == 5 && fd >= 0 && m.count == 7);
        CHECK(write(p[1], "q", 1) == 1 && read(fd, &c, 1) == 1 && c == 'q');
        close(fd);
        CHECK(krecv(k, &m, NULL) == UPD_MSG_PREPARED);
        CHECK(upd_msg_has(&m, UPD_TAG_COUNT) && m.count == 7);

        log_buf[0] = 0;
        ksend(k, UPD_MSG_FREEZE);
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_STREQ(log_buf, "fA fB fC ");
        CHECK(krecv(k, &m, NULL) == UPD_MSG_FROZEN);
        CHECK(m.count == 7);
        /* While frozen, a new preserve goes out at once. */
        CHECK_OK(liveup_preserve_fd(lu, "late", p[1], 1));
        CHECK(krecv(k, &m, NULL) == UPD_MSG_PRESERVE);
        CHECK_STREQ(m.name, "late");

        log_buf[0] = 0;
        ksend(k, UPD_MSG_FINISH);
        CHECK(liveup_dispatch(lu) == LIVEUP_EXIT);
        CHECK_STREQ(log_buf, "FC FB FA ");
        liveup_close(lu);
}

TEST(cancel_in_reverse_with_reason)
{
        int k = keeper_setup();
        struct liveup *lu = open_abc(k);
        struct upd_msg m;

        ksend(k, UPD_MSG_PREPARE);
        CHECK(liveup_dispatch(lu) == 0);
        expect_type(k, UPD_MSG_PREPARED);
        log_buf[0] = 0;
        upd_msg_begin(&b, UPD_MSG_CANCEL);
        upd_msg_put_u32(&b, UPD_TAG_REASON, LIVEUP_CANCEL_NEW_FAILED);
        CHECK_OK(upd_msg_send(k, &b, NULL, 0));
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_STREQ(log_buf, "cC3 cB3 cA3 ");
        /* A second CANCEL changes nothing; a new update can start. */
        log_buf[0] = 0;
        ksend(k, UPD_MSG_CANCEL);
        ksend(k, UPD_MSG_PREPARE);
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_STREQ(log_buf, "pA pB pC ");
        CHECK(krecv(k, &m, NULL) == UPD_MSG_PREPARED);
        liveup_close(lu);
}

TEST(refusing_participant)
{
        int k = keeper_setup();
        struct liveup *lu;
        struct upd_msg m;

        CHECK_OK(liveup_open(&lu, 0));
        expect_type(k, UPD_MSG_HELLO);
        CHECK_OK(liveup_participant_add(lu, "A", &ops, "A"));
        CHECK_OK(liveup_participant_add(lu, "B", &ops, "B!"));
        CHECK_OK(liveup_participant_add(lu, "C", &ops, "C"));
        ksend(k, UPD_MSG_PREPARE);
        CHECK(liveup_dispatch(lu) == 0);
        /* A prepared then was cancelled; C never asked. */
        CHECK_STREQ(log_buf, "pA pB! cA2 ");
        CHECK(krecv(k, &m, NULL) == UPD_MSG_REFUSE);
        CHECK_STREQ(m.why, "participant 'B' refused to prepare: busy");
        liveup_close(lu);
}

TEST(keeper_lost_mid_update)
{
        int k = keeper_setup();
        struct liveup *lu = open_abc(k);
        struct pollfd p;
        int fd;

        ksend(k, UPD_MSG_PREPARE);
        ksend(k, UPD_MSG_FREEZE);
        CHECK(liveup_dispatch(lu) == 0);
        fd = liveup_get_fd(lu);
        close(k);
        log_buf[0] = 0;
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_STREQ(log_buf, "cC4 cB4 cA4 ");
        CHECK(liveup_get_fd(lu) == fd);
        p = (struct pollfd){ .fd = fd, .events = POLLIN };
        CHECK(poll(&p, 1, 0) == 0); /* an event loop does not spin */
        CHECK(liveup_dispatch(lu) == 0);
        liveup_close(lu);
}

TEST(takeover_with_items)
{
        int k = keeper_setup(), m1 = memfd_create("state", MFD_CLOEXEC), fd;
        struct liveup *lu;
        struct upd_msg m;
        uint32_t schema = 0;
        void *addr;
        size_t size;
        int restored = 0, p[2];

        CHECK(pipe(p) == 0);
        CHECK(ftruncate(m1, 8192) == 0 && pwrite(m1, "kept", 4, 0) == 4);
        /* The keeper's answers are queued before the library asks; a
         * PREPARE that arrives during takeover waits for dispatch. */
        ksend(k, UPD_MSG_PREPARE);
        upd_msg_begin(&b, UPD_MSG_ITEM);
        upd_msg_put_str(&b, UPD_TAG_NAME, "state");
        upd_msg_put_u32(&b, UPD_TAG_SCHEMA, 2);
        CHECK_OK(upd_msg_send(k, &b, &m1, 1));
        upd_msg_begin(&b, UPD_MSG_ITEM);
        upd_msg_put_str(&b, UPD_TAG_NAME, "pipe");
        upd_msg_put_u32(&b, UPD_TAG_SCHEMA, 7);
        CHECK_OK(upd_msg_send(k, &b, &p[0], 1));
        upd_msg_begin(&b, UPD_MSG_ITEMS_END);
        upd_msg_put_u32(&b, UPD_TAG_COUNT, 2);
        CHECK_OK(upd_msg_send(k, &b, NULL, 0));

        CHECK_OK(liveup_open(&lu, 0));
        CHECK_OK(liveup_participant_add(lu, "A", &ops, "A"));
        CHECK_OK(liveup_accept(lu, "state", 1, 2));
        CHECK(liveup_takeover(lu) == LIVEUP_TAKEN);
        CHECK_ERR(liveup_takeover(lu), EALREADY);
        CHECK_ERR(liveup_accept(lu, "late", 1, 1), EBUSY);
        expect_type(k, UPD_MSG_HELLO);
        CHECK(krecv(k, &m, NULL) == UPD_MSG_ACCEPT);
        CHECK_STREQ(m.name, "state");
        CHECK(m.min == 1 && m.max == 2);
        expect_type(k, UPD_MSG_TAKEOVER);

        CHECK_OK(liveup_memfd_map(lu, "state", 16, 2, &addr, &size, &restored));
        CHECK(restored == 1 && size == 8192 && memcmp(addr, "kept", 4) == 0);
        fd = liveup_retrieve_fd(lu, "pipe", &schema);
        CHECK(fd >= 0 && schema == 7);
        CHECK_ERR(liveup_retrieve_fd(lu, "pipe", NULL), ENOENT);
        CHECK_OK(liveup_ready(lu));
        expect_type(k, UPD_MSG_READY);

        /* The queued PREPARE: the memfd goes on to the next version. */
        CHECK(liveup_dispatch(lu) == 0);
        CHECK_STREQ(log_buf, "pA ");
        CHECK(krecv(k, &m, NULL) == UPD_MSG_PRESERVE);
        CHECK_STREQ(m.name, "state");
        CHECK(m.schema == 2);
        liveup_close(lu);
}

TEST(takeover_refused_and_fresh)
{
        int k = keeper_setup();
        struct liveup *lu;

        upd_msg_begin(&b, UPD_MSG_TAKEOVER_REFUSED);
        upd_msg_put_str(&b, UPD_TAG_WHY, "schema");
        CHECK_OK(upd_msg_send(k, &b, NULL, 0));
        CHECK_OK(liveup_open(&lu, 0));
        CHECK_ERR(liveup_takeover(lu), EPROTO);
        liveup_close(lu);

        k = keeper_setup();
        /* Garbage first: skipped. Then a fresh answer. */
        CHECK(send(k, "junk", 4, 0) == 4);
        upd_msg_begin(&b, UPD_MSG_ITEMS_END);
        upd_msg_put_u32(&b, UPD_TAG_COUNT, 0);
        upd_msg_put_u32(&b, UPD_TAG_FRESH, 1);
        CHECK_OK(upd_msg_send(k, &b, NULL, 0));
        CHECK_OK(liveup_open(&lu, 0));
        CHECK(liveup_takeover(lu) == LIVEUP_FRESH);
        liveup_close(lu);
}

TEST(bad_liveup_fd_refused)
{
        struct liveup *lu;

        setenv("LIVEUP_FD", "0", 1); /* not a SOCK_SEQPACKET socket */
        CHECK_ERR(liveup_open(&lu, 0), EBADF);
        setenv("LIVEUP_FD", "x", 1);
        CHECK_ERR(liveup_open(&lu, 0), EBADF);
}

TAP_MAIN()
