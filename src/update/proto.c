/* The wire codec of proto.h: building and parsing messages.
 *
 * The parser trusts nothing: every length is checked against what is
 * left of the packet before it is read, values are copied out (strings
 * NUL-terminated), and a message is refused as a whole on the first
 * fault: size not the packet's, flags set, unknown type, unknown or
 * duplicate tag (ARG and ITEM_INFO may repeat), a tag the type does not
 * take, an attribute running past the end, bad value length, a string
 * with a NUL or too long, a name outside [A-Za-z0-9._-], nonzero padding,
 * a missing mandatory tag, or a number of fds other than the type's. It
 * allocates only for argv and items and frees that on refusal. */
#include "update/proto.h"

#include <stddef.h>
#include <string.h>

struct tag_desc {
        const char *name;
        enum upd_kind kind;
        size_t offset; /* of the field in struct upd_msg */
        size_t size;
};

static const struct tag_desc tag_descs[UPD_TAG_LIMIT] = {
#define X(t, n, k, f)                                                          \
        [n] = { #t, UPD_KIND_##k, offsetof(struct upd_msg, f),                 \
                sizeof(((struct upd_msg *)0)->f) },
        UPD_TAGS(X)
#undef X
};

struct type_desc {
        uint16_t type;
        const char *name;
        unsigned fds;
        uint64_t mandatory;
        uint64_t optional;
};

static const struct type_desc type_descs[] = {
#define X(t, n, f, mand, opt) { n, #t, f, mand, opt },
        UPD_MSG_TYPES(X)
#undef X
};

static const char *const item_kind_names[] = {
#define X(k, s) [UPD_ITEM_##k] = s,
        UPD_ITEM_KINDS(X)
#undef X
};

static const struct type_desc *find_type(uint16_t type)
{
        for (size_t i = 0; i < ELEMENTSOF(type_descs); i++)
                if (type_descs[i].type == type)
                        return &type_descs[i];
        return NULL;
}

const char *upd_msg_type_name(uint16_t type)
{
        const struct type_desc *d = find_type(type);

        return d ? d->name : NULL;
}

unsigned upd_msg_type_fds(uint16_t type)
{
        const struct type_desc *d = find_type(type);

        return d ? d->fds : 0;
}

const char *upd_item_kind_name(uint32_t kind)
{
        if (kind >= _UPD_ITEM_KIND_MAX)
                return "other";
        return item_kind_names[kind];
}

static bool name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

static bool name_valid_n(const char *s, size_t n)
{
        if (n == 0 || n >= UPD_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!name_char(s[i]))
                        return false;
        return true;
}

bool upd_name_valid(const char *s)
{
        return s && name_valid_n(s, strnlen(s, UPD_NAME_MAX));
}

/* ---- parsing ------------------------------------------------------------ */

void upd_msg_done(struct upd_msg *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n_argv; i++)
                free(m->argv[i]);
        free(m->argv);
        free(m->items);
        m->argv = NULL;
        m->items = NULL;
        m->n_argv = m->n_items = 0;
}

static uint16_t get16(const uint8_t *p)
{
        uint16_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

static uint32_t get32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

static uint64_t get64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

static int add_arg(struct upd_msg *m, const uint8_t *v, size_t len, struct errbuf *err)
{
        char **a;

        if (len == 0 || len >= UPD_ARG_MAX || memchr(v, 0, len)) {
                errbuf_set(err, "argument %zu is empty, too long or has a NUL", m->n_argv);
                return -EBADMSG;
        }
        if (m->n_argv >= UPD_ARGV_MAX) {
                errbuf_set(err, "more than %d arguments", UPD_ARGV_MAX);
                return -EBADMSG;
        }
        a = realloc(m->argv, (m->n_argv + 2) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        m->argv = a;
        a[m->n_argv] = strndup((const char *)v, len);
        if (!a[m->n_argv])
                return -ENOMEM;
        a[++m->n_argv] = NULL;
        return 0;
}

static int add_item(struct upd_msg *m, const uint8_t *v, size_t len, struct errbuf *err)
{
        struct upd_item_info *items, *it;
        size_t nlen;

        if (len <= 16 || !name_valid_n((const char *)v + 16, len - 16)) {
                errbuf_set(err, "item %zu: bad length or name", m->n_items);
                return -EBADMSG;
        }
        if (m->n_items >= UPD_ITEMS_MAX) {
                errbuf_set(err, "more than %d items", UPD_ITEMS_MAX);
                return -EBADMSG;
        }
        items = realloc(m->items, (m->n_items + 1) * sizeof(*items));
        if (!items)
                return -ENOMEM;
        m->items = items;
        it = &items[m->n_items++];
        memset(it, 0, sizeof(*it));
        it->schema = get32(v);
        it->kind = get32(v + 4);
        it->size = get64(v + 8);
        nlen = len - 16;
        memcpy(it->name, v + 16, nlen);
        it->name[nlen] = 0;
        return 0;
}

static int parse_attr(struct upd_msg *m, uint16_t tag, const uint8_t *v, size_t len,
                      struct errbuf *err)
{
        const struct tag_desc *d = &tag_descs[tag];
        char *field = (char *)m + d->offset;

        switch (d->kind) {
        case UPD_KIND_U32:
                if (len != 4)
                        goto bad_len;
                *(uint32_t *)(void *)field = get32(v);
                return 0;
        case UPD_KIND_U64:
                if (len != 8)
                        goto bad_len;
                *(uint64_t *)(void *)field = get64(v);
                return 0;
        case UPD_KIND_NAME:
                if (!name_valid_n((const char *)v, len)) {
                        errbuf_set(err, "attribute %s is not a valid name", d->name);
                        return -EBADMSG;
                }
                memcpy(field, v, len);
                field[len] = 0;
                return 0;
        case UPD_KIND_TEXT:
                if (len >= d->size || memchr(v, 0, len)) {
                        errbuf_set(err, "attribute %s is too long or has a NUL", d->name);
                        return -EBADMSG;
                }
                memcpy(field, v, len);
                field[len] = 0;
                return 0;
        case UPD_KIND_ARG:
                return add_arg(m, v, len, err);
        case UPD_KIND_ITEM:
                return add_item(m, v, len, err);
        }
bad_len:
        errbuf_set(err, "attribute %s has length %zu", d->name, len);
        return -EBADMSG;
}

static bool repeatable(uint16_t tag)
{
        return tag_descs[tag].kind == UPD_KIND_ARG || tag_descs[tag].kind == UPD_KIND_ITEM;
}

static int parse(const uint8_t *p, size_t len, size_t n_fds, struct upd_msg *m,
                 struct errbuf *err)
{
        const struct type_desc *td;
        uint32_t size;
        uint16_t type, flags;
        size_t off;
        uint64_t missing;
        int r;

        if (len < UPD_HEADER_SIZE || len > UPD_MSG_MAX) {
                errbuf_set(err, "message of %zu bytes (header is %d, limit %d)", len,
                           UPD_HEADER_SIZE, UPD_MSG_MAX);
                return -EBADMSG;
        }
        size = get32(p);
        type = get16(p + 4);
        flags = get16(p + 6);
        if (size != len) {
                errbuf_set(err, "message says %u bytes, packet has %zu", size, len);
                return -EBADMSG;
        }
        if (flags != 0) {
                errbuf_set(err, "message flags 0x%x (must be 0)", flags);
                return -EBADMSG;
        }
        td = find_type(type);
        if (!td) {
                errbuf_set(err, "unknown message type %u", type);
                return -EBADMSG;
        }
        m->type = type;
        if (n_fds != td->fds) {
                errbuf_set(err, "%s message came with %zu fds (takes %u)", td->name, n_fds,
                           td->fds);
                return -EBADMSG;
        }

        off = UPD_HEADER_SIZE;
        while (off < len) {
                uint16_t tag, alen;
                size_t padded;

                if (len - off < 4) {
                        errbuf_set(err, "%s: truncated attribute header at byte %zu",
                                   td->name, off);
                        return -EBADMSG;
                }
                tag = get16(p + off);
                alen = get16(p + off + 2);
                padded = ALIGN_UP((size_t)alen, (size_t)4);
                if (padded > len - off - 4) {
                        errbuf_set(err, "%s: attribute %u at byte %zu runs past the end",
                                   td->name, tag, off);
                        return -EBADMSG;
                }
                if (tag >= UPD_TAG_LIMIT || !tag_descs[tag].name ||
                    !(((td->mandatory | td->optional) >> tag) & 1)) {
                        errbuf_set(err, "%s: unexpected attribute %u", td->name, tag);
                        return -EBADMSG;
                }
                if (((m->present >> tag) & 1) && !repeatable(tag)) {
                        errbuf_set(err, "%s: duplicate attribute %s", td->name,
                                   tag_descs[tag].name);
                        return -EBADMSG;
                }
                for (size_t i = alen; i < padded; i++)
                        if (p[off + 4 + i] != 0) {
                                errbuf_set(err, "%s: nonzero padding after %s", td->name,
                                           tag_descs[tag].name);
                                return -EBADMSG;
                        }
                r = parse_attr(m, tag, p + off + 4, alen, err);
                if (r < 0)
                        return r;
                m->present |= UINT64_C(1) << tag;
                off += 4 + padded;
        }

        missing = td->mandatory & ~m->present;
        if (missing) {
                errbuf_set(err, "%s: missing attribute %s", td->name,
                           tag_descs[__builtin_ctzll(missing)].name);
                return -EBADMSG;
        }
        return 0;
}

int upd_msg_parse(const void *buf, size_t len, size_t n_fds, struct upd_msg *ret,
                  struct errbuf *err)
{
        int r;

        memset(ret, 0, sizeof(*ret));
        r = parse(buf, len, n_fds, ret, err);
        if (r < 0) {
                upd_msg_done(ret);
                memset(ret, 0, sizeof(*ret));
        }
        return r;
}

/* ---- building ----------------------------------------------------------- */

void upd_msg_begin(struct upd_msg_builder *b, enum upd_msg_type type)
{
        uint16_t t = (uint16_t)type, flags = 0;

        memset(b->buf, 0, UPD_HEADER_SIZE);
        memcpy(b->buf + 4, &t, sizeof(t));
        memcpy(b->buf + 6, &flags, sizeof(flags));
        b->len = UPD_HEADER_SIZE;
        b->error = 0;
}

static uint8_t *put_begin(struct upd_msg_builder *b, uint16_t tag, size_t len)
{
        size_t padded = ALIGN_UP(len, (size_t)4);
        uint16_t l16 = (uint16_t)len;

        if (b->error)
                return NULL;
        if (len > UINT16_MAX || padded + 4 > UPD_MSG_MAX - b->len) {
                b->error = -E2BIG;
                return NULL;
        }
        memcpy(b->buf + b->len, &tag, sizeof(tag));
        memcpy(b->buf + b->len + 2, &l16, sizeof(l16));
        memset(b->buf + b->len + 4, 0, padded);
        b->len += 4 + padded;
        return b->buf + b->len - padded;
}

void upd_msg_put_raw(struct upd_msg_builder *b, uint16_t tag, const void *v, size_t len)
{
        uint8_t *p = put_begin(b, tag, len);

        if (p && len)
                memcpy(p, v, len);
}

void upd_msg_put_u32(struct upd_msg_builder *b, enum upd_tag tag, uint32_t v)
{
        upd_msg_put_raw(b, tag, &v, sizeof(v));
}

void upd_msg_put_u64(struct upd_msg_builder *b, enum upd_tag tag, uint64_t v)
{
        upd_msg_put_raw(b, tag, &v, sizeof(v));
}

void upd_msg_put_str(struct upd_msg_builder *b, enum upd_tag tag, const char *s)
{
        size_t len = strlen(s);

        switch (tag_descs[tag].kind) {
        case UPD_KIND_NAME:
                if (!name_valid_n(s, len)) {
                        if (!b->error)
                                b->error = -EINVAL;
                        return;
                }
                break;
        case UPD_KIND_TEXT:
                len = MIN(len, (size_t)UPD_TEXT_MAX - 1);
                break;
        case UPD_KIND_ARG:
                if (len == 0 || len >= UPD_ARG_MAX) {
                        if (!b->error)
                                b->error = len ? -E2BIG : -EINVAL;
                        return;
                }
                break;
        default:
                if (!b->error)
                        b->error = -EINVAL;
                return;
        }
        upd_msg_put_raw(b, tag, s, len);
}

void upd_msg_put_item(struct upd_msg_builder *b, const struct upd_item_info *it)
{
        size_t nlen = strnlen(it->name, UPD_NAME_MAX);
        uint8_t *p;

        if (!name_valid_n(it->name, nlen)) {
                if (!b->error)
                        b->error = -EINVAL;
                return;
        }
        p = put_begin(b, UPD_TAG_ITEM_INFO, 16 + nlen);
        if (!p)
                return;
        memcpy(p, &it->schema, 4);
        memcpy(p + 4, &it->kind, 4);
        memcpy(p + 8, &it->size, 8);
        memcpy(p + 16, it->name, nlen);
}

int upd_msg_end(struct upd_msg_builder *b)
{
        uint32_t size = (uint32_t)b->len;

        if (b->error)
                return b->error;
        memcpy(b->buf, &size, sizeof(size));
        return 0;
}
