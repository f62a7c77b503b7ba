/* Passing file descriptors over Unix sockets (SCM_RIGHTS).
 *
 * One message carries at most FDPASS_MAX fds (the kernel's SCM_MAX_FD is
 * 253) plus a small payload. Received fds are O_CLOEXEC. A message whose
 * control data was truncated (MSG_CTRUNC) is refused with -EMSGSIZE after
 * closing whatever fds did arrive, so nothing leaks. */
#pragma once

#include "macro.h"

#define FDPASS_MAX 253

/* Send `len` bytes of `data` (len >= 1 on stream sockets) with `n_fds` fds. */
int fdpass_send(int sock, const void *data, size_t len, const int *fds, size_t n_fds);

/* Receive one message: up to `size` bytes into `buf` (*ret_len set), and up
 * to `max_fds` fds into `fds` (*ret_n_fds set). Returns -EMSGSIZE when more
 * fds arrived than fit, -ECONNRESET on end of stream. */
int fdpass_recv(int sock, void *buf, size_t size, size_t *ret_len, int *fds, size_t max_fds,
                size_t *ret_n_fds);
