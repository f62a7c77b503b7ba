/* The keeper's wire format (docs/internals/update.md, "Wire format"):
 * one message per SOCK_SEQPACKET packet, at most UPD_MSG_MAX bytes,
 *
 *     struct { uint32_t size; uint16_t type; uint16_t flags; }   flags = 0
 *     then attributes { uint16_t tag; uint16_t len; uint8_t value[len]; }
 *     each padded with zeros to 4 bytes
 *
 * in host byte order (both ends are on one machine). The keeper numbers
 * its updates: PREPARE and FREEZE carry COUNT = the update's number and
 * the old version's answers (PRESERVE, UNPRESERVE, PREPARED, FROZEN,
 * REFUSE) echo it, so an answer to an update that was cancelled meanwhile
 * is not taken for one to the next. Message types and
 * attribute tags come from the X-macro tables below: a type lists the
 * tags it must carry, the ones it may carry and how many fds ride along
 * (exactly that many). The same codec serves keeper <-> service and
 * keeper <-> CLI, and is compiled into libliveup.
 *
 * upd_msg_parse() is a pure function of its input (fuzzed in
 * tests/fuzz/fuzz-upd-msg.c); it copies what it keeps, so the buffer may
 * go once it returns. A parsed message may own memory (argv, items):
 * upd_msg_done() releases it. */
#pragma once

#include "base/macro.h"
#include "base/util.h"

#include <stdint.h>

#define UPD_PROTO_VERSION 1
#define UPD_MSG_MAX 65536
#define UPD_NAME_MAX 64   /* = LIVEUP_NAME_MAX: at most 63 bytes + NUL */
#define UPD_TEXT_MAX 1024 /* free text: at most 1023 bytes + NUL */
#define UPD_ARG_MAX 4096  /* one argv element, NUL included */
#define UPD_ARGV_MAX 256
#define UPD_ITEMS_MAX 1024
#define UPD_HEADER_SIZE 8

/* Value kinds of attributes. */
enum upd_kind {
        UPD_KIND_U32,  /* 4 bytes */
        UPD_KIND_U64,  /* 8 bytes */
        UPD_KIND_NAME, /* 1..63 bytes of [A-Za-z0-9._-] */
        UPD_KIND_TEXT, /* 0..1023 bytes, no NUL */
        UPD_KIND_ARG,  /* 1..4095 bytes, no NUL; repeatable, in order */
        UPD_KIND_ITEM, /* u32 schema, u32 kind, u64 size, name; repeatable */
};

/* X(TAG, number, kind, field of struct upd_msg) */
#define UPD_TAGS(X)                                                            \
        X(PROTO, 1, U32, proto)                                                \
        X(GENERATION, 2, U32, generation)                                      \
        X(PID, 3, U32, pid)                                                    \
        X(NAME, 4, NAME, name)                                                 \
        X(SCHEMA, 5, U32, schema)                                              \
        X(MIN, 6, U32, min)                                                    \
        X(MAX, 7, U32, max)                                                    \
        X(WHY, 8, TEXT, why)                                                   \
        X(REASON, 9, U32, reason)                                              \
        X(COUNT, 10, U32, count)                                               \
        X(FRESH, 11, U32, fresh)                                               \
        X(ARG, 12, ARG, argv)                                                  \
        X(HOLD, 13, U32, hold)                                                 \
        X(TIMEOUT_MS, 14, U32, timeout_ms)                                     \
        X(STATE, 15, U32, state)                                               \
        X(DETAIL, 16, TEXT, detail)                                            \
        X(ERROR, 17, U32, error)                                               \
        X(MESSAGE, 18, TEXT, message)                                          \
        X(OLD_PID, 19, U32, old_pid)                                           \
        X(NEW_PID, 20, U32, new_pid)                                           \
        X(UPTIME_MS, 21, U64, uptime_ms)                                       \
        X(UPDATES, 22, U32, updates)                                           \
        X(LAST_ERROR, 23, U32, last_error)                                     \
        X(LAST_MESSAGE, 24, TEXT, last_message)                                \
        X(LAST_DURATION_MS, 25, U64, last_duration_ms)                         \
        X(ITEM_INFO, 26, ITEM, items)                                          \
        X(SVC_STATUS, 27, TEXT, svc_status)                                    \
        X(PROTOCOL, 28, U32, protocol)                                         \
        X(KEEPER_PID, 29, U32, keeper_pid)

enum upd_tag {
#define X(t, n, k, f) UPD_TAG_##t = n,
        UPD_TAGS(X)
#undef X
};
#define UPD_TAG_LIMIT 64 /* tags are < 64: one bit each in a uint64_t */
#define UPD_B(t) (UINT64_C(1) << UPD_TAG_##t)

/* X(TYPE, number, fds, mandatory tags, optional tags) */
#define UPD_MSG_TYPES(X)                                                                   \
        /* service -> keeper */                                                           \
        X(HELLO, 1, 0, UPD_B(PROTO) | UPD_B(GENERATION) | UPD_B(PID), 0)                   \
        X(PRESERVE, 2, 1, UPD_B(NAME) | UPD_B(SCHEMA), UPD_B(COUNT))                                  \
        X(UNPRESERVE, 3, 0, UPD_B(NAME), UPD_B(COUNT))                                                \
        X(PREPARED, 4, 0, 0, UPD_B(COUNT))                                                            \
        X(FROZEN, 5, 0, 0, UPD_B(COUNT))                                                              \
        X(REFUSE, 6, 0, UPD_B(WHY), UPD_B(COUNT))                                                     \
        X(ACCEPT, 7, 0, UPD_B(NAME) | UPD_B(MIN) | UPD_B(MAX), 0)                          \
        X(TAKEOVER, 8, 0, 0, 0)                                                            \
        X(READY, 9, 0, 0, 0)                                                               \
        /* keeper -> service */                                                           \
        X(PREPARE, 32, 0, 0, UPD_B(COUNT))                                                            \
        X(FREEZE, 33, 0, 0, UPD_B(COUNT))                                                             \
        X(CANCEL, 34, 0, 0, UPD_B(REASON))                                                 \
        X(FINISH, 35, 0, 0, 0)                                                             \
        X(ITEM, 36, 1, UPD_B(NAME) | UPD_B(SCHEMA), 0)                                     \
        X(ITEMS_END, 37, 0, UPD_B(COUNT), UPD_B(FRESH))                                    \
        X(TAKEOVER_REFUSED, 38, 0, UPD_B(WHY), 0)                                          \
        X(COMMITTED, 39, 0, 0, 0)                                                          \
        /* CLI -> keeper (FINISH and CANCEL above serve too) */                            \
        X(UPDATE, 64, 0, 0, UPD_B(ARG) | UPD_B(HOLD) | UPD_B(TIMEOUT_MS))                  \
        X(STATUS, 65, 0, 0, 0)                                                             \
        /* keeper -> CLI */                                                               \
        X(PROGRESS, 96, 0, UPD_B(STATE), UPD_B(DETAIL))                                    \
        X(RESULT, 97, 0, UPD_B(ERROR), UPD_B(MESSAGE))                                     \
        X(STATUS_REPLY, 98, 0, UPD_B(NAME) | UPD_B(STATE) | UPD_B(OLD_PID),                \
          UPD_B(NEW_PID) | UPD_B(GENERATION) | UPD_B(ARG) | UPD_B(UPTIME_MS) |              \
                  UPD_B(UPDATES) | UPD_B(LAST_ERROR) | UPD_B(LAST_MESSAGE) |               \
                  UPD_B(LAST_DURATION_MS) | UPD_B(ITEM_INFO) | UPD_B(SVC_STATUS) |         \
                  UPD_B(PROTOCOL) | UPD_B(KEEPER_PID))

enum upd_msg_type {
#define X(t, n, fds, mand, opt) UPD_MSG_##t = n,
        UPD_MSG_TYPES(X)
#undef X
};

/* What a preserved item is, from fstat/getsockopt (status output). */
#define UPD_ITEM_KINDS(X)                                                      \
        X(OTHER, "other")                                                      \
        X(TCP_LISTEN, "tcp-listen")                                            \
        X(TCP, "tcp")                                                          \
        X(UNIX, "unix")                                                        \
        X(PIPE, "pipe")                                                        \
        X(EVENTFD, "eventfd")                                                  \
        X(MEMFD, "memfd")

enum upd_item_kind {
#define X(k, s) UPD_ITEM_##k,
        UPD_ITEM_KINDS(X)
#undef X
        _UPD_ITEM_KIND_MAX,
};

struct upd_item_info {
        char name[UPD_NAME_MAX];
        uint32_t schema;
        uint32_t kind; /* enum upd_item_kind */
        uint64_t size; /* memfd size, else 0 */
};

/* A parsed message. `present` has bit n set when tag n was there. */
struct upd_msg {
        enum upd_msg_type type;
        uint64_t present;
        uint32_t proto, generation, pid, schema, min, max, reason, count, fresh, hold,
                timeout_ms, state, error, old_pid, new_pid, updates, last_error, protocol,
                keeper_pid;
        uint64_t uptime_ms, last_duration_ms;
        char name[UPD_NAME_MAX];
        char why[UPD_TEXT_MAX], detail[UPD_TEXT_MAX], message[UPD_TEXT_MAX],
                last_message[UPD_TEXT_MAX], svc_status[UPD_TEXT_MAX];
        char **argv; /* NULL-terminated when n_argv > 0 */
        size_t n_argv;
        struct upd_item_info *items;
        size_t n_items;
};

static inline bool upd_msg_has(const struct upd_msg *m, enum upd_tag t)
{
        return (m->present >> t) & 1;
}

/* Parse one packet that arrived with `n_fds` fds. On success *ret is
 * filled (release it with upd_msg_done()); on failure -EBADMSG (or
 * -ENOMEM) and `err` says what was wrong; *ret is then empty. */
int upd_msg_parse(const void *buf, size_t len, size_t n_fds, struct upd_msg *ret,
                  struct errbuf *err);
void upd_msg_done(struct upd_msg *m);

/* Names: the message type's name ("HELLO"), NULL when unknown. */
const char *upd_msg_type_name(uint16_t type);
/* The number of fds a message type carries (0 for unknown types). */
unsigned upd_msg_type_fds(uint16_t type);
const char *upd_item_kind_name(uint32_t kind);
/* True when `s` is a valid item or service name (1..63 bytes of
 * [A-Za-z0-9._-]). */
bool upd_name_valid(const char *s);

/* Building a message: init, put attributes, then use buf/len. The first
 * error sticks in `error` (a value that does not fit gives -E2BIG, an
 * invalid name -EINVAL); upd_msg_end() returns it. Text longer than
 * UPD_TEXT_MAX - 1 is cut, never refused (it is for humans). */
struct upd_msg_builder {
        uint8_t buf[UPD_MSG_MAX];
        size_t len;
        int error;
};

void upd_msg_begin(struct upd_msg_builder *b, enum upd_msg_type type);
void upd_msg_put_u32(struct upd_msg_builder *b, enum upd_tag tag, uint32_t v);
void upd_msg_put_u64(struct upd_msg_builder *b, enum upd_tag tag, uint64_t v);
/* NAME, TEXT and ARG tags. */
void upd_msg_put_str(struct upd_msg_builder *b, enum upd_tag tag, const char *s);
void upd_msg_put_item(struct upd_msg_builder *b, const struct upd_item_info *it);
/* Raw attribute, for tests: no checks on the value. */
void upd_msg_put_raw(struct upd_msg_builder *b, uint16_t tag, const void *v, size_t len);
int upd_msg_end(struct upd_msg_builder *b);

/* CANCEL{reason}: the numbers of enum liveup_cancel_reason (liveup.h;
 * libliveup checks they agree). */
enum {
        UPD_CANCEL_REQUESTED = 1,
        UPD_CANCEL_REFUSED = 2,
        UPD_CANCEL_NEW_FAILED = 3,
        UPD_CANCEL_KEEPER_LOST = 4,
};

/* STATUS_REPLY{protocol}: how the serving version talks to the keeper. */
enum {
        UPD_PROTOCOL_NONE = 0,    /* nothing heard yet */
        UPD_PROTOCOL_LIB = 1,     /* libliveup (HELLO) */
        UPD_PROTOCOL_NOTIFY = 2,  /* systemd NOTIFY_SOCKET only */
};
