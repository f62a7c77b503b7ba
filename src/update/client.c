/* Control-socket client of client.h. */
#include "update/client.h"

#include "update/msgio.h"
#include "update/runtime.h"

#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int upd_client_connect(const char *name, int *ret_fd, struct errbuf *err)
{
        char dir[PATH_MAX];
        struct sockaddr_un sa;
        socklen_t len;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!upd_name_valid(name)) {
                errbuf_set(err, "invalid service name '%s' (1..63 of [A-Za-z0-9._-])", name);
                return -EINVAL;
        }
        r = upd_runtime_dir(dir, sizeof(dir));
        if (r < 0) {
                errbuf_set(err, "no runtime folder to find '%s' in (set LIVEUP_RUNTIME_DIR or "
                                "XDG_RUNTIME_DIR)", name);
                return r;
        }
        r = upd_runtime_addr(dir, name, "sock", &sa, &len);
        if (r < 0) {
                errbuf_set(err, "service name '%s' too long for a socket in %s", name, dir);
                return r;
        }
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
                r = -errno;
                if (r == -ENOENT || r == -ECONNREFUSED) {
                        errbuf_set(err, "unknown service '%s': no keeper answers at %s", name,
                                   sa.sun_path);
                        return -ENOENT;
                }
                if (r == -EACCES || r == -EPERM) {
                        errbuf_set(err, "cannot drive service '%s': permission denied (only "
                                        "root and the user running it may)", name);
                        return -EACCES;
                }
                errbuf_set(err, "cannot reach service '%s' at %s: %s", name, sa.sun_path,
                           strerror(-r));
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int upd_client_recv(int fd, int timeout_ms, struct upd_msg *ret, struct errbuf *err)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int extra = -EBADF;
        int r;

        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        r = upd_msg_recv(fd, ret, &extra, err);
        if (r == -ECONNRESET) {
                /* A keeper that closes while our request sits unread in
                 * its queue (a refusal at accept, before it reads) resets
                 * us, and recvmsg() reports that error before the queue:
                 * what it sent before closing (its RESULT) is still there.
                 * The error is consumed, so a second look finds it, or
                 * end of file (-ECONNRESET again), without blocking. */
                struct pollfd again = { .fd = fd, .events = POLLIN };
                if (poll(&again, 1, 0) > 0)
                        r = upd_msg_recv(fd, ret, &extra, err);
        }
        safe_close(extra);
        return r;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int upd_client_list(char ***ret_names, size_t *ret_n)
{
        char dir[PATH_MAX];
        _cleanup_closedir_ DIR *d = NULL;
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        int r;

        r = upd_runtime_dir(dir, sizeof(dir));
        if (r < 0)
                return r;
        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT) {
                        *ret_names = NULL;
                        *ret_n = 0;
                        return 0;
                }
                return -errno;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                char **nn;

                if (l <= 5 || strcmp(de->d_name + l - 5, ".sock") != 0)
                        continue;
                nn = realloc(names, (n + 1) * sizeof(*nn));
                if (!nn)
                        goto oom;
                names = nn;
                names[n] = strndup(de->d_name, l - 5);
                if (!names[n])
                        goto oom;
                n++;
        }
        if (n)
                qsort(names, n, sizeof(*names), cmp_str);
        *ret_names = names;
        *ret_n = n;
        return 0;
oom:
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return -ENOMEM;
}
