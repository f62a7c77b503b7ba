/* NOTIFY_SOCKET of notify.h: bind, receive (credentials + fds) and parse.
 * The parser keeps no state between datagrams; a datagram that does not
 * parse is dropped whole, its fds closed. */
#include "update/notify.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int upd_notify_bind(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        int one = 1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        if (chmod(path, 0600) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static bool key_is(const char *line, size_t len, const char *key, const char **ret_value,
                   size_t *ret_vlen)
{
        size_t k = strlen(key);

        if (len < k + 1 || memcmp(line, key, k) != 0 || line[k] != '=')
                return false;
        *ret_value = line + k + 1;
        *ret_vlen = len - k - 1;
        return true;
}

int upd_notify_parse(const char *text, size_t len, struct upd_notify_msg *ret)
{
        const char *p = text, *end = text + len;

        ret->ready = ret->stopping = ret->fdstore = ret->fdstoreremove = false;
        ret->has_status = false;
        snprintf(ret->fdname, sizeof(ret->fdname), "stored");
        ret->status[0] = 0;
        if (len == 0 || memchr(text, 0, len))
                return -EBADMSG;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                const char *v;
                size_t vl;

                if (l == 0) {
                        p += 1;
                        continue;
                }
                if (!memchr(p, '=', l))
                        return -EBADMSG;
                if (key_is(p, l, "READY", &v, &vl))
                        ret->ready = vl == 1 && v[0] == '1';
                else if (key_is(p, l, "STOPPING", &v, &vl))
                        ret->stopping = vl == 1 && v[0] == '1';
                else if (key_is(p, l, "FDSTORE", &v, &vl))
                        ret->fdstore = vl == 1 && v[0] == '1';
                else if (key_is(p, l, "FDSTOREREMOVE", &v, &vl))
                        ret->fdstoreremove = vl == 1 && v[0] == '1';
                else if (key_is(p, l, "FDNAME", &v, &vl)) {
                        if (vl == 0 || vl >= sizeof(ret->fdname))
                                return -EBADMSG;
                        memcpy(ret->fdname, v, vl);
                        ret->fdname[vl] = 0;
                        if (!upd_name_valid(ret->fdname))
                                return -EBADMSG;
                } else if (key_is(p, l, "STATUS", &v, &vl)) {
                        vl = MIN(vl, sizeof(ret->status) - 1);
                        memcpy(ret->status, v, vl);
                        ret->status[vl] = 0;
                        ret->has_status = true;
                }
                /* MAINPID= and unknown keys: ignored. */
                p += l + (nl ? 1 : 0);
        }
        return 0;
}

int upd_notify_recv(int fd, struct upd_notify_msg *ret)
{
        union {
                char buf[CMSG_SPACE(sizeof(struct ucred)) +
                         CMSG_SPACE(sizeof(int) * UPD_NOTIFY_FDS_MAX)];
                struct cmsghdr align;
        } control;
        char text[UPD_NOTIFY_MAX + 1];
        struct iovec iov = { .iov_base = text, .iov_len = sizeof(text) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        ssize_t n;
        int r;

        memset(ret, 0, sizeof(*ret));
        do
                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                        struct ucred uc;
                        memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                        ret->pid = uc.pid;
                } else if (c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int f;
                                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                if (ret->n_fds < UPD_NOTIFY_FDS_MAX)
                                        ret->fds[ret->n_fds++] = f;
                                else
                                        close(f);
                        }
                }
        }
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                r = -EBADMSG;
        else
                r = upd_notify_parse(text, (size_t)n, ret);
        if (r < 0) {
                for (size_t i = 0; i < ret->n_fds; i++)
                        close(ret->fds[i]);
                ret->n_fds = 0;
        }
        return r;
}
