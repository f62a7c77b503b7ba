/* The keeper's NOTIFY_SOCKET (systemd's sd_notify protocol), so services
 * that link nothing are live-updatable: a SOCK_DGRAM socket with
 * SO_PASSCRED (the sender's pid tells which version spoke) taking
 * newline-separated KEY=VALUE datagrams, optionally with fds:
 * READY=1, STOPPING=1, STATUS=..., FDSTORE=1 + FDNAME=, FDSTOREREMOVE=1 +
 * FDNAME=, MAINPID= (ignored); unknown keys are ignored. */
#pragma once

#include "update/proto.h"

#include <sys/types.h>

#define UPD_NOTIFY_MAX 4096     /* bytes of one datagram */
#define UPD_NOTIFY_FDS_MAX 64   /* fds in one FDSTORE=1 datagram */

struct upd_notify_msg {
        pid_t pid; /* sender, from SCM_CREDENTIALS (0: unknown) */
        bool ready, stopping, fdstore, fdstoreremove, has_status;
        char fdname[UPD_NAME_MAX]; /* "stored" when FDNAME= was not given */
        char status[UPD_TEXT_MAX];
        int fds[UPD_NOTIFY_FDS_MAX];
        size_t n_fds;
};

/* Bind the socket at `path` (a stale one is replaced), mode 0600,
 * non-blocking, SO_PASSCRED. */
int upd_notify_bind(const char *path, int *ret_fd);

/* Parse the text of one datagram. -EBADMSG for garbage (a NUL, a line
 * without '=', an invalid FDNAME); fds are not touched. */
int upd_notify_parse(const char *text, size_t len, struct upd_notify_msg *ret);

/* Receive and parse one datagram. The fds in *ret are the caller's (also
 * when it returns -EBADMSG, they are closed first and n_fds is 0).
 * -EAGAIN when nothing is queued. */
int upd_notify_recv(int fd, struct upd_notify_msg *ret);
