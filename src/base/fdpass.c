/* SCM_RIGHTS helpers; see fdpass.h. */
#include "fdpass.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int fdpass_send(int sock, const void *data, size_t len, const int *fds, size_t n_fds)
{
        union {
                char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
                struct cmsghdr align;
        } control;
        struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (n_fds > FDPASS_MAX)
                return -E2BIG;
        if (n_fds > 0) {
                memset(&control, 0, sizeof(control));
                msg.msg_control = control.buf;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        do
                n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t)n != len)
                return -EMSGSIZE;
        return 0;
}

int fdpass_recv(int sock, void *buf, size_t size, size_t *ret_len, int *fds, size_t max_fds,
                size_t *ret_n_fds)
{
        union {
                char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
                struct cmsghdr align;
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        size_t got = 0;
        bool overflow = false;
        ssize_t n;

        do
                n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *in = (int *)CMSG_DATA(c);
                for (size_t i = 0; i < k; i++) {
                        if (got < max_fds)
                                fds[got++] = in[i];
                        else {
                                close(in[i]);
                                overflow = true;
                        }
                }
        }
        if (overflow || (msg.msg_flags & MSG_CTRUNC)) {
                for (size_t i = 0; i < got; i++)
                        close(fds[i]);
                return -EMSGSIZE;
        }
        if (n == 0 && got == 0 && size > 0)
                return -ECONNRESET;
        *ret_len = (size_t)n;
        *ret_n_fds = got;
        return 0;
}
