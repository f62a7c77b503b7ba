/* The registry inside a patched process; see registry.h. */
#include "livepatch/registry.h"
#include "base/procfs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static bool is_registry_map(const struct procfs_map *m)
{
        return strcmp(m->path, "/memfd:" LP_REG_NAME) == 0 && (m->perms & PROCFS_PERM_SHARED) &&
               (m->perms & PROCFS_PERM_W) && m->offset == 0;
}

static int find_mapping(pid_t pid, uint64_t *ret_addr, uint64_t *ret_size)
{
        struct procfs_maps maps = {};
        int r;

        r = procfs_maps_read(pid, &maps);
        if (r < 0)
                return r;
        *ret_addr = 0;
        *ret_size = 0;
        for (size_t i = 0; i < maps.n; i++)
                if (is_registry_map(&maps.maps[i])) {
                        *ret_addr = maps.maps[i].start;
                        *ret_size = maps.maps[i].end - maps.maps[i].start;
                        break;
                }
        procfs_maps_done(&maps);
        return 0;
}

/* Does [start, start + len) lie inside [lo, lo + size)? */
static bool inside(uint64_t start, uint64_t len, uint64_t lo, uint64_t size)
{
        return start >= lo && start - lo <= size && len <= size - (start - lo);
}

/* Do a patch's extents lie in the parts of the arena it names? */
static bool patch_in_arena(const struct lp_registry *reg, const struct lp_reg_patch *pt)
{
        const struct lp_reg_arena *a;
        uint64_t text, text_len, data, data_len;

        if (pt->arena == 0)
                return true;
        if (pt->arena > reg->hdr.n_arenas)
                return false;
        a = &reg->arenas[pt->arena - 1];
        lp_reg_patch_extents(pt, &text, &text_len, &data, &data_len);
        return inside(text, text_len, a->base, a->text_size) &&
               (data_len == 0 || inside(data, data_len, a->base + a->text_size, a->data_size));
}

/* The header: magic, version, record sizes, counts within bounds. */
static int validate_header(struct lp_registry *reg, pid_t pid, struct errbuf *err)
{
        struct lp_reg_header *h = &reg->hdr;

        if (memcmp(h->magic, LP_REG_MAGIC, 8) != 0) {
                errbuf_set(err, "pid %d: its liveup registry is corrupt (bad magic)", pid);
                return -EBADMSG;
        }
        if (h->version != 1 && h->version != LP_REG_VERSION) {
                errbuf_set(err, "pid %d: its liveup registry is of version %u, which this liveup "
                           "does not know (it reads versions 1 to %u); use the liveup that "
                           "patched it", pid, h->version, LP_REG_VERSION);
                return -EPROTONOSUPPORT;
        }
        /* Version 1 had no arenas; those header bytes were reserved, 0. */
        if (h->version == 1 && (h->arena_size != 0 || h->n_arenas != 0 || h->n_warm != 0)) {
                errbuf_set(err, "pid %d: its liveup registry is corrupt (header)", pid);
                return -EBADMSG;
        }
        if (h->header_size != sizeof(struct lp_reg_header) ||
            h->patch_size != sizeof(struct lp_reg_patch) ||
            h->func_size != sizeof(struct lp_reg_func) ||
            (h->version >= 2 && h->arena_size != sizeof(struct lp_reg_arena)) ||
            h->n_patches > LP_REG_MAX_PATCHES || h->n_funcs > LP_REG_MAX_FUNCS ||
            h->n_arenas > LP_REG_MAX_ARENAS || h->n_warm > LP_REG_MAX_WARM) {
                errbuf_set(err, "pid %d: its liveup registry is corrupt (header)", pid);
                return -EBADMSG;
        }
        return 0;
}

/* The records the header counts (read after it). */
static int validate_records(struct lp_registry *reg, pid_t pid, struct errbuf *err)
{
        struct lp_reg_header *h = &reg->hdr;

        for (uint32_t i = 0; i < h->n_arenas; i++) {
                const struct lp_reg_arena *a = &reg->arenas[i];
                if (a->text_size == 0 || a->base + a->text_size < a->base ||
                    a->base + a->text_size + a->data_size < a->base + a->text_size) {
                        errbuf_set(err, "pid %d: its liveup registry is corrupt (arena %u)", pid,
                                   i);
                        return -EBADMSG;
                }
        }
        for (uint32_t i = 0; i < h->n_patches; i++) {
                struct lp_reg_patch *pt = &reg->patches[i];
                if (pt->first_func > h->n_funcs || pt->n_funcs > h->n_funcs - pt->first_func ||
                    pt->build_id_len > LP_BUILD_ID_MAX || pt->text_size > pt->size ||
                    pt->base + pt->size < pt->base ||
                    pt->data_base + (pt->size - pt->text_size) < pt->data_base ||
                    !patch_in_arena(reg, pt)) {
                        errbuf_set(err, "pid %d: its liveup registry is corrupt (patch %u)", pid,
                                   i);
                        return -EBADMSG;
                }
                pt->id[sizeof(pt->id) - 1] = 0;
                pt->name[sizeof(pt->name) - 1] = 0;
                pt->target[sizeof(pt->target) - 1] = 0;
        }
        for (uint32_t i = 0; i < h->n_funcs; i++) {
                reg->funcs[i].name[sizeof(reg->funcs[i].name) - 1] = 0;
                if (reg->funcs[i].saved_len > LP_ENTRY_BYTES) {
                        errbuf_set(err, "pid %d: its liveup registry is corrupt (function %u)",
                                   pid, i);
                        return -EBADMSG;
                }
        }
        return 0;
}

static int read_remote(pid_t pid, uint64_t addr, void *buf, size_t size)
{
        struct iovec local = { buf, size };
        struct iovec remote = { (void *)(uintptr_t)addr, size };
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

        if (n < 0)
                return -errno;
        return (size_t)n == size ? 0 : -EFAULT;
}

/* A run of records in use: where it is in the mapping, and here. */
struct reg_run {
        size_t off;
        void *at;
        size_t len;
};

/* The runs the header counts, in the mapping's order: patches, funcs,
 * arenas, warm pcs. Records past the counts are never read or written. */
#define REG_RUNS 4
#define REG_RUN(reg, field, n)                                                                     \
        ((struct reg_run){ offsetof(struct lp_registry, field) - offsetof(struct lp_registry, hdr), \
                           (reg)->field, (size_t)(n) * sizeof((reg)->field[0]) })
enum { RUN_PATCHES, RUN_FUNCS, RUN_ARENAS, RUN_WARM };

static void used_runs(struct lp_registry *reg, struct reg_run run[REG_RUNS])
{
        run[RUN_PATCHES] = REG_RUN(reg, patches, reg->hdr.n_patches);
        run[RUN_FUNCS] = REG_RUN(reg, funcs, reg->hdr.n_funcs);
        run[RUN_ARENAS] = REG_RUN(reg, arenas, reg->hdr.n_arenas);
        run[RUN_WARM] = REG_RUN(reg, warm_pcs, reg->hdr.n_warm);
}

static int read_run(pid_t pid, struct proc *p, uint64_t addr, const struct reg_run *run,
                    struct errbuf *err)
{
        int r;

        if (run->len == 0)
                return 0;
        r = p ? proc_read(p, addr + run->off, run->at, run->len)
              : read_remote(pid, addr + run->off, run->at, run->len);
        if (r < 0)
                errbuf_set(err, "cannot read the liveup registry of pid %d: %s", pid,
                           strerror(-r));
        return r;
}

static int write_run(struct proc *p, uint64_t addr, const struct reg_run *run)
{
        return run->len == 0 ? 0 : proc_write(p, addr + run->off, run->at, run->len);
}

static int load_with(pid_t pid, struct proc *p, struct lp_registry *reg, struct errbuf *err)
{
        uint64_t addr, size;
        int r;

        /* Records past the counts are never looked at (see
         * lp_registry_store), so only the header is cleared: the rest is
         * large, and writing it all would fault in every page of a fresh
         * allocation. */
        reg->addr = reg->size = 0;
        memset(&reg->hdr, 0, sizeof(reg->hdr));
        r = find_mapping(pid, &addr, &size);
        if (r < 0) {
                errbuf_set(err, "cannot read the memory map of pid %d: %s", pid, strerror(-r));
                return r;
        }
        if (addr == 0)
                return 0;
        if (size < LP_REG_SIZE) {
                errbuf_set(err, "pid %d: its liveup registry is too small", pid);
                return -EBADMSG;
        }
        /* hdr, patches and funcs are laid out in struct lp_registry exactly
         * as in the mapping. */
        _Static_assert(offsetof(struct lp_registry, patches) ==
                               offsetof(struct lp_registry, hdr) + sizeof(struct lp_reg_header),
                       "registry layout");
        _Static_assert(offsetof(struct lp_registry, funcs) ==
                               offsetof(struct lp_registry, patches) +
                                       LP_REG_MAX_PATCHES * sizeof(struct lp_reg_patch),
                       "registry layout");
        _Static_assert(offsetof(struct lp_registry, arenas) ==
                               offsetof(struct lp_registry, funcs) +
                                       LP_REG_MAX_FUNCS * sizeof(struct lp_reg_func),
                       "registry layout");
        _Static_assert(offsetof(struct lp_registry, warm_pcs) ==
                               offsetof(struct lp_registry, arenas) +
                                       LP_REG_MAX_ARENAS * sizeof(struct lp_reg_arena),
                       "registry layout");
        /* The header, then only the records in use: the registry is ~200
         * KiB, and reading all of it into fresh memory cost ~1 ms of page
         * faults here. Counts are checked before they size a read. */
        struct reg_run run[REG_RUNS];
        r = read_run(pid, p, addr, &(struct reg_run){ 0, &reg->hdr, sizeof(reg->hdr) }, err);
        if (r < 0)
                return r;
        r = validate_header(reg, pid, err);
        if (r < 0)
                return r;
        used_runs(reg, run);
        for (size_t i = 0; i < REG_RUNS; i++) {
                r = read_run(pid, p, addr, &run[i], err);
                if (r < 0)
                        return r;
        }
        r = validate_records(reg, pid, err);
        if (r < 0)
                return r;
        reg->addr = addr;
        reg->size = size;
        return 0;
}

int lp_registry_read(pid_t pid, struct lp_registry *ret, struct errbuf *err)
{
        return load_with(pid, NULL, ret, err);
}

int lp_registry_load(struct proc *p, struct lp_registry *ret, struct errbuf *err)
{
        return load_with(proc_pid(p), p, ret, err);
}

static int remote_call_ok(struct proc *p, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
                          uint64_t *ret, struct errbuf *err)
{
        uint64_t args[6] = { a0, a1, a2, 0, 0, 0 };
        uint64_t v;
        int r;

        r = proc_syscall(p, NULL, nr, args, &v, err);
        if (r < 0)
                return r;
        if ((int64_t)v < 0 && (int64_t)v > -4096) {
                errbuf_set(err, "pid %d: syscall %ld failed: %s", proc_pid(p), nr,
                           strerror((int)-(int64_t)v));
                return (int)(int64_t)v;
        }
        if (ret)
                *ret = v;
        return 0;
}

int lp_registry_create(struct proc *p, uint64_t scratch, struct lp_registry *reg,
                       struct errbuf *err)
{
        static const char name[] = LP_REG_NAME;
        uint64_t fd = 0, addr = 0;
        size_t size = ALIGN_UP(LP_REG_SIZE, (size_t)4096);
        int r;

        /* memfd_create() reads the name from the target's memory. */
        r = proc_write(p, scratch, name, sizeof(name));
        if (r < 0)
                return r;
        r = remote_call_ok(p, SYS_memfd_create, scratch, MFD_CLOEXEC, 0, &fd, err);
        if (r < 0)
                return r;
        r = remote_call_ok(p, SYS_ftruncate, fd, size, 0, NULL, err);
        if (r < 0)
                goto err_fd;
        r = proc_mmap(p, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0, &addr, err);
        if (r < 0)
                goto err_fd;
        (void)remote_call_ok(p, SYS_close, fd, 0, 0, NULL, NULL);

        /* The header only: records past its counts are never looked at,
         * and clearing all ~230 KiB of them faulted in every page of the
         * caller's fresh allocation (~0.6 ms, inside the window). */
        memset(&reg->hdr, 0, sizeof(reg->hdr));
        memcpy(reg->hdr.magic, LP_REG_MAGIC, 8);
        reg->hdr.version = LP_REG_VERSION;
        reg->hdr.header_size = sizeof(struct lp_reg_header);
        reg->hdr.patch_size = sizeof(struct lp_reg_patch);
        reg->hdr.func_size = sizeof(struct lp_reg_func);
        reg->hdr.arena_size = sizeof(struct lp_reg_arena);
        reg->addr = addr;
        reg->size = size;
        r = lp_registry_store(p, reg, err);
        if (r < 0) {
                (void)proc_munmap(p, addr, size, NULL);
                reg->addr = 0;
                return r;
        }
        return 0;

err_fd:
        (void)remote_call_ok(p, SYS_close, fd, 0, 0, NULL, NULL);
        return r;
}

int lp_registry_store(struct proc *p, struct lp_registry *reg, struct errbuf *err)
{
        int r;

        if (!reg->addr)
                return -ENOENT;
        /* A version 1 registry becomes version 2 (see registry.h). */
        reg->hdr.version = LP_REG_VERSION;
        reg->hdr.arena_size = sizeof(struct lp_reg_arena);
        reg->hdr.generation++;
        /* Only what is in use: the records are kept packed (appended, and
         * compacted on removal), and readers look no further than the
         * counts. Writing all of it (about 230 KiB) would lengthen the stop
         * window that stores it. */
        struct reg_run run[REG_RUNS];
        used_runs(reg, run);
        r = write_run(p, reg->addr, &run[RUN_PATCHES]);
        if (r >= 0)
                r = write_run(p, reg->addr, &run[RUN_FUNCS]);
        if (r >= 0)
                r = write_run(p, reg->addr, &run[RUN_ARENAS]);
        /* The header last: a reader sees the new counts only with the
         * records they count in place. */
        if (r >= 0)
                r = proc_write(p, reg->addr, &reg->hdr, sizeof(reg->hdr));
        if (r < 0)
                errbuf_set(err, "cannot write the liveup registry of pid %d: %s", proc_pid(p),
                           strerror(-r));
        return r;
}

int lp_registry_store_warm(struct proc *p, struct lp_registry *reg)
{
        int r;

        if (!reg->addr || reg->hdr.version < 2)
                return -ENOENT;
        /* Called after the detach, when another liveup may already hold
         * the process and write the registry: only the hint is written,
         * the pcs and then their count, never the header's other fields
         * (this copy of them may be stale by now). A hint torn by a
         * concurrent writer costs a few useless lookups, nothing more. */
        struct reg_run run[REG_RUNS];
        used_runs(reg, run);
        r = write_run(p, reg->addr, &run[RUN_WARM]);
        if (r >= 0)
                r = proc_write(p, reg->addr + offsetof(struct lp_reg_header, n_warm),
                               &reg->hdr.n_warm, sizeof(reg->hdr.n_warm));
        return r;
}

const struct lp_reg_func *lp_registry_func_at(const struct lp_registry *reg, uint64_t addr)
{
        for (uint32_t i = reg->hdr.n_funcs; i-- > 0;)
                if (reg->funcs[i].addr == addr)
                        return &reg->funcs[i];
        return NULL;
}

int lp_registry_find(const struct lp_registry *reg, const char *id)
{
        for (uint32_t i = 0; i < reg->hdr.n_patches; i++)
                if (strcmp(reg->patches[i].id, id) == 0)
                        return (int)i;
        return -ENOENT;
}

const char *lp_registry_state_name(uint32_t state)
{
        switch (state) {
        case LP_REG_STATE_APPLIED:
                return "applied";
        case LP_REG_STATE_APPLYING:
                return "applying (interrupted)";
        case LP_REG_STATE_REVERTING:
                return "reverting (interrupted)";
        default:
                return "unknown";
        }
}

void lp_reg_patch_extents(const struct lp_reg_patch *pt, uint64_t *ret_text,
                          uint64_t *ret_text_len, uint64_t *ret_data, uint64_t *ret_data_len)
{
        *ret_text = pt->base;
        if (pt->data_base == 0) {
                *ret_text_len = pt->size;
                *ret_data = 0;
                *ret_data_len = 0;
                return;
        }
        *ret_text_len = pt->text_size;
        *ret_data = pt->data_base;
        *ret_data_len = pt->size - pt->text_size;
}

uint64_t lp_reg_patch_addr(const struct lp_reg_patch *pt, uint64_t off)
{
        if (pt->data_base == 0 || off < pt->text_size)
                return pt->base + off;
        return pt->data_base + (off - pt->text_size);
}

struct extent {
        uint64_t start, end;
};

static int cmp_extent(const void *a, const void *b)
{
        const struct extent *x = a, *y = b;

        return x->start < y->start ? -1 : x->start > y->start;
}

/* The extents that patch records use in one part of arena `a`, sorted;
 * returns how many (at most LP_REG_MAX_PATCHES). */
static size_t arena_used(const struct lp_registry *reg, uint32_t a, bool data,
                         struct extent used[static LP_REG_MAX_PATCHES])
{
        size_t n = 0;

        for (uint32_t i = 0; i < reg->hdr.n_patches; i++) {
                const struct lp_reg_patch *pt = &reg->patches[i];
                uint64_t text, text_len, d, d_len;

                if (pt->arena != a + 1)
                        continue;
                lp_reg_patch_extents(pt, &text, &text_len, &d, &d_len);
                if (data && d_len)
                        used[n++] = (struct extent){ d, d + d_len };
                else if (!data && text_len)
                        used[n++] = (struct extent){ text, text + text_len };
        }
        qsort(used, n, sizeof(used[0]), cmp_extent);
        return n;
}

int lp_registry_arena_fit(const struct lp_registry *reg, uint32_t a, bool data, uint64_t len,
                          uint64_t *ret)
{
        struct extent used[LP_REG_MAX_PATCHES];
        const struct lp_reg_arena *ar;
        uint64_t lo, hi, at;
        size_t n;

        if (a >= reg->hdr.n_arenas)
                return -ENOENT;
        ar = &reg->arenas[a];
        lo = data ? ar->base + ar->text_size : ar->base;
        hi = lo + (data ? ar->data_size : ar->text_size);
        n = arena_used(reg, a, data, used);
        at = lo;
        for (size_t i = 0; i < n; i++) {
                if (used[i].start >= at && used[i].start - at >= len)
                        break;
                at = MAX(at, ALIGN_UP(used[i].end, (uint64_t)4096));
        }
        if (at > hi || hi - at < len)
                return -ENOSPC;
        *ret = at;
        return 0;
}

uint64_t lp_registry_arena_free(const struct lp_registry *reg, uint32_t a, bool data)
{
        struct extent used[LP_REG_MAX_PATCHES];
        const struct lp_reg_arena *ar;
        uint64_t lo, size, at, busy = 0;
        size_t n;

        if (a >= reg->hdr.n_arenas)
                return 0;
        ar = &reg->arenas[a];
        lo = data ? ar->base + ar->text_size : ar->base;
        size = data ? ar->data_size : ar->text_size;
        n = arena_used(reg, a, data, used);
        at = lo;
        for (size_t i = 0; i < n; i++) {
                uint64_t s = MAX(used[i].start, at), e = MIN(used[i].end, lo + size);
                if (e > s)
                        busy += e - s;
                at = MAX(at, used[i].end);
        }
        return size - MIN(busy, size);
}
