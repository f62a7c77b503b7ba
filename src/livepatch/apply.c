/* Applying and reverting patches (the stop model).
 *
 * apply, in order, each step undone on failure (labels say what):
 *   1. attach; read the registry (an id already applied is refused);
 *   2. find the target object by build-id; check every replaced function's
 *      bytes against the build (Ksplice's pre-image check): the bytes in
 *      the process, with any earlier liveup jump taken out, must hash to
 *      what the patch was built against; and it must be long enough;
 *   3. with one thread stopped (the others run on): map the patch image
 *      within ±2 GiB of the target object, create the registry if absent;
 *   4. link the patch for that address against the target's symbols, and
 *      copy it in (nothing points at it yet, so the threads may run);
 *   5. the transition: all threads stopped, no stack in a replaced
 *      function (or in a replacement being replaced), then the jumps are
 *      written and the registry updated, all within one stop window;
 *   6. detach.
 * revert is the mirror: the patch's code must be on no stack; the saved
 * bytes go back, the registry record goes, the image is unmapped.
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
        uint64_t base, size;
        struct lp_image *img;
        int rec;                 /* index of our journal record, -1: none */
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

static int with_one_stopped(struct proc *p, struct errbuf *err, struct proc_thread **ret);
static int resume_one(struct proc *p, struct proc_thread *t, struct errbuf *err);

/* An IFUNC symbol (glibc's strlen, memcpy...) names a resolver that returns
 * the implementation for this CPU; the dynamic linker calls it once. We
 * call it in the target too (it only reads CPU features set up at start,
 * takes no lock), with one thread stopped. */
static int resolve_ifunc(struct apply_ctx *c, const char *name, uint64_t resolver,
                         uint64_t *ret, struct errbuf *err)
{
        struct proc_thread *t = NULL;
        uint64_t args[6] = { 0 }, v = 0;
        int r, q;

        r = with_one_stopped(c->p, err, &t);
        if (r < 0)
                return r;
        r = proc_call(c->p, t, resolver, args, 1000000000ull, &v, err);
        q = resume_one(c->p, t, err);
        if (r >= 0 && q < 0)
                r = q;
        if (r < 0)
                return r;
        if (v == 0) {
                errbuf_set(err, "the resolver of '%s' in pid %d returned nothing", name,
                           c->pid);
                return -ENOENT;
        }
        log_debug("ifunc '%s' resolved to 0x%" PRIx64, name, v);
        *ret = v;
        return 0;
}

static int resolve(void *userdata, const char *name, uint64_t *ret, struct errbuf *err)
{
        struct apply_ctx *c = userdata;
        const struct elf_symbol *sym;
        struct procfs_object *objs = NULL;
        size_t n = 0;
        int r;

        /* The target object first, statics included. */
        r = elf_file_lookup(c->target, name, &sym, err);
        if (r == 0) {
                if (sym->ifunc)
                        return resolve_ifunc(c, name, c->bias + sym->addr, ret, err);
                *ret = c->bias + sym->addr;
                return 0;
        }
        if (r != -ENOENT)
                return r;
        /* Then the exported symbols of every other object, in map order
         * (the executable and its libraries, as the dynamic linker would). */
        r = procfs_objects(elf_proc_maps(c->ep), &objs, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct elf_file *ef;
                uint64_t bias;
                const struct elf_symbol *cands[8];
                size_t k;

                if (objs[i].path[0] != '/')
                        continue;
                if (elf_proc_object(c->ep, objs[i].path, NULL, &ef, &bias, NULL) < 0 ||
                    ef == c->target)
                        continue;
                k = elf_file_lookup_all(ef, name, cands, ELEMENTSOF(cands));
                for (size_t j = 0; j < MIN(k, ELEMENTSOF(cands)); j++) {
                        if (cands[j]->local || cands[j]->type == ELF_SYM_TLS)
                                continue;
                        free(objs);
                        if (cands[j]->ifunc)
                                return resolve_ifunc(c, name, bias + cands[j]->addr, ret, err);
                        *ret = bias + cands[j]->addr;
                        return 0;
                }
        }
        free(objs);
        errbuf_set(err, "symbol '%s' is not defined in the target or its libraries", name);
        return -ENOENT;
}

/* ---- Placing the image -------------------------------------------------- */

static bool in_reach(const struct procfs_object *o, uint64_t base, uint64_t size)
{
        uint64_t lo = MIN(o->start, base), hi = MAX(o->end, base + size);
        return hi - lo < REACH - (1u << 20);
}

static int map_image(struct apply_ctx *c, struct errbuf *err)
{
        const struct procfs_object *o = c->obj;
        int r = -ENOSPC;

        /* Candidates just below and just above the object, 16 MiB apart.
         * Below first: above an executable lies its heap (brk), which must
         * stay free to grow. */
        for (int k = 1; k <= 16; k++) {
                for (int dir = 1; dir >= 0; dir--) {
                        uint64_t step = (uint64_t)k << 24, hint, got = 0;
                        if (dir == 0)
                                hint = ALIGN_UP(o->end, 1ull << 21) + step;
                        else if (o->start > step + c->size)
                                hint = ALIGN_DOWN(o->start - c->size - step, 4096ull);
                        else
                                continue;
                        r = proc_mmap(c->p, hint, c->size, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0,
                                      &got, NULL);
                        if (r < 0)
                                continue;
                        if (got != hint || !in_reach(o, got, c->size)) {
                                (void)proc_munmap(c->p, got, c->size, NULL);
                                r = -ENOSPC;
                                continue;
                        }
                        c->base = got;
                        return 0;
                }
        }
        errbuf_set(err, "found no free address range within 2 GiB of '%s' in pid %d", o->path,
                   c->pid);
        return r;
}

/* ---- The commit, inside the stop window --------------------------------- */

/* Journal: record the patch as APPLYING, before anything of it but its
 * memory is in the target. */
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
        pt->text_size = c->size; /* until linked: all of it counts as code */
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
static int write_jumps(struct apply_ctx *c, struct errbuf *err)
{
        struct lp_reg_patch *pt = &c->reg->patches[c->rec];
        size_t written = 0;
        int r;

        /* The entries must still hold what the journal saved. */
        for (size_t i = 0; i < c->n_funcs; i++) {
                struct target_func *tf = &c->funcs[i];
                uint8_t now[LP_ENTRY_BYTES];

                r = proc_read(c->p, tf->jump_at, now, tf->jump_len);
                if (r < 0)
                        return r;
                if (memcmp(now, tf->saved, tf->jump_len) != 0) {
                        errbuf_set(err, "the entry of '%s' in pid %d changed meanwhile",
                                   tf->meta->name, c->pid);
                        return -ESTALE;
                }
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

/* ---- apply -------------------------------------------------------------- */

static int recover(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg,
                   double timeout, struct errbuf *err);

static void ctx_done(struct apply_ctx *c)
{
        lp_image_free(c->img);
        free(c->funcs);
        elf_proc_free(c->ep);
        free(c->reg);
}

/* Run a few remote syscalls with one thread stopped, the others running.
 * That is a stop window too: the tool runs at SCHED_FIFO until
 * resume_one() (see src/proc/sched.c), or with busy target threads each
 * of its wake-ups waits behind them. */
static struct proc_sched_saved one_sched;

static int with_one_stopped(struct proc *p, struct errbuf *err, struct proc_thread **ret)
{
        struct proc_thread *t = proc_thread_at(p, 0);
        int r;

        if (!t)
                return -ESRCH;
        proc_sched_raise(&one_sched);
        r = proc_stop_thread(p, t, err);
        if (r < 0) {
                proc_sched_restore(&one_sched);
                return r;
        }
        *ret = t;
        return 0;
}

static int resume_one(struct proc *p, struct proc_thread *t, struct errbuf *err)
{
        int r = proc_resume_thread(p, t, err);

        proc_sched_restore(&one_sched);
        return r;
}

int lp_apply(pid_t pid, const struct lp_file *f, const struct lp_apply_opts *o,
             struct lp_apply_result *ret, struct errbuf *err)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct apply_ctx c = { .pid = pid, .f = f, .rec = -1 };
        struct lp_apply_result res = {};
        struct proc_thread *t = NULL;
        struct lp_range *ranges = NULL;
        size_t n_ranges = 0;
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
        if (c.reg->addr) {
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
        log_debug("apply: elf_proc+object done at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = check_functions(&c, err);
        if (r < 0)
                goto out;

        log_debug("apply: check done at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = lp_link_size(f->image, f->image_size, &res.size, err);
        if (r < 0)
                goto out;
        c.size = res.size;

        /* Map the image and make sure the registry exists: remote syscalls
         * in one stopped thread while the others run on. */
        r = with_one_stopped(p, err, &t);
        if (r < 0)
                goto out;
        r = map_image(&c, err);
        if (r < 0)
                goto err_resume;
        if (!c.reg->addr) {
                r = lp_registry_create(p, c.reg, err);
                if (r < 0)
                        goto err_unmap;
                c.reg_created = true;
        }
        r = journal_begin(&c, err);
        if (r < 0)
                goto err_resume;
        test_crash_point("after-journal");
        r = resume_one(p, t, err);
        t = NULL;
        if (r < 0)
                goto err_unmap;

        /* Link for that address and copy the image in: nothing refers to it
         * yet, so the threads may run meanwhile. */
        log_debug("apply: map+journal done at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = lp_link(f->image, f->image_size, c.base, resolve, &c, &c.img, err);
        if (r < 0)
                goto err_unmap;
        r = proc_write(p, c.base, c.img->buf, c.img->size);
        if (r < 0) {
                errbuf_set(err, "cannot copy the patch into pid %d: %s", pid, strerror(-r));
                goto err_unmap;
        }

        log_debug("apply: link+copy done at %.2f ms", (double)(now_ns() - start) / 1e6);
        ranges = calloc(2 * c.n_funcs + 1, sizeof(*ranges));
        if (!ranges) {
                r = -ENOMEM;
                goto err_unmap;
        }
        for (size_t i = 0; i < c.n_funcs; i++) {
                struct target_func *tf = &c.funcs[i];
                uint64_t size;
                r = lp_image_lookup(c.img, tf->meta->new_name, &tf->new_addr, &size);
                if (r < 0) {
                        errbuf_set(err, "the patch has no function '%s'", tf->meta->new_name);
                        goto err_unmap;
                }
                r = arch_encode_jump(tf->jump_at, tf->new_addr, tf->jump, sizeof(tf->jump));
                if (r < 0) {
                        errbuf_set(err, "'%s' is out of reach of its replacement",
                                   tf->meta->name);
                        goto err_unmap;
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
                goto err_unmap;

        /* The image's code must be executable, its data not. */
        r = with_one_stopped(p, err, &t);
        if (r < 0)
                goto err_unmap;
        {
                uint64_t args[6] = { c.base, c.img->text_size, PROT_READ | PROT_EXEC, 0, 0, 0 };
                uint64_t v = 0;
                if (c.img->text_size > 0) {
                        r = proc_syscall(p, t, SYS_mprotect, args, &v, err);
                        if (r >= 0 && (int64_t)v < 0) {
                                errbuf_set(err, "mprotect in pid %d failed: %s", pid,
                                           strerror((int)-(int64_t)v));
                                r = (int)(int64_t)v;
                        }
                        if (r < 0)
                                goto err_resume;
                }
        }
        r = resume_one(p, t, err);
        t = NULL;
        if (r < 0)
                goto err_unmap;

        log_debug("apply: mprotect done at %.2f ms", (double)(now_ns() - start) / 1e6);
        /* The unwinder must see the new mappings, and the code of every
         * patch in the registry, this one's included (harmless: nothing
         * jumps there yet). */
        r = u ? lp_unwinder_refresh(u, c.reg, err) : lp_unwinder_new(p, c.reg, &u, err);
        if (r < 0)
                goto err_unmap;
        log_debug("apply: unwinder done at %.2f ms", (double)(now_ns() - start) / 1e6);
        r = lp_transition_stop(p, u, ranges, n_ranges, timeout, commit_apply, &c,
                               &res.transition, err);
        if (r < 0) {
                if (r == -EBUSY) {
                        char msg[sizeof(err->msg)];
                        snprintf(msg, sizeof(msg), "%s", err->msg);
                        errbuf_set(err, "refusing to patch pid %d: %s", pid, msg);
                }
                goto err_unmap;
        }

        snprintf(res.id, sizeof(res.id), "%s", f->id);
        res.n_funcs = c.n_funcs;
        res.base = c.base;
        res.n_stubs = c.img->n_stubs;
        res.n_got = c.img->n_got;
        r = 0;
        goto out;

err_resume:
        if (t)
                (void)resume_one(p, t, NULL);
        t = NULL;
err_unmap:
        /* Take back what we mapped (one thread stopped for the syscalls). */
        if (!proc_gone(p))
                journal_drop(&c);
        if (!proc_gone(p) && (c.base || c.reg_created) && with_one_stopped(p, NULL, &t) == 0) {
                if (c.base)
                        (void)proc_munmap(p, c.base, c.size, NULL);
                if (c.reg_created)
                        (void)proc_munmap(p, c.reg->addr, c.reg->size, NULL);
                (void)resume_one(p, t, NULL);
        }
out:
        free(ranges);
        u = (proc_unwinder_free(u), NULL);
        {
                int q = proc_detach(p);
                if (r >= 0 && q < 0)
                        r = q;
        }
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
        uint64_t unmap_base, unmap_size; /* set by the commit */
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
        /* Nothing can enter the image any more and no thread is in it: it
         * is unmapped after the window (revert_index), to keep it short. */
        c->unmap_base = pt.base;
        c->unmap_size = pt.size;
        return 0;
}

/* Remove patch `idx` of the registry from the target, under the stop
 * check on its code. */
static int revert_index(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg,
                        uint32_t idx, double timeout, struct lp_revert_result *res,
                        struct errbuf *err)
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
        if (pt->state == LP_REG_STATE_APPLIED) {
                /* Journal: from here on, an interruption completes the revert. */
                reg->patches[idx].state = LP_REG_STATE_REVERTING;
                r = lp_registry_store(p, reg, err);
                if (r < 0)
                        return r;
        }
        r = lp_transition_stop(p, u, &range, 1, timeout, commit_revert, &c, &res->transition,
                               err);
        if (r >= 0 && c.unmap_size) {
                struct proc_thread *t = NULL;
                if (with_one_stopped(p, NULL, &t) == 0) {
                        (void)proc_munmap(p, c.unmap_base, c.unmap_size, NULL);
                        (void)resume_one(p, t, NULL);
                }
        }
        if (r < 0 && reg->patches[idx].state == LP_REG_STATE_REVERTING &&
            idx < reg->hdr.n_patches && strcmp(reg->patches[idx].id, res->id) == 0) {
                /* Refused: it stays applied, as it was. */
                reg->patches[idx].state = LP_REG_STATE_APPLIED;
                (void)lp_registry_store(p, reg, NULL);
        }
        return r;
}

/* Finish what a killed liveup left: every record not APPLIED is removed
 * from the target (its jumps, if any were written, undone; its memory
 * unmapped). Returns how many were repaired. */
static int recover(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg,
                   double timeout, struct errbuf *err)
{
        int n = 0, r;

        while (reg->hdr.n_patches > 0) {
                uint32_t top = reg->hdr.n_patches - 1;
                struct lp_revert_result res = {};
                uint32_t state = reg->patches[top].state;

                if (state == LP_REG_STATE_APPLIED)
                        break;
                log_debug("pid %d: completing an interrupted %s of patch '%s'", proc_pid(p),
                          state == LP_REG_STATE_APPLYING ? "apply" : "revert",
                          reg->patches[top].id);
                r = revert_index(p, u, reg, top, timeout, &res, err);
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

        r = revert_index(p, u, reg, (uint32_t)idx, timeout, &res, err);
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
