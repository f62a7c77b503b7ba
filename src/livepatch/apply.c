/* Applying and reverting patches (the stop model).
 *
 * apply, in order, each step undone on failure (labels say what):
 *   1. attach; read the registry (an id already applied is refused);
 *   2. find the target object by build-id; check every replaced function's
 *      bytes against the build (Ksplice's pre-image check): the bytes in
 *      the process, with any earlier liveup jump taken out, must hash to
 *      what the patch was built against; and it must be long enough;
 *   3. resolve every symbol the patch needs (a trial link), while the
 *      threads run;
 *   4. place the image within ±2 GiB of the target object. Usually it is
 *      carved from free space of an arena there (see "Arenas" below): no
 *      remote syscall, so no stop window; its journal record (APPLYING)
 *      is written while the threads run (the target never reads the
 *      registry). Otherwise the preparation window, every thread
 *      stopped: map a new arena (or, for an image too large for one,
 *      mappings of its own: code r-x, data rw-), create the registry if
 *      absent, call IFUNC resolvers (these need a stopped thread: an
 *      image in an arena still gets the window when one must run), and
 *      journal the patch as APPLYING. Remote syscalls run in one stopped
 *      thread; with the others stopped too it runs at once (with busy
 *      siblings running, each syscall waited for their time slices: 8 ms
 *      at 16 threads);
 *   5. link the patch for that place, and copy it in (nothing points at
 *      it yet, so the threads may run);
 *   6. the transition (transition.c): a probe (each thread stopped
 *      alone, its stack checked, resumed), then all threads stopped, no
 *      stack in a replaced function (or in a replacement being replaced),
 *      the jumps written and the record marked APPLIED, and every thread
 *      let go (PTRACE_DETACH), all within one stop window. Before it,
 *      each entry gets its own bytes written back (pretouch_entries), so
 *      that the page is copied on write then, not in the window.
 * revert is the mirror: the patch's code must be on no stack; the saved
 * bytes go back and the registry record goes, in one stop window. An
 * image in an arena is not unmapped: removing the record frees its space
 * (a registry write); an image with mappings of its own is unmapped in
 * that window.
 *
 * Arenas. The first patch near a target object maps an arena there: 1 MiB
 * of code (r-x) and 1 MiB of data (rw-) right after it, recorded in the
 * registry (struct lp_reg_arena). Later patches whose code and data fit in
 * free parts of an arena within reach of their target take them, first
 * fit; what is free is derived from the patch records alone, so it is
 * always what the journal says: the space of a patch whose apply was
 * undone (refused, or a killed liveup's repaired by recover()) is free
 * again with its record gone. Arenas stay mapped for the life of the
 * process. Reused space held the code of a reverted patch; the revert's
 * stop check proved no thread was in it, but a pointer the process kept
 * into a reverted patch (a callback, a string) now meets another patch's
 * bytes where it used to meet an unmapped page.
 *
 * Machine facts: code is written through /proc/PID/mem (proc_write), which
 * works on read-only text without an mprotect in the target. The jump is
 * written after an endbr64 when the function starts with one. */
#include "livepatch/apply.h"
#include "arch/arch.h"
#include "base/log.h"
#include "base/procfs.h"
#include "elf/elf.h"
#include "livepatch/link.h"
#include "livepatch/unwinder.h"
#include "proc/unwind.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#define DEFAULT_TIMEOUT 5.0
#define REACH (1ull << 31)

struct target_func {
        const struct lp_func *meta;
        uint64_t addr;      /* entry in the process */
        uint64_t jump_at;   /* after the landing pad */
        uint64_t new_addr;
        uint8_t jump[16];
        size_t jump_len;
        uint8_t saved[LP_ENTRY_BYTES]; /* bytes now at jump_at */
        const struct lp_reg_func *below; /* an earlier patch of it, if any */
};

struct apply_ctx {
        struct proc *p;
        pid_t pid;
        const struct lp_file *f;
        struct elf_proc *ep;
        struct elf_file *target;
        uint64_t bias;
        const struct procfs_object *obj;
        struct lp_registry *reg;
        bool reg_created;
        struct target_func *funcs;
        size_t n_funcs;
        uint64_t base, size, text_size;
        uint64_t data_base;       /* the data part when apart from the code; 0: right after */
        /* What the image takes in a code part (all of it when nothing in
         * it is writable: one r-x piece) and in a data part (rw-). */
        uint64_t text_len, data_len;
        bool writable;            /* the image has writable sections */
        int arena;                /* the arena it is carved from; -1: mappings of its own */
        bool arena_created;       /* that arena was mapped (and recorded) by this apply */
        bool mapped;              /* its own mappings, made by this apply */
        struct lp_image *img;
        int rec;                 /* index of our journal record, -1: none */
        /* Symbols the patch needs, resolved once: the first link (for a
         * likely base, before the stop window) fills it, the real one
         * reads it. IFUNCs are resolved by a call in the target, which
         * needs a stopped thread: the first link only records them. */
        struct resolved {
                char *name;
                uint64_t addr;
                uint64_t resolver; /* an IFUNC still to resolve: its resolver */
                /* For an IFUNC: the object that defines it, where it is. */
                const struct elf_file *file;
                uint64_t bias, obj_start, obj_end;
        } *syms;
        size_t n_syms;
        bool dry;                 /* the first link: do not call resolvers */
        struct lp_transition_result windows; /* the windows outside the transition */
        uint64_t prepare_ns;      /* how long the preparation window held them */
};

/* Test-only: LIVEUP_TEST_CRASH=STEP makes the tool kill itself at STEP, as
 * an operator's kill -9 would, so tests can check that the next liveup
 * repairs the target (the journal). */
static void test_crash_point(const char *step)
{
        const char *want = getenv("LIVEUP_TEST_CRASH");

        if (want && strcmp(want, step) == 0) {
                log_debug("test crash point '%s'", step);
                kill(getpid(), SIGKILL);
        }
}

/* ---- Checking the target ------------------------------------------------ */

/* The function's bytes as built: the current bytes with the first liveup
 * patch's saved bytes put back (every later one saved the jump below). */
static void original_bytes(const struct lp_registry *reg, uint64_t addr, uint8_t *buf,
                           size_t size)
{
        for (uint32_t i = 0; i < reg->hdr.n_funcs; i++) {
                const struct lp_reg_func *rf = &reg->funcs[i];
                if (rf->addr != addr)
                        continue;
                uint64_t off = rf->jump_at - rf->addr;
                if (off < size)
                        memcpy(buf + off, rf->saved, MIN((size_t)rf->saved_len, size - off));
                return;
        }
}

static int check_functions(struct apply_ctx *c, struct errbuf *err)
{
        c->funcs = calloc(c->f->n_funcs ? c->f->n_funcs : 1, sizeof(*c->funcs));
        if (!c->funcs)
                return -ENOMEM;
        for (size_t i = 0; i < c->f->n_funcs; i++) {
                const struct lp_func *m = &c->f->funcs[i];
                struct target_func *tf = &c->funcs[c->n_funcs];
                _cleanup_free_ uint8_t *bytes = NULL;
                size_t pad;
                int r;

                if (m->size == 0 || m->size > (64u << 20)) {
                        errbuf_set(err, "function '%s' has an implausible size %" PRIu64,
                                   m->name, m->size);
                        return -EBADMSG;
                }
                tf->meta = m;
                tf->addr = c->bias + m->addr;
                bytes = malloc(m->size);
                if (!bytes)
                        return -ENOMEM;
                r = proc_read(c->p, tf->addr, bytes, m->size);
                if (r < 0) {
                        errbuf_set(err, "cannot read function '%s' in pid %d: %s", m->name,
                                   c->pid, strerror(-r));
                        return r;
                }
                tf->below = lp_registry_func_at(c->reg, tf->addr);
                original_bytes(c->reg, tf->addr, bytes, m->size);
                if (lp_hash(bytes, m->size) != m->hash) {
                        errbuf_set(err, "function '%s' in pid %d is not what the patch was built "
                                   "against (its bytes differ)", m->name, c->pid);
                        return -ESTALE;
                }
                pad = arch_landing_pad_size(bytes, m->size);
                if (m->size < pad + arch_jump_size()) {
                        errbuf_set(err, "function '%s' is %" PRIu64 " bytes long, a jump needs "
                                   "%zu", m->name, m->size, pad + arch_jump_size());
                        return -ERANGE;
                }
                tf->jump_at = tf->addr + pad;
                c->n_funcs++;
        }
        return 0;
}

/* ---- Resolving the patch's symbols in the target ------------------------ */

static struct resolved *resolved_find(struct apply_ctx *c, const char *name)
{
        for (size_t i = 0; i < c->n_syms; i++)
                if (strcmp(c->syms[i].name, name) == 0)
                        return &c->syms[i];
        return NULL;
}

static int resolved_add(struct apply_ctx *c, const char *name, uint64_t addr, uint64_t resolver,
                        const struct resolved *where)
{
        struct resolved *n = reallocarray(c->syms, c->n_syms + 1, sizeof(*n));

        if (!n)
                return -ENOMEM;
        c->syms = n;
        n[c->n_syms] = *where;
        n[c->n_syms].name = strdup(name);
        if (!n[c->n_syms].name)
                return -ENOMEM;
        n[c->n_syms].addr = addr;
        n[c->n_syms].resolver = resolver;
        c->n_syms++;
        return 0;
}

/* Where `name` is in the target: the target object first, statics
 * included; then the exported symbols of every other object, in map order
 * (the executable and its libraries, as the dynamic linker would). Sets
 * *ret_ifunc when the address is an IFUNC resolver. */
static int lookup(struct apply_ctx *c, const char *name, uint64_t *ret, bool *ret_ifunc,
                  struct resolved *ret_where, struct errbuf *err)
{
        const struct elf_symbol *sym;
        struct procfs_object *objs = NULL;
        const struct lp_bind *bind;
        size_t n = 0;
        int r;

        /* A binding (build --diff): the target's symbol at that address,
         * whatever else has the name. The build-id matched, so the
         * address is right for this object; the name is checked anyway. */
        bind = lp_file_find_bind(c->f, name);
        if (bind) {
                const struct elf_symbol *cand[64];
                size_t k = elf_file_lookup_all(c->target, bind->name, cand, ELEMENTSOF(cand));
                const struct elf_symbol *found = NULL;

                for (size_t i = 0; i < MIN(k, ELEMENTSOF(cand)) && !found; i++)
                        if (cand[i]->addr == bind->addr)
                                found = cand[i];
                if (!found) {
                        errbuf_set(err, "symbol '%s' is bound to '%s' at 0x%" PRIx64
                                   ", which the target does not have there",
                                   name, bind->name, bind->addr);
                        return -EBADMSG;
                }
                *ret = c->bias + bind->addr;
                *ret_ifunc = found->ifunc; /* then addr is its resolver */
                *ret_where = (struct resolved){ .file = c->target, .bias = c->bias,
                                                .obj_start = c->obj->start,
                                                .obj_end = c->obj->end };
                return 0;
        }
        r = elf_file_lookup(c->target, name, &sym, err);
        if (r == 0) {
                *ret = c->bias + sym->addr;
                *ret_ifunc = sym->ifunc;
                *ret_where = (struct resolved){ .file = c->target, .bias = c->bias,
                                                .obj_start = c->obj->start,
                                                .obj_end = c->obj->end };
                return 0;
        }
        if (r != -ENOENT)
                return r;
        r = procfs_objects(elf_proc_maps(c->ep), &objs, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct elf_file *ef;
                uint64_t bias;
                struct elf_symbol s;

                if (objs[i].path[0] != '/')
                        continue;
                if (elf_proc_object(c->ep, objs[i].path, NULL, &ef, &bias, NULL) < 0 ||
                    ef == c->target)
                        continue;
                if (elf_file_lookup_exported(ef, name, &s) < 0)
                        continue;
                *ret = bias + s.addr;
                *ret_ifunc = s.ifunc;
                *ret_where = (struct resolved){ .file = ef, .bias = bias,
                                                .obj_start = objs[i].start,
                                                .obj_end = objs[i].end };
                free(objs);
                return 0;
        }
        free(objs);
        errbuf_set(err, "symbol '%s' is not defined in the target or its libraries", name);
        return -ENOENT;
}

static int resolve(void *userdata, const char *name, uint64_t *ret, struct errbuf *err)
{
        struct apply_ctx *c = userdata;
        struct resolved *s = resolved_find(c, name);
        uint64_t addr = 0;
        bool ifunc = false;
        int r;

        if (!s) {
                struct resolved where = {};
                r = lookup(c, name, &addr, &ifunc, &where, err);
                if (r < 0)
                        return r;
                r = resolved_add(c, name, ifunc ? 0 : addr, ifunc ? addr : 0, &where);
                if (r < 0)
                        return r;
                s = &c->syms[c->n_syms - 1];
        }
        if (s->resolver) {
                if (!c->dry) {
                        errbuf_set(err, "the IFUNC '%s' was not resolved", name);
                        return -EINVAL;
                }
                /* A stand-in of the same reach until the real link. */
                *ret = s->resolver;
                return 0;
        }
        *ret = s->addr;
        return 0;
}

/* An IFUNC symbol (glibc's strlen, memcpy...) names a resolver that returns
 * the implementation for this CPU; the dynamic linker calls it once. The
 * answer is usually in the process already: the defining object's own
 * calls go through a slot that the loader filled with the resolver's
 * result (an IRELATIVE relocation), and reading it runs nothing in the
 * target. Only for an IFUNC without such a slot is the resolver called in
 * the target (it only reads CPU features set up at start, takes no lock),
 * in the preparation window. This reads the slots; resolve_ifuncs() calls
 * the rest. */
static void read_ifunc_slots(struct apply_ctx *c)
{
        /* Test-only: LIVEUP_TEST_IFUNC=resolver takes the other way. */
        const char *t = getenv("LIVEUP_TEST_IFUNC");

        if (t && strcmp(t, "resolver") == 0)
                return;
        for (size_t i = 0; i < c->n_syms; i++) {
                struct resolved *s = &c->syms[i];
                uint64_t slot, v = 0;

                if (!s->resolver || !s->file ||
                    elf_file_irelative_slot(s->file, s->resolver - s->bias, &slot) < 0 ||
                    proc_read(c->p, s->bias + slot, &v, sizeof(v)) < 0)
                        continue;
                /* The implementation lies in the same object. */
                if (v < s->obj_start || v >= s->obj_end)
                        continue;
                log_debug("ifunc '%s' is 0x%" PRIx64 " (its IRELATIVE slot)", s->name, v);
                s->addr = v;
                s->resolver = 0;
        }
}

static bool ifuncs_pending(const struct apply_ctx *c)
{
        for (size_t i = 0; i < c->n_syms; i++)
                if (c->syms[i].resolver)
                        return true;
        return false;
}

static int resolve_ifuncs(struct apply_ctx *c, struct errbuf *err)
{
        for (size_t i = 0; i < c->n_syms; i++) {
                struct resolved *s = &c->syms[i];
                uint64_t args[6] = { 0 }, v = 0;
                int r;

                if (!s->resolver)
                        continue;
                r = proc_call(c->p, NULL, s->resolver, args, 1000000000ull, &v, err);
                if (r < 0)
                        return r;
                if (v == 0) {
                        errbuf_set(err, "the resolver of '%s' in pid %d returned nothing",
                                   s->name, c->pid);
                        return -ENOENT;
                }
                log_debug("ifunc '%s' resolved to 0x%" PRIx64 " (by its resolver)", s->name, v);
                s->addr = v;
                s->resolver = 0;
        }
        return 0;
}

/* ---- Placing the image -------------------------------------------------- */

static bool in_reach(const struct procfs_object *o, uint64_t base, uint64_t size)
{
        uint64_t lo = MIN(o->start, base), hi = MAX(o->end, base + size);
        return hi - lo < REACH - (1u << 20);
}

/* The k-th place to try for `size` bytes (k from 0), or 0 when there are
 * no more: just below and just above the object, 16 MiB apart. Below
 * first: above an executable lies its heap (brk), which must stay free to
 * grow. */
static uint64_t candidate(const struct apply_ctx *c, uint64_t size, int k)
{
        const struct procfs_object *o = c->obj;

        for (; k < 32; k++) {
                uint64_t step = (uint64_t)(k / 2 + 1) << 24;
                if (k % 2 == 1)
                        return ALIGN_UP(o->end, 1ull << 21) + step;
                if (o->start > step + size)
                        return ALIGN_DOWN(o->start - size - step, 4096ull);
        }
        return 0;
}

/* Does [start, start + size) meet a mapping the process had when we
 * looked (a mapping made since is caught by MAP_FIXED_NOREPLACE)? */
static bool overlaps_known(const struct apply_ctx *c, uint64_t start, uint64_t size)
{
        const struct procfs_maps *m = elf_proc_maps(c->ep);

        for (size_t i = 0; i < m->n; i++)
                if (m->maps[i].start < start + size && start < m->maps[i].end)
                        return true;
        return false;
}

/* A failed mmap at one candidate address that another may not meet: the
 * range is taken (MAP_FIXED_NOREPLACE), cannot hold it, or (-ENOSPC, a
 * kernel without MAP_FIXED_NOREPLACE) was mapped elsewhere. */
static bool try_elsewhere(int r)
{
        return r == -EEXIST || r == -ENOMEM || r == -ENOSPC;
}

/* Map `rx` bytes r-x and, right after them, `rw` bytes rw- at the first
 * free candidate (threads stopped), in *ret_base. Code is r-x from the
 * start (we write it through /proc/PID/mem, which needs no write
 * permission). An image of its own with no writable section (the usual
 * fix: functions, constants, the GOT, .eh_frame) is one r-x mapping: one
 * remote syscall instead of two in the window, at the price of its
 * constants being executable, as in the classic text segment. Never
 * writable and executable at once. */
static int map_range(struct apply_ctx *c, uint64_t rx, uint64_t rw, uint64_t *ret_base,
                     struct errbuf *err)
{
        struct errbuf e = {};
        int r = -ENOSPC;

        for (int k = 0;; k++) {
                uint64_t hint = candidate(c, rx + rw, k), got = 0, got_data = 0;

                if (!hint)
                        break;
                if (!in_reach(c->obj, hint, rx + rw) || overlaps_known(c, hint, rx + rw))
                        continue;
                e = (struct errbuf){};
                r = proc_mmap(c->p, hint, rx, PROT_READ | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0, &got,
                              &e);
                if (r < 0 && !try_elsewhere(r))
                        break; /* the remote call itself failed: say why */
                if (r < 0)
                        continue;
                if (got != hint) { /* a kernel without MAP_FIXED_NOREPLACE */
                        (void)proc_munmap(c->p, got, rx, NULL);
                        r = -ENOSPC;
                        continue;
                }
                if (rw > 0) {
                        r = proc_mmap(c->p, hint + rx, rw, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0,
                                      &got_data, &e);
                        if (r >= 0 && got_data != hint + rx) {
                                (void)proc_munmap(c->p, got_data, rw, NULL);
                                r = -ENOSPC;
                        }
                        if (r < 0) {
                                (void)proc_munmap(c->p, got, rx, NULL);
                                if (!try_elsewhere(r))
                                        break;
                                continue;
                        }
                }
                *ret_base = got;
                return 0;
        }
        if (r == -ESRCH)
                errbuf_set(err, "pid %d exited during the operation", c->pid);
        else if (!try_elsewhere(r))
                errbuf_set(err, "cannot map memory in pid %d: %s", c->pid,
                           errbuf_or_strerror(&e, r));
        else {
                errbuf_set(err, "found no free address range within 2 GiB of '%s' in pid %d",
                           c->obj->path, c->pid);
                r = -ENOSPC;
        }
        return r;
}

/* ---- Arenas (see the top of this file) ---------------------------------- */

#define ARENA_TEXT_SIZE (1ull << 20)
#define ARENA_DATA_SIZE (1ull << 20)

/* Is [start, start + len) wholly covered by private anonymous mappings
 * with exactly `perms` (PROCFS_PERM_R/W/X), in the maps read at the start
 * of this apply? Adjacent mappings of the same kind may have merged. */
static bool mapped_as(const struct procfs_maps *m, uint64_t start, uint64_t len, unsigned perms)
{
        const unsigned mask = PROCFS_PERM_R | PROCFS_PERM_W | PROCFS_PERM_X | PROCFS_PERM_SHARED;
        uint64_t at = start, end = start + len;

        for (size_t i = 0; i < m->n && at < end; i++) {
                const struct procfs_map *mp = &m->maps[i];
                if (mp->end <= at)
                        continue;
                if (mp->start > at || (mp->perms & mask) != perms || mp->path[0])
                        return false;
                at = mp->end;
        }
        return at >= end;
}

/* Can arena `i` take patches for our target object: within reach of it,
 * and still mapped as we left it (the process could have unmapped it)? */
static bool arena_usable(const struct apply_ctx *c, uint32_t i)
{
        const struct lp_reg_arena *a = &c->reg->arenas[i];
        const struct procfs_maps *m = elf_proc_maps(c->ep);

        return in_reach(c->obj, a->base, a->text_size + a->data_size) &&
               mapped_as(m, a->base, a->text_size, PROCFS_PERM_R | PROCFS_PERM_X) &&
               (a->data_size == 0 || mapped_as(m, a->base + a->text_size, a->data_size,
                                               PROCFS_PERM_R | PROCFS_PERM_W));
}

/* Place the image in free parts of an arena within reach, first fit: no
 * remote syscall. The registry is not written here: journal_begin()
 * records the patch, and with it the space it takes. Returns whether the
 * image was placed. */
static bool carve_from_arena(struct apply_ctx *c)
{
        for (uint32_t i = 0; c->reg->addr && i < c->reg->hdr.n_arenas; i++) {
                uint64_t text, data = 0;

                if (!arena_usable(c, i) ||
                    lp_registry_arena_fit(c->reg, i, false, c->text_len, &text) < 0 ||
                    (c->data_len > 0 &&
                     lp_registry_arena_fit(c->reg, i, true, c->data_len, &data) < 0))
                        continue;
                c->base = text;
                c->data_base = data;
                c->arena = (int)i;
                log_debug("apply: carved from arena %u at 0x%" PRIx64 " (data 0x%" PRIx64 ")", i,
                          text, data);
                return true;
        }
        return false;
}

/* Does an image that no arena could take get a new arena (or mappings of
 * its own: one too large for an arena, or when the table is full)? */
static bool arena_wanted(const struct apply_ctx *c)
{
        return c->text_len <= ARENA_TEXT_SIZE && c->data_len <= ARENA_DATA_SIZE &&
               (!c->reg->addr || c->reg->hdr.n_arenas < LP_REG_MAX_ARENAS);
}

/* ---- The commit, inside the stop window --------------------------------- */

/* Journal: record the patch as APPLYING, before anything of it but its
 * memory is in the target; for an image in an arena, the record is also
 * what claims its space there. Called in the preparation window, or,
 * without one, while the threads run: nothing in the target reads the
 * registry, and the jumps that make the patch live come later, in the
 * transition's window. */
static int journal_begin(struct apply_ctx *c, struct errbuf *err)
{
        struct lp_registry *reg = c->reg;
        struct lp_reg_patch *pt;
        int r;

        if (reg->hdr.n_patches >= LP_REG_MAX_PATCHES ||
            reg->hdr.n_funcs + c->n_funcs > LP_REG_MAX_FUNCS) {
                errbuf_set(err, "pid %d has too many patches applied", c->pid);
                return -ENOSPC;
        }
        pt = &reg->patches[reg->hdr.n_patches];
        memset(pt, 0, sizeof(*pt));
        snprintf(pt->id, sizeof(pt->id), "%s", c->f->id);
        snprintf(pt->name, sizeof(pt->name), "%s", c->f->name);
        snprintf(pt->target, sizeof(pt->target), "%s", c->obj->path);
        memcpy(pt->build_id, c->f->build_id, c->f->build_id_len);
        pt->build_id_len = (uint32_t)c->f->build_id_len;
        pt->flags = c->f->flags;
        pt->base = c->base;
        pt->size = c->size;
        /* lp_link_size() said what lp_link() will make: exact already. */
        pt->text_size = c->text_size;
        pt->data_base = c->data_base;
        pt->arena = c->arena < 0 ? 0 : (uint32_t)c->arena + 1;
        pt->applied_at = (uint64_t)time(NULL);
        pt->first_func = reg->hdr.n_funcs;
        pt->n_funcs = (uint32_t)c->n_funcs;
        pt->state = LP_REG_STATE_APPLYING;
        for (size_t i = 0; i < c->n_funcs; i++) {
                struct target_func *tf = &c->funcs[i];
                struct lp_reg_func *rf = &reg->funcs[reg->hdr.n_funcs + i];

                tf->jump_len = arch_jump_size();
                r = proc_read(c->p, tf->jump_at, tf->saved, tf->jump_len);
                if (r < 0)
                        return r;
                memset(rf, 0, sizeof(*rf));
                snprintf(rf->name, sizeof(rf->name), "%s", tf->meta->name);
                rf->addr = tf->addr;
                rf->size = tf->meta->size;
                rf->jump_at = tf->jump_at;
                rf->saved_len = (uint32_t)tf->jump_len;
                memcpy(rf->saved, tf->saved, tf->jump_len);
        }
        reg->hdr.n_funcs += (uint32_t)c->n_funcs;
        reg->hdr.n_patches++;
        r = lp_registry_store(c->p, reg, err);
        if (r < 0) {
                reg->hdr.n_patches--;
                reg->hdr.n_funcs -= (uint32_t)c->n_funcs;
                return r;
        }
        c->rec = (int)reg->hdr.n_patches - 1;
        return 0;
}

/* Take our record out again (the apply failed before its commit). */
static void journal_drop(struct apply_ctx *c)
{
        struct lp_registry *reg = c->reg;

        if (c->rec < 0 || c->rec != (int)reg->hdr.n_patches - 1)
                return;
        reg->hdr.n_funcs -= reg->patches[c->rec].n_funcs;
        reg->hdr.n_patches--;
        (void)lp_registry_store(c->p, reg, NULL);
        c->rec = -1;
}

/* Inside the stop window: the jumps, and the record becomes APPLIED. */
/* Does the entry of `tf` still hold what the journal saved? 0, -ESTALE,
 * or the error of reading it. */
static int entry_intact(struct apply_ctx *c, const struct target_func *tf)
{
        uint8_t now[LP_ENTRY_BYTES];
        int r = proc_read(c->p, tf->jump_at, now, tf->jump_len);

        if (r < 0)
                return r;
        return memcmp(now, tf->saved, tf->jump_len) == 0 ? 0 : -ESTALE;
}

static int write_jumps(struct apply_ctx *c, struct errbuf *err)
{
        struct lp_reg_patch *pt = &c->reg->patches[c->rec];
        size_t written = 0;
        int r;

        /* The entries must still hold what the journal saved. */
        for (size_t i = 0; i < c->n_funcs; i++) {
                struct target_func *tf = &c->funcs[i];

                r = entry_intact(c, tf);
                if (r == -ESTALE)
                        errbuf_set(err, "the entry of '%s' in pid %d changed meanwhile",
                                   tf->meta->name, c->pid);
                if (r < 0)
                        return r;
        }
        for (; written < c->n_funcs; written++) {
                struct target_func *tf = &c->funcs[written];
                r = proc_write(c->p, tf->jump_at, tf->jump, tf->jump_len);
                if (r < 0) {
                        errbuf_set(err, "cannot write the jump into '%s' in pid %d: %s",
                                   tf->meta->name, c->pid, strerror(-r));
                        goto undo;
                }
                if (written == 0)
                        test_crash_point("mid-commit");
        }
        pt->state = LP_REG_STATE_APPLIED;
        r = lp_registry_store(c->p, c->reg, err);
        if (r < 0) {
                pt->state = LP_REG_STATE_APPLYING;
                goto undo;
        }
        return 0;

undo:
        while (written-- > 0) {
                struct target_func *tf = &c->funcs[written];
                (void)proc_write(c->p, tf->jump_at, tf->saved, tf->jump_len);
        }
        return r < 0 ? r : -EIO;
}

static int commit_apply(void *userdata, struct errbuf *err)
{
        return write_jumps(userdata, err);
}

/* Before the window: write each entry's own bytes back over it. The
 * first write into a page of a file's text makes the kernel copy the
 * page (copy on write) for this process, 20-70 µs here; done now, the
 * window's jump writes find their pages copied already. The bytes do not
 * change, so running threads see nothing; entries that are no longer
 * what the journal saved are left alone (write_jumps refuses them). */
static void pretouch_entries(struct apply_ctx *c)
{
        for (size_t i = 0; i < c->n_funcs; i++) {
                struct target_func *tf = &c->funcs[i];

                if (entry_intact(c, tf) == 0)
                        (void)proc_write(c->p, tf->jump_at, tf->saved, tf->jump_len);
        }
}

/* ---- apply -------------------------------------------------------------- */

static int recover(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg,
                   double timeout, struct errbuf *err);
static bool interrupted(const struct lp_registry *reg);

static void ctx_done(struct apply_ctx *c)
{
        lp_image_free(c->img);
        for (size_t i = 0; i < c->n_syms; i++)
                free(c->syms[i].name);
        free(c->syms);
        free(c->funcs);
        elf_proc_free(c->ep);
        free(c->reg);
}

/* The preparation window, for an image no arena could take or one whose
 * IFUNC resolvers must run in the target: with every thread stopped, map
 * a new arena (or the image's own mappings) unless the image is carved
 * already, make the registry if there is none, resolve IFUNCs, and
 * journal the patch as APPLYING (with the new arena's record, in the same
 * registry write). Remote syscalls run in a stopped thread, which the
 * scheduler runs at once when nothing else of the target is runnable:
 * with one thread stopped and busy siblings, each syscall waited for their
 * time slices (about 8 ms each at 16 busy threads on 2 CPUs). On failure
 * what it mapped is unmapped again. */
static int prepare_window(struct apply_ctx *c, struct errbuf *err)
{
        struct lp_window w;
        uint64_t arena = 0;
        int r, q;

        r = lp_window_open(c->p, &w, err);
        if (r < 0)
                return r;
        if (proc_job_stopped(c->p)) {
                /* Remote syscalls need a thread that runs. */
                errbuf_set(err, "cannot patch pid %d while it is stopped (job control): %s "
                           "near '%s' maps memory, which needs a thread that runs; send "
                           "SIGCONT first", c->pid,
                           c->arena < 0 && arena_wanted(c) ? "a first patch"
                                                            : "this patch (memory of its own)",
                           c->obj->path);
                r = -EAGAIN;
                goto out;
        }
        if (c->arena < 0 && arena_wanted(c)) {
                r = map_range(c, ARENA_TEXT_SIZE, ARENA_DATA_SIZE, &arena, err);
                if (r < 0)
                        goto out;
                c->base = arena;
                c->data_base = c->data_len > 0 ? arena + ARENA_TEXT_SIZE : 0;
        } else if (c->arena < 0) {
                r = map_range(c, c->text_len, c->data_len, &c->base, err);
                if (r < 0)
                        goto out;
                c->mapped = true;
        }
        if (!c->reg->addr) {
                /* The memfd's name goes where the image's code will be. */
                r = lp_registry_create(c->p, c->base, c->reg, err);
                if (r < 0)
                        goto err_unmap;
                c->reg_created = true;
        }
        if (arena) {
                /* Stored with the journal record below. */
                c->reg->arenas[c->reg->hdr.n_arenas] = (struct lp_reg_arena){
                        .base = arena,
                        .text_size = ARENA_TEXT_SIZE,
                        .data_size = ARENA_DATA_SIZE,
                };
                c->arena = (int)c->reg->hdr.n_arenas++;
                c->arena_created = true;
        }
        r = resolve_ifuncs(c, err);
        if (r < 0)
                goto err_unmap;
        r = journal_begin(c, err);
        if (r < 0)
                goto err_unmap;
        test_crash_point("after-journal");
        goto out;

err_unmap:
        if (c->arena_created) {
                c->reg->hdr.n_arenas--;
                c->arena = -1;
                c->arena_created = false;
        }
        if (arena)
                (void)proc_munmap(c->p, arena, ARENA_TEXT_SIZE + ARENA_DATA_SIZE, NULL);
        if (c->mapped)
                (void)proc_munmap(c->p, c->base, c->text_len + c->data_len, NULL);
        c->mapped = false;
        if (c->reg_created) {
                (void)proc_munmap(c->p, c->reg->addr, c->reg->size, NULL);
                c->reg->addr = 0;
                c->reg_created = false;
        }
out:
        {
                uint64_t before = c->windows.held_total_ns;
                q = lp_window_close(c->p, &w, &c->windows, r < 0 ? NULL : err);
                c->prepare_ns = c->windows.held_total_ns - before;
        }
        return r < 0 ? r : q;
}

/* Undo the preparation (the apply failed before its commit). An image in
 * an arena that was there before needs only its record dropped (which
 * frees its space): a registry write, no window. What this apply mapped
 * is unmapped in a window, after the records that name it are gone. */
static void unprepare(struct apply_ctx *c)
{
        struct lp_window w;

        if (proc_gone(c->p))
                return;
        if (!c->mapped && !c->arena_created && !c->reg_created) {
                journal_drop(c);
                return;
        }
        if (lp_window_open(c->p, &w, NULL) < 0)
                return;
        journal_drop(c);
        if (c->arena_created && c->arena == (int)c->reg->hdr.n_arenas - 1) {
                const struct lp_reg_arena *a = &c->reg->arenas[c->arena];
                uint64_t base = a->base, size = a->text_size + a->data_size;

                c->reg->hdr.n_arenas--;
                if (c->reg_created || lp_registry_store(c->p, c->reg, NULL) >= 0)
                        (void)proc_munmap(c->p, base, size, NULL);
        }
        if (c->mapped)
                (void)proc_munmap(c->p, c->base, c->text_len + c->data_len, NULL);
        if (c->reg_created)
                (void)proc_munmap(c->p, c->reg->addr, c->reg->size, NULL);
        (void)lp_window_close(c->p, &w, &c->windows, NULL);
}

int lp_apply(pid_t pid, const struct lp_file *f, const struct lp_apply_opts *o,
             struct lp_apply_result *ret, struct errbuf *err)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct apply_ctx c = { .pid = pid, .f = f, .rec = -1, .arena = -1 };
        struct lp_apply_result res = {};
        struct lp_range *ranges = NULL;
        size_t n_ranges = 0, text_size = 0;
        uint64_t start = now_ns();
        double timeout = o && o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
        int r;

        if (f->flags & LP_FLAG_CUMULATIVE) {
                /* The kernel's atomic replace: not implemented yet. Say so
                 * rather than apply it as an ordinary patch. */
                errbuf_set(err, "cannot apply '%s' to pid %d: cumulative patches (atomic "
                           "replace) are not supported yet", f->id, pid);
                return -EOPNOTSUPP;
        }
        r = proc_attach(pid, NULL, &p, err);
        if (r < 0)
                return r;
        c.p = p;
        c.reg = calloc(1, sizeof(*c.reg));
        if (!c.reg) {
                r = -ENOMEM;
                goto out;
        }
        r = lp_registry_load(p, c.reg, err);
        if (r < 0)
                goto out;
        if (interrupted(c.reg)) {
                /* The unwinder is made here only when there is something to
                 * recover; otherwise once, below, when the image is in. */
                r = lp_unwinder_new(p, c.reg, &u, err);
                if (r < 0)
                        goto out;
                r = recover(p, u, c.reg, timeout, err);
                if (r < 0)
                        goto out;
                res.recovered = r;
        }
        if (lp_registry_find(c.reg, f->id) >= 0) {
                errbuf_set(err, "patch '%s' is already applied to pid %d", f->id, pid);
                r = -EEXIST;
                goto out;
        }

        log_debug("apply: attach+registry done at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = elf_proc_new(pid, &c.ep, err);
        if (r < 0)
                goto out;
        /* By the path it was built from first (opens one file); then any
         * object with that build-id (opens them all): the same binary may
         * run from another path. */
        r = elf_proc_object(c.ep, f->target, f->build_id_hex, &c.target, &c.bias, &c.obj);
        if (r < 0)
                r = elf_proc_object(c.ep, NULL, f->build_id_hex, &c.target, &c.bias, &c.obj);
        if (r < 0) {
                errbuf_set(err, "pid %d has no object with build-id %s loaded (the patch is for "
                           "%s)", pid, f->build_id_hex, f->target);
                r = -ENXIO;
                goto out;
        }
        r = check_functions(&c, err);
        if (r < 0)
                goto out;
        r = lp_link_size(f->image, f->image_size, &res.size, &text_size, &c.writable, err);
        if (r < 0)
                goto out;
        c.size = res.size;
        c.text_size = text_size;
        c.text_len = c.writable ? c.text_size : c.size;
        c.data_len = c.writable ? c.size - c.text_size : 0;
        carve_from_arena(&c);

        /* Resolve every symbol now, with a trial link for the likeliest
         * place (IFUNCs are only noted), so that a window below holds
         * nothing but remote syscalls. */
        {
                struct lp_image *trial = NULL;
                uint64_t at = c.arena >= 0 ? c.base : candidate(&c, c.size, 0);
                c.dry = true;
                r = lp_link_split(f->image, f->image_size, at ? at : 1ull << 32,
                                  c.arena >= 0 ? c.data_base : 0, resolve, &c, &trial, err);
                c.dry = false;
                lp_image_free(trial);
                if (r < 0)
                        goto out;
        }
        read_ifunc_slots(&c);
        if (ifuncs_pending(&c))
                log_debug("apply: some IFUNCs have no slot: their resolvers run in the target");
        log_debug("apply: checked and resolved at %.2f ms", (double)(now_ns() - start) / 1e6);

        if (c.arena < 0 || ifuncs_pending(&c)) {
                r = proc_inject_prepare(p, err);
                if (r < 0)
                        goto out;
                r = prepare_window(&c, err);
                if (r < 0)
                        goto out;
        } else {
                /* In an arena, with nothing to run in the target: no
                 * window before the transition's. */
                r = journal_begin(&c, err);
                if (r < 0)
                        goto out;
                test_crash_point("after-journal");
        }

        /* Link for that place and copy the image in: nothing refers to it
         * yet, so the threads may run meanwhile. */
        log_debug("apply: placed at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = lp_link_split(f->image, f->image_size, c.base, c.data_base, resolve, &c, &c.img, err);
        if (r < 0)
                goto err_unprepare;
        if (c.data_base) {
                r = proc_write(p, c.base, c.img->buf, c.img->text_size);
                if (r >= 0)
                        r = proc_write(p, c.data_base, c.img->buf + c.img->text_size,
                                       c.img->size - c.img->text_size);
        } else
                r = proc_write(p, c.base, c.img->buf, c.img->size);
        if (r < 0) {
                errbuf_set(err, "cannot copy the patch into pid %d: %s", pid, strerror(-r));
                goto err_unprepare;
        }

        ranges = calloc(2 * c.n_funcs + 1, sizeof(*ranges));
        if (!ranges) {
                r = -ENOMEM;
                goto err_unprepare;
        }
        for (size_t i = 0; i < c.n_funcs; i++) {
                struct target_func *tf = &c.funcs[i];
                uint64_t size;
                r = lp_image_lookup(c.img, tf->meta->new_name, &tf->new_addr, &size);
                if (r < 0) {
                        errbuf_set(err, "the patch has no function '%s'", tf->meta->new_name);
                        goto err_unprepare;
                }
                r = arch_encode_jump(tf->jump_at, tf->new_addr, tf->jump, sizeof(tf->jump));
                if (r < 0) {
                        errbuf_set(err, "'%s' is out of reach of its replacement",
                                   tf->meta->name);
                        goto err_unprepare;
                }
                tf->jump_len = (size_t)r;
                c.reg->funcs[c.reg->patches[c.rec].first_func + i].new_addr = tf->new_addr;
                ranges[n_ranges++] = (struct lp_range){ tf->addr, tf->addr + tf->meta->size,
                                                        tf->meta->name };
                if (tf->below) /* the replacement it replaces is old code too */
                        ranges[n_ranges++] = (struct lp_range){
                                tf->below->new_addr, tf->below->new_addr + 1, tf->meta->name
                        };
        }
        /* A replacement being replaced: its whole patch text is old code. */
        for (size_t i = 0; i < n_ranges; i++)
                for (uint32_t k = 0; k < c.reg->hdr.n_patches; k++) {
                        const struct lp_reg_patch *pt = &c.reg->patches[k];
                        if (ranges[i].end == ranges[i].start + 1 && ranges[i].start >= pt->base &&
                            ranges[i].start < pt->base + pt->text_size) {
                                ranges[i].start = pt->base;
                                ranges[i].end = pt->base + pt->text_size;
                        }
                }

        c.reg->patches[c.rec].text_size = c.img->text_size;
        c.reg->patches[c.rec].eh_frame_off = c.img->eh_frame_off;
        c.reg->patches[c.rec].eh_frame_size = c.img->eh_frame_size;
        r = lp_registry_store(p, c.reg, err);
        if (r < 0)
                goto err_unprepare;

        log_debug("apply: linked and copied at %.2f ms", (double)(now_ns() - start) / 1e6);
        /* The unwinder must see the new mappings, and the code of every
         * patch in the registry, this one's included (harmless: nothing
         * jumps there yet). */
        r = u ? lp_unwinder_refresh(u, c.reg, err) : lp_unwinder_new(p, c.reg, &u, err);
        if (r < 0)
                goto err_unprepare;
        /* Warm its caches with the stacks as a preparation window saw
         * them, and with the pcs the last liveup met (there is no
         * preparation window for a patch carved from an arena): the check
         * then mostly finds the CFI it needs. */
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                if (t && t->last_regs_valid)
                        proc_unwinder_warm(u, &t->last_regs);
        }
        lp_unwinder_warm(u, c.reg);
        pretouch_entries(&c);
        log_debug("apply: unwinder ready at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = lp_transition_stop(p, u, ranges, n_ranges, timeout, commit_apply, &c,
                               LP_TRANSITION_DETACH, &res.transition, err);
        if (r < 0) {
                if (r == -EBUSY) {
                        char msg[sizeof(err->msg)];
                        snprintf(msg, sizeof(msg), "%s", err->msg);
                        errbuf_set(err, "refusing to patch pid %d: %s", pid, msg);
                }
                goto err_unprepare;
        }

        snprintf(res.id, sizeof(res.id), "%s", f->id);
        res.n_funcs = c.n_funcs;
        res.base = c.base;
        res.data_base = c.data_base;
        res.arena = c.arena;
        res.arena_created = c.arena_created;
        res.n_stubs = c.img->n_stubs;
        res.n_got = c.img->n_got;
        lp_unwinder_remember(p, u, c.reg);
        r = 0;
        goto out;

err_unprepare:
        unprepare(&c);
out:
        free(ranges);
        u = (proc_unwinder_free(u), NULL);
        {
                int q = proc_detach(p);
                if (r >= 0 && q < 0)
                        r = q;
        }
        res.switch_ns = res.transition.held_max_ns;
        res.remote_calls = proc_n_injected(p);
        res.prepare_ns = c.prepare_ns;
        lp_transition_add(&res.transition, &c.windows);
        res.total_ns = now_ns() - start;
        if (r < 0 && err && err->msg[0]) {
                /* Every refusal names the process (it matters with --all). */
                char pidstr[32], msg[sizeof(err->msg)];
                snprintf(pidstr, sizeof(pidstr), "pid %d", pid);
                if (!strstr(err->msg, pidstr)) {
                        snprintf(msg, sizeof(msg), "%s", err->msg);
                        errbuf_set(err, "cannot patch pid %d: %s", pid, msg);
                }
        }
        if (r >= 0 && ret)
                *ret = res;
        else if (ret)
                ret->transition = res.transition;
        ctx_done(&c);
        return r;
}

/* ---- revert ------------------------------------------------------------- */

struct revert_ctx {
        struct proc *p;
        pid_t pid;
        struct lp_registry *reg;
        uint32_t index;
};

static int commit_revert(void *userdata, struct errbuf *err)
{
        struct revert_ctx *c = userdata;
        struct lp_registry *reg = c->reg;
        struct lp_reg_patch pt = reg->patches[c->index];
        int r;

        /* Put the saved bytes back, last function first. */
        for (uint32_t i = pt.n_funcs; i-- > 0;) {
                const struct lp_reg_func *rf = &reg->funcs[pt.first_func + i];
                r = proc_write(c->p, rf->jump_at, rf->saved, rf->saved_len);
                if (r >= 0)
                        test_crash_point("mid-revert");
                if (r < 0) {
                        errbuf_set(err, "cannot restore '%s' in pid %d: %s", rf->name, c->pid,
                                   strerror(-r));
                        /* Re-apply what we restored, to stay consistent. */
                        for (uint32_t k = i + 1; k < pt.n_funcs; k++) {
                                const struct lp_reg_func *rk = &reg->funcs[pt.first_func + k];
                                uint8_t jump[16];
                                int len = arch_encode_jump(rk->jump_at, rk->new_addr, jump,
                                                           sizeof(jump));
                                if (len > 0)
                                        (void)proc_write(c->p, rk->jump_at, jump, (size_t)len);
                        }
                        return r;
                }
        }
        /* Drop its records. */
        memmove(&reg->funcs[pt.first_func], &reg->funcs[pt.first_func + pt.n_funcs],
                (reg->hdr.n_funcs - pt.first_func - pt.n_funcs) * sizeof(reg->funcs[0]));
        reg->hdr.n_funcs -= pt.n_funcs;
        for (uint32_t k = c->index + 1; k < reg->hdr.n_patches; k++)
                reg->patches[k].first_func -= pt.n_funcs;
        memmove(&reg->patches[c->index], &reg->patches[c->index + 1],
                (reg->hdr.n_patches - c->index - 1) * sizeof(reg->patches[0]));
        reg->hdr.n_patches--;
        r = lp_registry_store(c->p, reg, err);
        if (r < 0)
                return r;
        /* Nothing can enter the image any more and no thread is in it. In
         * an arena, the store above freed its space: nothing else to do.
         * Mappings of its own are unmapped in this window (a thread
         * stopped runs the syscall at once); a liveup killed right before
         * leaves only a mapping no record names. */
        if (pt.arena == 0) {
                uint64_t text, text_len, data, data_len;

                lp_reg_patch_extents(&pt, &text, &text_len, &data, &data_len);
                (void)proc_munmap(c->p, text, text_len, NULL);
                if (data_len)
                        (void)proc_munmap(c->p, data, data_len, NULL);
        }
        return 0;
}

/* Remove patch `idx` of the registry from the target, under the stop
 * check on its code. */
static int revert_index(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg,
                        uint32_t idx, double timeout, unsigned flags,
                        struct lp_revert_result *res, struct errbuf *err)
{
        const struct lp_reg_patch *pt = &reg->patches[idx];
        struct revert_ctx c = { .p = p, .pid = proc_pid(p), .reg = reg, .index = idx };
        struct lp_range range = { pt->base, pt->base + pt->text_size, NULL };
        char names[160] = "";
        int r;

        for (uint32_t a = 0; a < pt->n_funcs && strlen(names) < 100; a++)
                snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
                         a ? ", " : "", reg->funcs[pt->first_func + a].name);
        range.name = names;
        snprintf(res->id, sizeof(res->id), "%s", pt->id);
        res->n_funcs = pt->n_funcs;
        if (pt->arena == 0) { /* it will munmap, in a thread that must run */
                if (proc_job_stopped(p)) {
                        errbuf_set(err, "cannot revert patch '%s' of pid %d while it is "
                                   "stopped (job control): its memory of its own is unmapped "
                                   "by one of its threads, which must run; send SIGCONT first",
                                   pt->id, proc_pid(p));
                        return -EAGAIN;
                }
                r = proc_inject_prepare(p, err);
                if (r < 0)
                        return r;
        }
        if (pt->state == LP_REG_STATE_APPLIED) {
                /* Journal: from here on, an interruption completes the revert. */
                reg->patches[idx].state = LP_REG_STATE_REVERTING;
                r = lp_registry_store(p, reg, err);
                if (r < 0)
                        return r;
        }
        r = lp_transition_stop(p, u, &range, 1, timeout, commit_revert, &c, flags,
                               &res->transition, err);
        if (r < 0 && reg->patches[idx].state == LP_REG_STATE_REVERTING &&
            idx < reg->hdr.n_patches && strcmp(reg->patches[idx].id, res->id) == 0) {
                /* Refused: it stays applied, as it was. */
                reg->patches[idx].state = LP_REG_STATE_APPLIED;
                (void)lp_registry_store(p, reg, NULL);
        }
        return r;
}

/* Did a killed liveup leave an operation half done (recover() has work)? */
static bool interrupted(const struct lp_registry *reg)
{
        for (uint32_t i = 0; reg->addr && i < reg->hdr.n_patches; i++)
                if (reg->patches[i].state != LP_REG_STATE_APPLIED)
                        return true;
        return false;
}

/* Finish what a killed liveup left: every record not APPLIED is removed
 * from the target (its jumps, if any were written, undone; its memory
 * unmapped, or its space in an arena freed with its record). Returns how
 * many were repaired. */
static int recover(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg,
                   double timeout, struct errbuf *err)
{
        int n = 0, r;

        /* From the top down: an apply is journalled on top; a revert by
         * id may have been of a patch under others (none of them on its
         * functions, or it would not have begun). Removing record i moves
         * only the records above it, which are done. */
        for (uint32_t i = reg->hdr.n_patches; i-- > 0;) {
                struct lp_revert_result res = {};
                uint32_t state = reg->patches[i].state;

                if (state == LP_REG_STATE_APPLIED)
                        continue;
                log_debug("pid %d: completing an interrupted %s of patch '%s'", proc_pid(p),
                          state == LP_REG_STATE_APPLYING ? "apply" : "revert",
                          reg->patches[i].id);
                r = revert_index(p, u, reg, i, timeout, 0, &res, err);
                if (r < 0) {
                        char msg[sizeof(err->msg)];
                        snprintf(msg, sizeof(msg), "%s", err->msg);
                        errbuf_set(err, "pid %d has an interrupted liveup operation on patch "
                                   "'%s' that cannot be completed yet: %s", proc_pid(p),
                                   res.id, msg);
                        return r;
                }
                n++;
        }
        return n;
}

int lp_revert(pid_t pid, const char *id, const struct lp_apply_opts *o,
              struct lp_revert_result *ret, struct errbuf *err)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        _cleanup_free_ struct lp_registry *reg = NULL;
        struct lp_revert_result res = {};
        double timeout = o && o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
        uint64_t start = now_ns();
        int r, idx;

        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        r = proc_attach(pid, NULL, &p, err);
        if (r < 0)
                return r;
        r = lp_registry_load(p, reg, err);
        if (r < 0)
                goto out;
        if (reg->addr) {
                r = lp_unwinder_new(p, reg, &u, err);
                if (r < 0)
                        goto out;
                lp_unwinder_warm(u, reg); /* see unwinder.h */
                r = recover(p, u, reg, timeout, err);
                if (r < 0)
                        goto out;
                res.recovered = r;
        }
        if (!reg->addr || reg->hdr.n_patches == 0) {
                errbuf_set(err, "no liveup patch is applied to pid %d", pid);
                r = -ENOENT;
                goto out;
        }
        if (id) {
                idx = lp_registry_find(reg, id);
                if (idx < 0) {
                        errbuf_set(err, "patch '%s' is not applied to pid %d", id, pid);
                        r = -ENOENT;
                        goto out;
                }
        } else
                idx = (int)reg->hdr.n_patches - 1;

        /* A later patch on one of its functions must go first. */
        const struct lp_reg_patch *pt = &reg->patches[idx];
        for (uint32_t k = (uint32_t)idx + 1; k < reg->hdr.n_patches; k++) {
                const struct lp_reg_patch *later = &reg->patches[k];
                for (uint32_t a = 0; a < pt->n_funcs; a++)
                        for (uint32_t b = 0; b < later->n_funcs; b++)
                                if (reg->funcs[pt->first_func + a].addr ==
                                    reg->funcs[later->first_func + b].addr) {
                                        errbuf_set(err, "patch '%s' of pid %d is under patch '%s' "
                                                   "(both replace '%s'); revert that one first",
                                                   pt->id, pid, later->id,
                                                   reg->funcs[pt->first_func + a].name);
                                        r = -EBUSY;
                                        goto out;
                                }
        }

        r = revert_index(p, u, reg, (uint32_t)idx, timeout, LP_TRANSITION_DETACH, &res, err);
        if (r >= 0)
                lp_unwinder_remember(p, u, reg);
        if (r == -EBUSY) {
                char msg[sizeof(err->msg)];
                snprintf(msg, sizeof(msg), "%s", err->msg);
                errbuf_set(err, "refusing to revert patch '%s' of pid %d: %s", res.id, pid, msg);
        }
out:
        u = (proc_unwinder_free(u), NULL);
        {
                int q = proc_detach(p);
                if (r >= 0 && q < 0)
                        r = q;
        }
        res.total_ns = now_ns() - start;
        if (ret)
                *ret = res;
        return r;
}
