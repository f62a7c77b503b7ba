/* Unit tests of the live-update wire codec (src/update/proto.c), message
 * I/O with fds (msgio.c) and the NOTIFY_SOCKET parser (notify.c): every
 * message type round-trips; each refusal rule of the parser has a case;
 * every truncation of a valid message is refused; a refused message over
 * a socket closes the fds it carried and the next message still parses. */
#include "tap.h"

#include "update/msgio.h"
#include "update/notify.h"
#include "update/proto.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>

static struct upd_msg_builder b;

static int parse_b(size_t n_fds, struct upd_msg *m)
{
        struct errbuf err = {};
        int r;

        CHECK(upd_msg_end(&b) == 0);
        r = upd_msg_parse(b.buf, b.len, n_fds, m, &err);
        if (r < 0)
                CHECK(err.msg[0]); /* every refusal says why */
        return r;
}

static size_t count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        size_t n = 0;

        CHECK(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

TEST(hello_roundtrip)
{
        struct upd_msg m;

        upd_msg_begin(&b, UPD_MSG_HELLO);
        upd_msg_put_u32(&b, UPD_TAG_PROTO, 1);
        upd_msg_put_u32(&b, UPD_TAG_GENERATION, 7);
        upd_msg_put_u32(&b, UPD_TAG_PID, 4242);
        CHECK_OK(parse_b(0, &m));
        CHECK(m.type == UPD_MSG_HELLO && m.proto == 1 && m.generation == 7 && m.pid == 4242);
        CHECK(upd_msg_has(&m, UPD_TAG_PID) && !upd_msg_has(&m, UPD_TAG_NAME));
        upd_msg_done(&m);
}

TEST(update_argv_and_status_items)
{
        struct upd_msg m;
        struct upd_item_info it = { .name = "counter", .schema = 3, .kind = UPD_ITEM_MEMFD,
                                    .size = 1 << 20 };

        upd_msg_begin(&b, UPD_MSG_UPDATE);
        upd_msg_put_str(&b, UPD_TAG_ARG, "/usr/bin/server");
        upd_msg_put_str(&b, UPD_TAG_ARG, "--port=80");
        upd_msg_put_str(&b, UPD_TAG_ARG, "x");
        upd_msg_put_u32(&b, UPD_TAG_HOLD, 1);
        CHECK_OK(parse_b(0, &m));
        CHECK(m.n_argv == 3 && m.argv[3] == NULL);
        CHECK_STREQ(m.argv[0], "/usr/bin/server");
        CHECK_STREQ(m.argv[1], "--port=80");
        CHECK_STREQ(m.argv[2], "x");
        CHECK(m.hold == 1);
        upd_msg_done(&m);

        upd_msg_begin(&b, UPD_MSG_STATUS_REPLY);
        upd_msg_put_str(&b, UPD_TAG_NAME, "web");
        upd_msg_put_u32(&b, UPD_TAG_STATE, 3);
        upd_msg_put_u32(&b, UPD_TAG_OLD_PID, 10);
        upd_msg_put_item(&b, &it);
        snprintf(it.name, sizeof(it.name), "listener");
        it.kind = UPD_ITEM_TCP_LISTEN;
        upd_msg_put_item(&b, &it);
        upd_msg_put_str(&b, UPD_TAG_LAST_MESSAGE, "completed");
        upd_msg_put_u64(&b, UPD_TAG_UPTIME_MS, 1ull << 40);
        CHECK_OK(parse_b(0, &m));
        CHECK(m.n_items == 2 && m.items[0].size == 1 << 20 && m.items[0].schema == 3);
        CHECK_STREQ(m.items[0].name, "counter");
        CHECK_STREQ(m.items[1].name, "listener");
        CHECK(m.items[1].kind == UPD_ITEM_TCP_LISTEN);
        CHECK(m.uptime_ms == 1ull << 40);
        CHECK_STREQ(m.last_message, "completed");
        CHECK_STREQ(upd_item_kind_name(UPD_ITEM_TCP_LISTEN), "tcp-listen");
        CHECK_STREQ(upd_item_kind_name(999), "other");
        upd_msg_done(&m);
}

TEST(every_type_has_a_name_and_empty_ones_parse)
{
        static const uint16_t empty[] = { UPD_MSG_PREPARED, UPD_MSG_FROZEN, UPD_MSG_TAKEOVER,
                                          UPD_MSG_READY,    UPD_MSG_PREPARE, UPD_MSG_FREEZE,
                                          UPD_MSG_CANCEL,   UPD_MSG_FINISH, UPD_MSG_COMMITTED,
                                          UPD_MSG_UPDATE,   UPD_MSG_STATUS };
        struct upd_msg m;

        for (size_t i = 0; i < ELEMENTSOF(empty); i++) {
                CHECK(upd_msg_type_name(empty[i]));
                upd_msg_begin(&b, empty[i]);
                CHECK_OK(parse_b(0, &m));
                CHECK(m.type == empty[i]);
                upd_msg_done(&m);
        }
        CHECK(upd_msg_type_name(9999) == NULL);
        CHECK(upd_msg_type_fds(UPD_MSG_ITEM) == 1 && upd_msg_type_fds(UPD_MSG_READY) == 0);
}

TEST(refuses_bad_headers)
{
        struct upd_msg m;
        uint32_t size;
        uint16_t v;

        upd_msg_begin(&b, UPD_MSG_READY);
        CHECK(upd_msg_end(&b) == 0);
        CHECK_ERR(upd_msg_parse(b.buf, 7, 0, &m, NULL), EBADMSG); /* short */
        size = 12;                                                   /* size != packet */
        memcpy(b.buf, &size, 4);
        CHECK_ERR(upd_msg_parse(b.buf, 8, 0, &m, NULL), EBADMSG);
        size = 8;
        memcpy(b.buf, &size, 4);
        v = 1; /* flags */
        memcpy(b.buf + 6, &v, 2);
        CHECK_ERR(upd_msg_parse(b.buf, 8, 0, &m, NULL), EBADMSG);
        v = 0;
        memcpy(b.buf + 6, &v, 2);
        v = 500; /* unknown type */
        memcpy(b.buf + 4, &v, 2);
        CHECK_ERR(upd_msg_parse(b.buf, 8, 0, &m, NULL), EBADMSG);
}

TEST(refuses_bad_attributes)
{
        struct upd_msg m;
        uint32_t v = 1;
        uint16_t two = 2;

        /* unknown tag */
        upd_msg_begin(&b, UPD_MSG_READY);
        upd_msg_put_raw(&b, 63, &v, 4);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* known tag the type does not take */
        upd_msg_begin(&b, UPD_MSG_READY);
        upd_msg_put_u32(&b, UPD_TAG_PID, 1);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* duplicate */
        upd_msg_begin(&b, UPD_MSG_CANCEL);
        upd_msg_put_u32(&b, UPD_TAG_REASON, 1);
        upd_msg_put_u32(&b, UPD_TAG_REASON, 2);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* wrong length for a u32 */
        upd_msg_begin(&b, UPD_MSG_CANCEL);
        upd_msg_put_raw(&b, UPD_TAG_REASON, &v, 2);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* missing mandatory */
        upd_msg_begin(&b, UPD_MSG_HELLO);
        upd_msg_put_u32(&b, UPD_TAG_PROTO, 1);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* name with a NUL, a slash, too long, empty */
        upd_msg_begin(&b, UPD_MSG_UNPRESERVE);
        upd_msg_put_raw(&b, UPD_TAG_NAME, "ab\0c", 4);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        upd_msg_begin(&b, UPD_MSG_UNPRESERVE);
        upd_msg_put_raw(&b, UPD_TAG_NAME, "a/b", 3);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        char longname[UPD_NAME_MAX];
        memset(longname, 'a', sizeof(longname));
        upd_msg_begin(&b, UPD_MSG_UNPRESERVE);
        upd_msg_put_raw(&b, UPD_TAG_NAME, longname, sizeof(longname));
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        upd_msg_begin(&b, UPD_MSG_UNPRESERVE);
        upd_msg_put_raw(&b, UPD_TAG_NAME, "", 0);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* the builder refuses such names too */
        upd_msg_begin(&b, UPD_MSG_UNPRESERVE);
        upd_msg_put_str(&b, UPD_TAG_NAME, "a/b");
        CHECK_ERR(upd_msg_end(&b), EINVAL);
        /* text with a NUL */
        upd_msg_begin(&b, UPD_MSG_REFUSE);
        upd_msg_put_raw(&b, UPD_TAG_WHY, "no\0pe", 5);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* attribute runs past the end */
        upd_msg_begin(&b, UPD_MSG_CANCEL);
        upd_msg_put_u32(&b, UPD_TAG_REASON, 1);
        memcpy(b.buf + 8 + 2, &(uint16_t){ 40 }, 2);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        /* nonzero padding */
        upd_msg_begin(&b, UPD_MSG_REFUSE);
        upd_msg_put_str(&b, UPD_TAG_WHY, "x");
        CHECK(upd_msg_end(&b) == 0);
        b.buf[b.len - 1] = 1;
        CHECK_ERR(upd_msg_parse(b.buf, b.len, 0, &m, NULL), EBADMSG);
        /* an item with a short value */
        upd_msg_begin(&b, UPD_MSG_STATUS_REPLY);
        upd_msg_put_str(&b, UPD_TAG_NAME, "w");
        upd_msg_put_u32(&b, UPD_TAG_STATE, 0);
        upd_msg_put_u32(&b, UPD_TAG_OLD_PID, 1);
        upd_msg_put_raw(&b, UPD_TAG_ITEM_INFO, "abcdefgh", 8);
        CHECK_ERR(parse_b(0, &m), EBADMSG);
        (void)two;
}

TEST(refuses_wrong_fd_counts)
{
        struct upd_msg m;

        upd_msg_begin(&b, UPD_MSG_PRESERVE);
        upd_msg_put_str(&b, UPD_TAG_NAME, "listener");
        upd_msg_put_u32(&b, UPD_TAG_SCHEMA, 1);
        CHECK_ERR(parse_b(0, &m), EBADMSG); /* PRESERVE needs its fd */
        CHECK_ERR(parse_b(2, &m), EBADMSG);
        CHECK_OK(parse_b(1, &m));
        upd_msg_done(&m);
        upd_msg_begin(&b, UPD_MSG_READY);
        CHECK_ERR(parse_b(1, &m), EBADMSG); /* takes none */
}

TEST(every_truncation_refused)
{
        struct upd_msg m;
        uint8_t copy[UPD_MSG_MAX];
        uint32_t size;

        upd_msg_begin(&b, UPD_MSG_STATUS_REPLY);
        upd_msg_put_str(&b, UPD_TAG_NAME, "web");
        upd_msg_put_u32(&b, UPD_TAG_STATE, 1);
        upd_msg_put_u32(&b, UPD_TAG_OLD_PID, 1);
        upd_msg_put_str(&b, UPD_TAG_ARG, "/bin/server");
        upd_msg_put_str(&b, UPD_TAG_LAST_MESSAGE, "a message");
        CHECK(upd_msg_end(&b) == 0);
        for (size_t len = 0; len < b.len; len++) {
                memcpy(copy, b.buf, len);
                /* As sent (size says the full length) and as if the sender
                 * had made it that short (size = len). */
                CHECK(upd_msg_parse(copy, len, 0, &m, NULL) < 0);
                if (len >= 4) {
                        size = (uint32_t)len;
                        memcpy(copy, &size, 4);
                        /* At an attribute boundary after the mandatory
                         * ones this is a shorter valid message. */
                        if (upd_msg_parse(copy, len, 0, &m, NULL) >= 0) {
                                CHECK(len >= 32); /* header + NAME + STATE + OLD_PID */
                                CHECK_STREQ(m.name, "web");
                                upd_msg_done(&m);
                        }
                }
        }
}

TEST(builder_limits)
{
        char big[UPD_ARG_MAX + 1];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        upd_msg_begin(&b, UPD_MSG_UPDATE);
        upd_msg_put_str(&b, UPD_TAG_ARG, big); /* 4096 bytes: too long */
        CHECK_ERR(upd_msg_end(&b), E2BIG);
        big[100] = 0;
        upd_msg_begin(&b, UPD_MSG_UPDATE);
        for (int i = 0; i < 1000; i++)
                upd_msg_put_str(&b, UPD_TAG_ARG, big);
        CHECK_ERR(upd_msg_end(&b), E2BIG); /* over 64 KiB */
        /* long text is cut, not refused */
        char text[3000];
        memset(text, 'y', sizeof(text) - 1);
        text[sizeof(text) - 1] = 0;
        struct upd_msg m;
        upd_msg_begin(&b, UPD_MSG_REFUSE);
        upd_msg_put_str(&b, UPD_TAG_WHY, text);
        CHECK_OK(parse_b(0, &m));
        CHECK(strlen(m.why) == UPD_TEXT_MAX - 1);
}

TEST(too_many_args_refused)
{
        struct upd_msg m;

        upd_msg_begin(&b, UPD_MSG_UPDATE);
        for (int i = 0; i < UPD_ARGV_MAX + 1; i++)
                upd_msg_put_str(&b, UPD_TAG_ARG, "a");
        CHECK_ERR(parse_b(0, &m), EBADMSG);
}

TEST(socket_fds_travel_and_refusals_close_them)
{
        struct upd_msg m;
        struct errbuf err = {};
        int sp[2], p[2], fd = -1;
        size_t before;
        char c;

        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        before = count_fds();

        /* A READY with an fd: refused, the fd closed, connection usable. */
        upd_msg_begin(&b, UPD_MSG_READY);
        CHECK_OK(upd_msg_send(sp[0], &b, &p[0], 1));
        CHECK_ERR(upd_msg_recv(sp[1], &m, &fd, &err), EBADMSG);
        CHECK(count_fds() == before);

        /* An oversized packet: refused. */
        static uint8_t huge[UPD_MSG_MAX + 100];
        CHECK(send(sp[0], huge, sizeof(huge), 0) == (ssize_t)sizeof(huge));
        CHECK_ERR(upd_msg_recv(sp[1], &m, &fd, &err), EBADMSG);

        /* Then a good PRESERVE arrives with a working fd. */
        upd_msg_begin(&b, UPD_MSG_PRESERVE);
        upd_msg_put_str(&b, UPD_TAG_NAME, "pipe");
        upd_msg_put_u32(&b, UPD_TAG_SCHEMA, 9);
        CHECK_OK(upd_msg_send(sp[0], &b, &p[0], 1));
        CHECK_OK(upd_msg_recv(sp[1], &m, &fd, &err));
        CHECK(m.type == UPD_MSG_PRESERVE && m.schema == 9 && fd >= 0);
        CHECK_STREQ(m.name, "pipe");
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK(write(p[1], "z", 1) == 1);
        CHECK(read(fd, &c, 1) == 1 && c == 'z');
        close(fd);

        close(sp[0]);
        CHECK_ERR(upd_msg_recv(sp[1], &m, &fd, &err), ECONNRESET);
}

TEST(notify_parse)
{
        struct upd_notify_msg n;

        const char *t = "READY=1\nSTATUS=serving 3 clients\nMAINPID=12\nX-UNKNOWN=1";

        CHECK_OK(upd_notify_parse(t, strlen(t), &n));
        CHECK(n.ready && n.has_status && !n.fdstore);
        CHECK_STREQ(n.status, "serving 3 clients");
        CHECK_OK(upd_notify_parse("FDSTORE=1\nFDNAME=listener\n", 26, &n));
        CHECK(n.fdstore && !n.ready);
        CHECK_STREQ(n.fdname, "listener");
        CHECK_OK(upd_notify_parse("FDSTOREREMOVE=1\nFDNAME=x", 24, &n));
        CHECK(n.fdstoreremove);
        CHECK_OK(upd_notify_parse("FDSTORE=1", 9, &n));
        CHECK_STREQ(n.fdname, "stored"); /* systemd's default */
        CHECK_OK(upd_notify_parse("READY=0\nSTOPPING=1", 18, &n));
        CHECK(!n.ready && n.stopping);
        CHECK_ERR(upd_notify_parse("READY", 5, &n), EBADMSG);
        CHECK_ERR(upd_notify_parse("READY=1\0x=1", 11, &n), EBADMSG);
        CHECK_ERR(upd_notify_parse("FDNAME=a/b", 10, &n), EBADMSG);
        CHECK_ERR(upd_notify_parse("", 0, &n), EBADMSG);
}

TAP_MAIN()
