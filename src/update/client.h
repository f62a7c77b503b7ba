/* The CLI's side of a keeper's control socket: connect by service name,
 * send one request, receive PROGRESS/RESULT/STATUS_REPLY. Errors carry a
 * message naming the service for the CLI to print. */
#pragma once

#include "update/proto.h"

/* -ENOENT: no keeper of that name (nothing answers); -EACCES: not
 * allowed to reach it; else what connect() said. */
int upd_client_connect(const char *name, int *ret_fd, struct errbuf *err);

/* Wait (poll, at most timeout_ms; < 0: no limit) for one message.
 * -ETIMEDOUT, -ECONNRESET when the keeper went away, -EBADMSG. */
int upd_client_recv(int fd, int timeout_ms, struct upd_msg *ret, struct errbuf *err);

/* Service names with a socket in the runtime folder (sorted); the caller
 * frees each and the array. */
int upd_client_list(char ***ret_names, size_t *ret_n);
