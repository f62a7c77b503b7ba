/* Where keepers put their sockets (docs/internals/update.md): the folder
 * $LIVEUP_RUNTIME_DIR, else /run/liveup as root, else
 * $XDG_RUNTIME_DIR/liveup; in it NAME.sock (control, SOCK_SEQPACKET) and
 * NAME.notify (NOTIFY_SOCKET, SOCK_DGRAM). */
#pragma once

#include "base/macro.h"

#include <sys/un.h>

/* The folder, into buf; -ENXIO when no folder can be chosen (not root
 * and no XDG_RUNTIME_DIR), -ENAMETOOLONG. */
int upd_runtime_dir(char *buf, size_t size);
/* Create it (0700) if missing; the parent must exist. */
int upd_runtime_mkdir(const char *dir);
/* dir/NAME.suffix as a socket address; -ENAMETOOLONG when it does not fit
 * in sun_path. */
int upd_runtime_addr(const char *dir, const char *name, const char *suffix,
                     struct sockaddr_un *ret, socklen_t *ret_len);
