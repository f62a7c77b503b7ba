/* Named fd store of fdstore.h, and telling fd kinds apart (for status):
 * fstat for pipes, SO_DOMAIN/SO_ACCEPTCONN/SO_PROTOCOL for sockets, the
 * /proc/self/fd link for anonymous inodes ("anon_inode:[eventfd]") and
 * memfds ("/memfd:NAME (deleted)"). */
#include "update/fdstore.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

int upd_fdstore_put(struct upd_fdstore *s, const char *name, int fd, uint32_t schema,
                    bool replace)
{
        struct upd_item *items, *it;

        if (!upd_name_valid(name)) {
                safe_close(fd);
                return -EINVAL;
        }
        if (replace && (it = upd_fdstore_find(s, name))) {
                safe_close(it->fd);
                it->fd = fd;
                it->schema = schema;
                return 0;
        }
        if (s->n >= UPD_ITEMS_MAX) {
                safe_close(fd);
                return -ENOSPC;
        }
        items = realloc(s->items, (s->n + 1) * sizeof(*items));
        if (!items) {
                safe_close(fd);
                return -ENOMEM;
        }
        s->items = items;
        it = &items[s->n++];
        memset(it, 0, sizeof(*it));
        snprintf(it->name, sizeof(it->name), "%s", name);
        it->fd = fd;
        it->schema = schema;
        return 0;
}

int upd_fdstore_remove(struct upd_fdstore *s, const char *name)
{
        size_t j = 0;
        bool found = false;

        for (size_t i = 0; i < s->n; i++) {
                if (strcmp(s->items[i].name, name) == 0) {
                        safe_close(s->items[i].fd);
                        found = true;
                        continue;
                }
                s->items[j++] = s->items[i];
        }
        s->n = j;
        return found ? 0 : -ENOENT;
}

struct upd_item *upd_fdstore_find(struct upd_fdstore *s, const char *name)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->items[i].name, name) == 0)
                        return &s->items[i];
        return NULL;
}

void upd_fdstore_clear(struct upd_fdstore *s)
{
        for (size_t i = 0; i < s->n; i++)
                safe_close(s->items[i].fd);
        free(s->items);
        s->items = NULL;
        s->n = 0;
}

static int sockopt_int(int fd, int level, int opt)
{
        int v = 0;
        socklen_t l = sizeof(v);

        if (getsockopt(fd, level, opt, &v, &l) < 0)
                return -1;
        return v;
}

uint32_t upd_fd_kind(int fd, uint64_t *ret_size)
{
        char path[64], link[256];
        struct stat st;
        ssize_t n;

        *ret_size = 0;
        if (fstat(fd, &st) < 0)
                return UPD_ITEM_OTHER;
        if (S_ISFIFO(st.st_mode))
                return UPD_ITEM_PIPE;
        if (S_ISSOCK(st.st_mode)) {
                int dom = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN);
                if (dom == AF_UNIX)
                        return UPD_ITEM_UNIX;
                if ((dom == AF_INET || dom == AF_INET6) &&
                    sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP)
                        return sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) > 0
                                       ? UPD_ITEM_TCP_LISTEN
                                       : UPD_ITEM_TCP;
                return UPD_ITEM_OTHER;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return UPD_ITEM_OTHER;
        link[n] = 0;
        if (strcmp(link, "anon_inode:[eventfd]") == 0)
                return UPD_ITEM_EVENTFD;
        if (strncmp(link, "/memfd:", 7) == 0) {
                *ret_size = (uint64_t)st.st_size;
                return UPD_ITEM_MEMFD;
        }
        return UPD_ITEM_OTHER;
}

void upd_fdstore_info(const struct upd_fdstore *s, size_t i, struct upd_item_info *ret)
{
        const struct upd_item *it = &s->items[i];

        memset(ret, 0, sizeof(*ret));
        snprintf(ret->name, sizeof(ret->name), "%s", it->name);
        ret->schema = it->schema;
        ret->kind = upd_fd_kind(it->fd, &ret->size);
}
