/* /proc parsing; see procfs.h. */
#include "procfs.h"
#include "util.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

static int errno_for_proc(int r)
{
        /* A vanished /proc/PID reads as ENOENT; callers want ESRCH. */
        return r == -ENOENT ? -ESRCH : r;
}

static int parse_map_line(char *line, struct procfs_map *ret)
{
        struct procfs_map m = {};
        char perms[5] = {};
        int path_off = 0;
        unsigned long long start, end, off, inode;

        if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms,
                   &off, &m.dev_major, &m.dev_minor, &inode, &path_off) < 7)
                return -EINVAL;
        m.start = start;
        m.end = end;
        m.offset = off;
        m.inode = inode;
        if (perms[0] == 'r')
                m.perms |= PROCFS_PERM_R;
        if (perms[1] == 'w')
                m.perms |= PROCFS_PERM_W;
        if (perms[2] == 'x')
                m.perms |= PROCFS_PERM_X;
        if (perms[3] == 's')
                m.perms |= PROCFS_PERM_SHARED;

        const char *p = path_off > 0 ? line + path_off : "";
        while (*p == ' ')
                p++;
        size_t len = strlen(p);
        while (len > 0 && p[len - 1] == '\n')
                len--;
        static const char deleted[] = " (deleted)";
        if (len >= sizeof(deleted) - 1 &&
            memcmp(p + len - (sizeof(deleted) - 1), deleted, sizeof(deleted) - 1) == 0) {
                m.deleted = true;
                len -= sizeof(deleted) - 1;
        }
        m.path = strndup(p, len);
        if (!m.path)
                return -ENOMEM;
        *ret = m;
        return 0;
}

int procfs_maps_read(pid_t pid, struct procfs_maps *ret)
{
        char path[64];
        _cleanup_free_ char *text = NULL;
        struct procfs_maps m = {};
        size_t cap = 0;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/maps", pid);
        r = read_file_str(path, &text, NULL);
        if (r < 0)
                return errno_for_proc(r);

        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (m.n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct procfs_map *nm = realloc(m.maps, ncap * sizeof(*nm));
                        if (!nm) {
                                procfs_maps_done(&m);
                                return -ENOMEM;
                        }
                        m.maps = nm;
                        cap = ncap;
                }
                r = parse_map_line(line, &m.maps[m.n]);
                if (r < 0) {
                        procfs_maps_done(&m);
                        return r;
                }
                m.n++;
        }
        *ret = m;
        return 0;
}

void procfs_maps_done(struct procfs_maps *m)
{
        for (size_t i = 0; i < m->n; i++)
                free(m->maps[i].path);
        free(m->maps);
        m->maps = NULL;
        m->n = 0;
}

const struct procfs_map *procfs_maps_find(const struct procfs_maps *m, uint64_t addr)
{
        size_t lo = 0, hi = m->n;

        /* /proc/PID/maps is sorted by address. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (addr < m->maps[mid].start)
                        hi = mid;
                else if (addr >= m->maps[mid].end)
                        lo = mid + 1;
                else
                        return &m->maps[mid];
        }
        return NULL;
}

static bool same_object(const struct procfs_object *o, const struct procfs_map *m)
{
        if (m->inode != 0)
                return o->inode == m->inode && o->dev_major == m->dev_major &&
                       o->dev_minor == m->dev_minor;
        return o->inode == 0 && strcmp(o->path, m->path) == 0;
}

int procfs_objects(const struct procfs_maps *m, struct procfs_object **ret, size_t *ret_n)
{
        struct procfs_object *objs = NULL;
        size_t n = 0;

        for (size_t i = 0; i < m->n; i++) {
                const struct procfs_map *map = &m->maps[i];
                struct procfs_object *o = NULL;

                /* Anonymous mappings are not objects; bracketed names are. */
                if (map->path[0] == 0)
                        continue;
                /* The same file mapped again at offset 0 is another copy
                 * (e.g. a program that mmaps a library to read it): a new
                 * object, or the first one's base and extent would be
                 * wrong. The loader maps offset 0 first, so later segments
                 * join the most recent copy. */
                for (size_t j = n; j-- > 0;)
                        if (same_object(&objs[j], map)) {
                                if (map->offset == 0 && map->inode != 0)
                                        break;
                                o = &objs[j];
                                break;
                        }
                if (!o) {
                        struct procfs_object *no = realloc(objs, (n + 1) * sizeof(*no));
                        if (!no) {
                                free(objs);
                                return -ENOMEM;
                        }
                        objs = no;
                        o = &objs[n++];
                        *o = (struct procfs_object){
                                .path = map->path,
                                .start = map->start,
                                .end = map->end,
                                .base = map->offset == 0 ? map->start : 0,
                                .dev_major = map->dev_major,
                                .dev_minor = map->dev_minor,
                                .inode = map->inode,
                        };
                }
                o->start = MIN(o->start, map->start);
                o->end = MAX(o->end, map->end);
                if (map->offset == 0 && (o->base == 0 || map->start < o->base))
                        o->base = map->start;
                if (map->perms & PROCFS_PERM_X) {
                        if (o->exec_start == 0 || map->start < o->exec_start)
                                o->exec_start = map->start;
                        o->exec_end = MAX(o->exec_end, map->end);
                }
        }
        for (size_t j = 0; j < n; j++)
                if (objs[j].base == 0)
                        objs[j].base = objs[j].start;
        *ret = objs;
        *ret_n = n;
        return 0;
}

static int cmp_pid(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

int procfs_tasks(pid_t pid, pid_t **ret, size_t *ret_n)
{
        char path[64];
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ pid_t *tids = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;

        snprintf(path, sizeof(path), "/proc/%d/task", pid);
        d = opendir(path);
        if (!d)
                return errno_for_proc(-errno);
        errno = 0;
        while ((de = readdir(d))) {
                pid_t tid;

                if (parse_pid(de->d_name, &tid) < 0)
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        pid_t *nt = realloc(tids, ncap * sizeof(*nt));
                        if (!nt)
                                return -ENOMEM;
                        tids = nt;
                        cap = ncap;
                }
                tids[n++] = tid;
        }
        if (errno)
                return errno_for_proc(-errno);
        if (n == 0)
                return -ESRCH; /* all threads gone: a zombie or dead process */
        qsort(tids, n, sizeof(*tids), cmp_pid);
        *ret = TAKE_PTR(tids);
        *ret_n = n;
        return 0;
}

int procfs_thread_name(pid_t pid, pid_t tid, char *buf, size_t size)
{
        char path[96];
        _cleanup_free_ char *s = NULL;
        size_t len;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
        r = read_file_str(path, &s, &len);
        if (r < 0)
                return errno_for_proc(r);
        while (len > 0 && s[len - 1] == '\n')
                s[--len] = 0;
        snprintf(buf, size, "%s", s);
        return 0;
}

int procfs_thread_state(pid_t pid, pid_t tid, char *ret)
{
        char path[96];
        _cleanup_free_ char *s = NULL;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
        r = read_file_str(path, &s, NULL);
        if (r < 0)
                return errno_for_proc(r);
        /* "tid (comm) S ...": comm may contain spaces and parentheses, so
         * look for the last ')'. */
        char *p = strrchr(s, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EINVAL;
        *ret = p[2];
        return 0;
}

int procfs_status_field(pid_t pid, pid_t tid, const char *field, char *buf, size_t size)
{
        char path[96];
        _cleanup_free_ char *s = NULL;
        size_t flen = strlen(field);
        int r;

        if (tid > 0)
                snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
        else
                snprintf(path, sizeof(path), "/proc/%d/status", pid);
        r = read_file_str(path, &s, NULL);
        if (r < 0)
                return errno_for_proc(r);
        for (char *line = s; line && *line;) {
                char *next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
                        const char *v = line + flen + 1;
                        while (isspace((unsigned char)*v))
                                v++;
                        snprintf(buf, size, "%s", v);
                        return 0;
                }
                line = next;
        }
        return -ENOENT;
}

int procfs_tracer_pid(pid_t pid, pid_t tid, pid_t *ret)
{
        char buf[32];
        int r;

        r = procfs_status_field(pid, tid, "TracerPid", buf, sizeof(buf));
        if (r < 0)
                return r;
        *ret = (pid_t)atoi(buf);
        return 0;
}

int procfs_tgid(pid_t tid, pid_t *ret)
{
        char buf[32];
        int r;

        r = procfs_status_field(tid, 0, "Tgid", buf, sizeof(buf));
        if (r < 0)
                return r;
        *ret = (pid_t)atoi(buf);
        return 0;
}

const char *procfs_state_name(char state)
{
        switch (state) {
        case 'R':
                return "running";
        case 'S':
                return "sleeping";
        case 'D':
                return "disk-sleep";
        case 'T':
                return "stopped";
        case 't':
                return "tracing-stop";
        case 'Z':
                return "zombie";
        case 'X':
                return "dead";
        case 'I':
                return "idle";
        default:
                return "unknown";
        }
}
