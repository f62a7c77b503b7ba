/* The keeper's store of named fds: the items an old version preserved
 * for this update, and the systemd-style fd store (FDSTORE=1) that every
 * version started gets in LISTEN_FDS. Bounded (UPD_ITEMS_MAX); the store
 * owns its fds and closes them on remove/clear. */
#pragma once

#include "update/proto.h"

struct upd_item {
        char name[UPD_NAME_MAX];
        int fd;
        uint32_t schema;
};

struct upd_fdstore {
        struct upd_item *items;
        size_t n;
};

/* Add `fd` (ownership passes to the store, also on failure) under
 * `name`. replace: an item of that name is closed and replaced; else
 * names may repeat (systemd allows it). -ENOSPC when full. */
int upd_fdstore_put(struct upd_fdstore *s, const char *name, int fd, uint32_t schema,
                    bool replace);
/* Close and drop every item named `name`; -ENOENT when there was none. */
int upd_fdstore_remove(struct upd_fdstore *s, const char *name);
struct upd_item *upd_fdstore_find(struct upd_fdstore *s, const char *name);
void upd_fdstore_clear(struct upd_fdstore *s);

/* What `fd` is (enum upd_item_kind), for status; *ret_size gets a memfd's
 * size (else 0). */
uint32_t upd_fd_kind(int fd, uint64_t *ret_size);
/* Status description of item i. */
void upd_fdstore_info(const struct upd_fdstore *s, size_t i, struct upd_item_info *ret);
