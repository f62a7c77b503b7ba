/* Runtime folder and socket addresses; see runtime.h. */
#include "update/runtime.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

int upd_runtime_dir(char *buf, size_t size)
{
        const char *e = getenv("LIVEUP_RUNTIME_DIR");
        int n;

        if (e && *e)
                n = snprintf(buf, size, "%s", e);
        else if (geteuid() == 0)
                n = snprintf(buf, size, "/run/liveup");
        else if ((e = getenv("XDG_RUNTIME_DIR")) && *e)
                n = snprintf(buf, size, "%s/liveup", e);
        else
                return -ENXIO;
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int upd_runtime_mkdir(const char *dir)
{
        struct stat st;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

int upd_runtime_addr(const char *dir, const char *name, const char *suffix,
                     struct sockaddr_un *ret, socklen_t *ret_len)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n;

        n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.%s", dir, name, suffix);
        if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        *ret = sa;
        *ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
        return 0;
}
