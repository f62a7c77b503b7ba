/* Message I/O over SOCK_SEQPACKET; see msgio.h. One recvmsg() is one
 * packet, so a refused message never desynchronises the stream. The
 * receive buffer is one byte larger than the largest message, so an
 * oversized packet shows as MSG_TRUNC (or too long) and is refused. */
#include "update/msgio.h"

#include "base/fdpass.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int upd_msg_send(int sock, struct upd_msg_builder *b, const int *fds, size_t n_fds)
{
        int r = upd_msg_end(b);

        if (r < 0)
                return r;
        return fdpass_send(sock, b->buf, b->len, fds, n_fds);
}

int upd_msg_send_empty(int sock, enum upd_msg_type type)
{
        struct upd_msg_builder *b = malloc(sizeof(*b));
        int r;

        if (!b)
                return -ENOMEM;
        upd_msg_begin(b, type);
        r = upd_msg_send(sock, b, NULL, 0);
        free(b);
        return r;
}

int upd_msg_send_result(int sock, int error, const char *message)
{
        struct upd_msg_builder *b = malloc(sizeof(*b));
        int r;

        if (!b)
                return -ENOMEM;
        upd_msg_begin(b, UPD_MSG_RESULT);
        upd_msg_put_u32(b, UPD_TAG_ERROR, (uint32_t)(error < 0 ? -error : error));
        if (message)
                upd_msg_put_str(b, UPD_TAG_MESSAGE, message);
        r = upd_msg_send(sock, b, NULL, 0);
        free(b);
        return r;
}

int upd_msg_recv(int sock, struct upd_msg *ret, int *ret_fd, struct errbuf *err)
{
        union {
                char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
                struct cmsghdr align;
        } control;
        _cleanup_free_ uint8_t *buf = malloc(UPD_MSG_MAX + 1);
        struct iovec iov = { .iov_base = buf, .iov_len = UPD_MSG_MAX + 1 };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        int fds[FDPASS_MAX];
        size_t n_fds = 0;
        ssize_t n;
        int r;

        if (!buf)
                return -ENOMEM;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n_fds < ELEMENTSOF(fds))
                                fds[n_fds++] = fd;
                        else
                                close(fd);
                }
        }
        if (n == 0 && n_fds == 0)
                return -ECONNRESET;
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
                errbuf_set(err, "message or its fds truncated (over %d bytes?)", UPD_MSG_MAX);
                r = -EBADMSG;
        } else
                r = upd_msg_parse(buf, (size_t)n, n_fds, ret, err);
        if (r < 0) {
                for (size_t i = 0; i < n_fds; i++)
                        close(fds[i]);
                return r;
        }
        *ret_fd = n_fds > 0 ? fds[0] : -EBADF;
        return 0;
}
