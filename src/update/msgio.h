/* Sending and receiving whole protocol messages (proto.h) on a
 * SOCK_SEQPACKET socket, with their fds (SCM_RIGHTS). Used by the keeper,
 * the CLI and libliveup. Whether a call blocks is the socket's business
 * (the keeper's sockets are non-blocking: -EAGAIN, never a wait). */
#pragma once

#include "update/proto.h"

/* Send the built message `b` with `n_fds` fds (0 or 1). MSG_NOSIGNAL: a
 * closed peer gives -EPIPE, not SIGPIPE. */
int upd_msg_send(int sock, struct upd_msg_builder *b, const int *fds, size_t n_fds);

/* Receive one message. Returns 0 and *ret (upd_msg_done() it) with
 * *ret_fd the fd it carried (-EBADF when none; O_CLOEXEC); -ECONNRESET at
 * end of stream; -EAGAIN when nothing is queued on a non-blocking socket;
 * -EBADMSG for a refused message (truncated, garbled, wrong fds: every fd
 * that came with it is closed, `err` says why; the connection stays
 * usable: the next packet is the next message). */
int upd_msg_recv(int sock, struct upd_msg *ret, int *ret_fd, struct errbuf *err);

/* Shorthands: a message without attributes, and RESULT{error, message}. */
int upd_msg_send_empty(int sock, enum upd_msg_type type);
int upd_msg_send_result(int sock, int error, const char *message);
