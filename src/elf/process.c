/* A process's view through its ELF objects: which object, function and
 * offset an address is at, and which object is mapped from a given file.
 *
 * elf_proc_new() snapshots /proc/PID/maps once and groups the mappings
 * into objects (procfs_objects()); the view does not follow later mmaps.
 * Each object's ELF file is opened on first use and kept: symbolising a
 * whole stack then costs a few binary searches. The load bias of an object
 * is what turns a file address into a process address (address = file
 * address + bias); it is found from an executable mapping and the PT_LOAD
 * it maps (see object_bias()), which equals procfs's base (the mapping of
 * file offset 0) minus elf_file_load_base() for an object loaded once.
 *
 * Which file is opened: the mapped path, if it is still the file that is
 * mapped (same device and inode; a binary replaced on disk by an update is
 * not); otherwise /proc/PID/map_files/START-END, which reaches the mapped
 * file even when it was deleted or replaced (needs CAP_SYS_ADMIN, or
 * CAP_CHECKPOINT_RESTORE since Linux 5.9). The vdso is not a file: its
 * image is read from the process's memory through /proc/PID/mem.
 *
 * An elf_proc is not thread-safe (files are opened into it on lookup);
 * the elf_files it hands out are immutable and may be shared. */
#include "elf/elf-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* The vdso is one or two pages; anything much bigger is not a vdso. */
#define VDSO_MAX (16u << 20)

struct proc_object {
        struct elf_file *file;
        int state; /* 0: not tried yet, 1: opened, < 0: -errno of the failure */
        uint64_t bias;
};

struct elf_proc {
        pid_t pid;
        struct procfs_maps maps;
        struct procfs_object *objs;
        size_t n_objs;
        struct proc_object *cache; /* parallel to objs */
        size_t *map_obj;           /* per mapping: index in objs, or SIZE_MAX */
};

void elf_proc_free(struct elf_proc *s)
{
        if (!s)
                return;
        for (size_t i = 0; s->cache && i < s->n_objs; i++)
                elf_file_free(s->cache[i].file);
        free(s->cache);
        free(s->map_obj);
        free(s->objs); /* before the maps its strings point into */
        procfs_maps_done(&s->maps);
        free(s);
}

/* procfs_objects() groups by (dev, inode), or by name for inode 0. */
static bool map_in_object(const struct procfs_map *m, const struct procfs_object *o)
{
        if (m->inode != 0)
                return o->inode == m->inode && o->dev_major == m->dev_major &&
                       o->dev_minor == m->dev_minor;
        return o->inode == 0 && strcmp(o->path, m->path) == 0;
}

int elf_proc_new(pid_t pid, struct elf_proc **ret, struct errbuf *err)
{
        _cleanup_(elf_proc_freep) struct elf_proc *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->pid = pid;
        r = procfs_maps_read(pid, &s->maps);
        if (r < 0) {
                errbuf_set(err, "cannot read the memory map of pid %d: %s", pid, strerror(-r));
                return r;
        }
        r = procfs_objects(&s->maps, &s->objs, &s->n_objs);
        if (r < 0)
                return r;
        s->cache = calloc(MAX(s->n_objs, 1u), sizeof(*s->cache));
        s->map_obj = calloc(MAX(s->maps.n, 1u), sizeof(*s->map_obj));
        if (!s->cache || !s->map_obj)
                return -ENOMEM;
        for (size_t i = 0, last = 0; i < s->maps.n; i++) {
                const struct procfs_map *m = &s->maps.maps[i];

                s->map_obj[i] = SIZE_MAX;
                if (m->path[0] == 0)
                        continue;
                /* Mappings of one object are usually adjacent. */
                if (last < s->n_objs && map_in_object(m, &s->objs[last])) {
                        s->map_obj[i] = last;
                        continue;
                }
                for (size_t j = 0; j < s->n_objs; j++)
                        if (map_in_object(m, &s->objs[j])) {
                                s->map_obj[i] = last = j;
                                break;
                        }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

const struct procfs_maps *elf_proc_maps(const struct elf_proc *s)
{
        return &s->maps;
}

/* Read the vdso image out of the process. */
static int open_vdso(struct elf_proc *s, const struct procfs_object *o, struct elf_file **ret)
{
        char path[64];
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t size = o->end - o->start;

        if (o->end <= o->start || size > VDSO_MAX)
                return -ENOEXEC;
        snprintf(path, sizeof(path), "/proc/%d/mem", s->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        for (size_t done = 0; done < size;) {
                ssize_t k = pread(fd, buf + done, size - done, (off_t)(o->start + done));

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                done += (size_t)k;
        }
        return elf_file_open_memory(TAKE_PTR(buf), size, o->path, ret, NULL);
}

/* 1: fd is the mapped file; 0: it is another file on the same device
 * (replaced on disk); -1: cannot tell (the device numbers differ, as on
 * overlayfs, which shows the underlying device in the maps). */
static int same_file(int fd, const struct procfs_object *o)
{
        struct stat st;

        if (fstat(fd, &st) < 0 || st.st_dev != makedev(o->dev_major, o->dev_minor))
                return -1;
        return st.st_ino == o->inode;
}

/* Open the file behind object `k`; see the top of this file for which. */
static int open_mapped_file(struct elf_proc *s, size_t k, struct elf_file **ret)
{
        const struct procfs_object *o = &s->objs[k];
        _cleanup_close_ int fd = -EBADF;
        bool deleted = false;
        const struct procfs_map *first = NULL;
        int r = -ENOENT, same = 0;

        for (size_t i = 0; i < s->maps.n; i++)
                if (s->map_obj[i] == k) {
                        if (!first)
                                first = &s->maps.maps[i];
                        deleted = deleted || s->maps.maps[i].deleted;
                }
        if (!deleted && o->path[0] == '/') {
                fd = open(o->path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        r = -errno;
                else if ((same = same_file(fd, o)) > 0)
                        return elf_file_open_fd(TAKE_FD(fd), o->path, ret, NULL);
        }
        if (first) {
                char mf[96];
                int fd2;

                snprintf(mf, sizeof(mf), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, s->pid,
                         first->start, first->end);
                fd2 = open(mf, O_RDONLY | O_CLOEXEC);
                if (fd2 >= 0)
                        return elf_file_open_fd(fd2, o->path, ret, NULL);
                r = -errno;
        }
        /* A path whose identity we could not confirm is still the best
         * guess there is; a file known to be another one is not. */
        if (fd >= 0 && same < 0)
                return elf_file_open_fd(TAKE_FD(fd), o->path, ret, NULL);
        return r;
}

/* Where the page at file offset `offset` lands, at bias 0, when PT_LOAD
 * `ph` maps it; false when it does not. The loader maps each PT_LOAD from
 * its page-aligned offset to its page-aligned address. */
static bool load_maps_offset(const GElf_Phdr *ph, uint64_t offset, uint64_t *ret_vaddr)
{
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t seg_off, seg_vaddr;

        if (page == 0 || (page & (page - 1)) != 0)
                page = 4096;
        seg_off = ALIGN_DOWN(ph->p_offset, page);
        seg_vaddr = ALIGN_DOWN(ph->p_vaddr, page);
        if (ph->p_filesz == 0 || offset < seg_off ||
            offset - seg_off >= ph->p_filesz + (ph->p_offset - seg_off))
                return false;
        *ret_vaddr = seg_vaddr + (offset - seg_off);
        return true;
}

/* The load bias of object k, from an executable mapping and the
 * executable PT_LOAD it comes from. procfs's `base` (the lowest mapping
 * at file offset 0) is only the fallback: another mapping of the same
 * file, such as libelf's own read-only mmap of it when a process looks at
 * itself, or a program that maps its own binary, would fool it. */
static uint64_t object_bias(const struct elf_proc *s, size_t k, const struct elf_file *f)
{
        for (size_t i = 0; i < s->maps.n; i++) {
                const struct procfs_map *m = &s->maps.maps[i];

                if (s->map_obj[i] != k || !(m->perms & PROCFS_PERM_X))
                        continue;
                for (size_t j = 0; j < f->n_loads; j++) {
                        uint64_t v;

                        if ((f->loads[j].p_flags & PF_X) &&
                            load_maps_offset(&f->loads[j], m->offset, &v))
                                return m->start - v;
                }
        }
        return s->objs[k].base - elf_file_load_base(f);
}

/* Is mapping m part of the loaded image (and not another mmap of the
 * same file)? */
static bool mapping_is_loaded(const struct elf_file *f, uint64_t bias, const struct procfs_map *m)
{
        for (size_t j = 0; j < f->n_loads; j++) {
                uint64_t v;

                if (load_maps_offset(&f->loads[j], m->offset, &v) && m->start - bias == v)
                        return true;
        }
        return false;
}

/* Open object k's ELF file once; 0 with c->file set, or the failure (also
 * remembered, so a file that is not ELF is not retried on every frame). */
static int object_open(struct elf_proc *s, size_t k)
{
        struct proc_object *c = &s->cache[k];
        const struct procfs_object *o = &s->objs[k];
        struct elf_file *f = NULL;
        int r;

        if (c->state == 1)
                return 0;
        if (c->state < 0)
                return c->state;
        if (strcmp(o->path, "[vdso]") == 0)
                r = open_vdso(s, o, &f);
        else if (o->path[0] == '[')
                r = -ENOEXEC; /* [heap], [stack], [vvar], ...: no ELF */
        else
                r = open_mapped_file(s, k, &f);
        if (r < 0) {
                c->state = r;
                return r;
        }
        c->file = f;
        c->bias = object_bias(s, k, f);
        c->state = 1;
        return 0;
}

int elf_proc_locate(struct elf_proc *s, uint64_t addr, struct elf_location *ret)
{
        const struct procfs_map *m = procfs_maps_find(&s->maps, addr);
        const struct procfs_object *o;
        struct proc_object *c;
        struct elf_location loc = {};
        size_t k;

        if (!m || s->map_obj[m - s->maps.maps] == SIZE_MAX) {
                /* As elf.h says: anonymous memory reads as object NULL. */
                *ret = (struct elf_location){};
                return -ENOENT;
        }
        k = s->map_obj[m - s->maps.maps];
        o = &s->objs[k];
        c = &s->cache[k];
        loc.object = o->path;
        if (object_open(s, k) >= 0) {
                const struct elf_symbol *sym;
                uint64_t off;

                loc.object_offset = addr - c->bias;
                /* In another mapping of the file than the loaded image
                 * (a plain mmap of it), addresses name no code. */
                if (mapping_is_loaded(c->file, c->bias, m) &&
                    elf_file_symbol_for(c->file, loc.object_offset, &sym, &off) >= 0) {
                        loc.function = sym->name;
                        loc.function_offset = off;
                }
        } else
                loc.object_offset = addr - o->base;
        *ret = loc;
        return 0;
}

static bool path_matches(const struct procfs_object *o, const char *path,
                         const struct stat *st)
{
        if (strcmp(o->path, path) == 0)
                return true;
        /* The same file under another name (a symlink such as
         * /lib/x86_64-linux-gnu/libc.so.6 on a merged-/usr system). */
        return st && o->inode != 0 && st->st_ino == o->inode &&
               st->st_dev == makedev(o->dev_major, o->dev_minor);
}

int elf_proc_object(struct elf_proc *s, const char *path, const char *build_id_hex,
                    struct elf_file **ret_file, uint64_t *ret_bias,
                    const struct procfs_object **ret_obj)
{
        struct stat st;
        bool have_st = false;
        int r = -ENOENT;

        if (!path && !build_id_hex)
                return -EINVAL;
        if (path && path[0] != '[')
                have_st = stat(path, &st) == 0;
        for (size_t k = 0; k < s->n_objs; k++) {
                const struct procfs_object *o = &s->objs[k];
                int q;

                if (path && !path_matches(o, path, have_st ? &st : NULL))
                        continue;
                if (!path && o->path[0] != '/' && strcmp(o->path, "[vdso]") != 0)
                        continue;
                q = object_open(s, k);
                if (q < 0) {
                        if (path)
                                r = q;
                        continue;
                }
                if (build_id_hex && strcasecmp(elf_file_build_id_hex(s->cache[k].file),
                                               build_id_hex) != 0)
                        continue;
                if (ret_file)
                        *ret_file = s->cache[k].file;
                if (ret_bias)
                        *ret_bias = s->cache[k].bias;
                if (ret_obj)
                        *ret_obj = o;
                return 0;
        }
        return r;
}
