/* Unwinding the stacks of a stopped process with libdw, inside the stop
 * window.
 *
 * libdw does the CFI work (.eh_frame, else .debug_frame, else its own
 * frame-pointer fallback); this file gives it the process through
 * Dwfl_Thread_Callbacks instead of letting it ptrace by itself
 * (dwfl_linux_proc_attach would attach and stop threads on its own, which
 * collides with src/proc owning the ptrace relationship):
 * - threads are src/proc's threads (proc_thread_at/proc_thread_by_tid);
 * - initial registers are the ones src/proc already fetched for this stop
 *   (proc_regs, converted with arch_regs_to_dwarf);
 * - memory is read with proc_read() through a small cache of 4 KiB chunks,
 *   because each frame reads a few words and one process_vm_readv costs
 *   about as much as reading a whole page.
 *
 * Lifecycle: proc_unwinder_new() reports every mapped object to libdw and
 * warms up the CFI of each (opening files and indexing .eh_frame_hdr
 * costs ~1 ms in total, so it is done while the threads still run).
 * proc_unwind_thread() is then called for stopped threads, any number of
 * times, across stops. proc_unwinder_refresh() re-reads the maps after the
 * target's mappings changed.
 *
 * Invariants:
 * - The memory cache lives for one proc_unwind_thread() call only: the
 *   unwound thread is stopped while we read, but memory can change as soon
 *   as anything runs again.
 * - The libdw "process state" uses its own architecture backend, opened
 *   from a synthetic ELF header of this ISA, not from one of the reported
 *   modules: dwfl_attach_state(..., NULL, ...) would borrow the backend of
 *   the first module, which dangles once a refresh removes that module.
 * - Nothing here symbolises: a stack is a list of pcs.
 *
 * Why a stack ends, in proc_stack.error: 0 only when the last frame's
 * CFI marks the caller's return address undefined (glibc's _start and
 * clone3 do this: the outermost frame), checked here because libdw also
 * reports success when it merely failed to read the return address;
 * -E2BIG at the frame limit; -EFAULT when a read of the stack failed;
 * -ENOENT when a pc lies outside every mapped object (nothing to unwind
 * it with); -EIO for anything else (libdw's message goes to reason). */
#include "proc/unwind.h"

#include "base/log.h"

#include <elf.h>
#include <elfutils/libdwfl.h>
#include <endian.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <string.h>

#define CHUNK_SIZE 4096u
#define CHUNK_SLOTS 4u
#define DEFAULT_MAX_FRAMES 256u

struct chunk {
        uint64_t base;
        bool valid;
        uint8_t data[CHUNK_SIZE];
};

/* What libdw passes back to set_initial_registers as thread_arg. One slot
 * is enough: libdw unwinds one thread at a time. */
struct thread_arg {
        struct proc_unwinder *u;
        struct proc_thread *t;
};

struct proc_unwinder {
        struct proc *p;
        pid_t pid;
        Dwfl *dwfl;

        /* Synthetic ELF header naming the ISA, for libdw's backend; must
         * outlive dwfl (libebl keeps the Elf). */
        Elf64_Ehdr arch_ehdr;
        Elf *arch_elf;

        /* State of the unwind in progress. */
        struct thread_arg targ;
        size_t next_index; /* for next_thread */
        struct proc_stack *stack;
        size_t max_frames;
        size_t cap;
        bool truncated;
        bool oom;
        bool frame_pc_failed;
        /* First failed read since the last frame was delivered: the one
         * that stopped the unwind, if it stopped. */
        int read_error;
        uint64_t read_error_addr;
        unsigned next_slot;
        struct chunk chunks[CHUNK_SLOTS];
};

/* ---- Memory ---------------------------------------------------------------- */

static void cache_reset(struct proc_unwinder *u)
{
        for (unsigned i = 0; i < CHUNK_SLOTS; i++)
                u->chunks[i].valid = false;
        u->next_slot = 0;
}

static int cache_read_word(struct proc_unwinder *u, uint64_t addr, uint64_t *ret)
{
        uint64_t base = ALIGN_DOWN(addr, (uint64_t)CHUNK_SIZE);
        struct chunk *c = NULL;
        int r;

        /* A word across a chunk boundary: read it directly (rare, stacks
         * are word-aligned). A chunk never crosses a mapping boundary, as
         * pages are at least CHUNK_SIZE. */
        if (addr - base > CHUNK_SIZE - sizeof(uint64_t))
                return proc_read(u->p, addr, ret, sizeof(*ret));

        for (unsigned i = 0; i < CHUNK_SLOTS; i++)
                if (u->chunks[i].valid && u->chunks[i].base == base) {
                        c = &u->chunks[i];
                        break;
                }
        if (!c) {
                c = &u->chunks[u->next_slot];
                u->next_slot = (u->next_slot + 1) % CHUNK_SLOTS;
                c->valid = false;
                r = proc_read(u->p, base, c->data, CHUNK_SIZE);
                if (r < 0)
                        return r;
                c->base = base;
                c->valid = true;
        }
        memcpy(ret, c->data + (addr - base), sizeof(*ret));
        return 0;
}

/* ---- libdw callbacks ------------------------------------------------------- */

static pid_t cb_next_thread(Dwfl *dwfl, void *dwfl_arg, void **thread_argp)
{
        struct proc_unwinder *u = dwfl_arg;

        if (!*thread_argp)
                u->next_index = 0;
        while (u->next_index < proc_n_threads(u->p)) {
                struct proc_thread *t = proc_thread_at(u->p, u->next_index++);

                if (!t || t->state != PROC_THREAD_STOPPED)
                        continue;
                u->targ = (struct thread_arg){ .u = u, .t = t };
                *thread_argp = &u->targ;
                return t->tid;
        }
        return 0;
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *dwfl_arg, void **thread_argp)
{
        struct proc_unwinder *u = dwfl_arg;
        struct proc_thread *t;

        t = proc_thread_by_tid(u->p, tid);
        if (!t || t->state != PROC_THREAD_STOPPED)
                return false;
        u->targ = (struct thread_arg){ .u = u, .t = t };
        *thread_argp = &u->targ;
        return true;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *dwfl_arg)
{
        struct proc_unwinder *u = dwfl_arg;
        uint64_t v;
        int r;

        r = cache_read_word(u, addr, &v);
        if (r < 0) {
                if (u->read_error == 0) {
                        u->read_error = r;
                        u->read_error_addr = addr;
                }
                return false;
        }
        *result = v;
        return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
        struct thread_arg *a = thread_arg;
        const struct arch_regs *regs;
        Dwarf_Word dw[ARCH_DWARF_NREGS];
        size_t n;

        if (proc_regs(a->u->p, a->t, &regs) < 0)
                return false;
        n = arch_regs_to_dwarf(regs, dw);
        if (!dwfl_thread_state_registers(thread, 0, (unsigned)n, dw))
                return false;
        /* Harmless where pc is one of the DWARF registers (x86-64: the
         * return-address column), needed where it is not. */
        dwfl_thread_state_register_pc(thread, arch_regs_pc(regs));
        return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
        .next_thread = cb_next_thread,
        .get_thread = cb_get_thread,
        .memory_read = cb_memory_read,
        .set_initial_registers = cb_set_initial_registers,
};

static char *debuginfo_path = NULL;

static const Dwfl_Callbacks dwfl_callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .debuginfo_path = &debuginfo_path,
};

/* ---- Setup ----------------------------------------------------------------- */

static const char *dwfl_last_error(void)
{
        const char *m = dwfl_errmsg(dwfl_errno());

        return m ? m : "unknown libdw error";
}

/* Open each module's ELF and index its .eh_frame now, outside of any stop
 * window, instead of on the first unwind that passes through it. */
static int warm_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
                       void *arg)
{
        Dwarf_Addr bias;

        (void)dwfl_module_eh_cfi(mod, &bias);
        return DWARF_CB_OK;
}

static int report_maps(struct proc_unwinder *u, struct errbuf *err)
{
        int r;

        dwfl_report_begin(u->dwfl);
        r = dwfl_linux_proc_report(u->dwfl, u->pid);
        if (r != 0) {
                const char *why = r > 0 ? strerror(r) : dwfl_last_error();

                dwfl_report_end(u->dwfl, NULL, NULL);
                errbuf_set(err, "cannot read the memory map of pid %d: %s", (int)u->pid, why);
                if (r == ENOENT || r == ESRCH)
                        return -ESRCH;
                return r > 0 ? -r : -EIO;
        }
        if (dwfl_report_end(u->dwfl, NULL, NULL) != 0) {
                errbuf_set(err, "cannot report the objects of pid %d: %s", (int)u->pid,
                           dwfl_last_error());
                return -EIO;
        }
        (void)dwfl_getmodules(u->dwfl, warm_module, NULL, 0);
        return 0;
}

static int attach_state(struct proc_unwinder *u, struct errbuf *err)
{
        if (!dwfl_attach_state(u->dwfl, u->arch_elf, u->pid, &thread_callbacks, u)) {
                errbuf_set(err, "cannot set up unwinding of pid %d: %s", (int)u->pid,
                           dwfl_last_error());
                return -EIO;
        }
        return 0;
}

static int open_arch_elf(struct proc_unwinder *u, struct errbuf *err)
{
        Elf64_Ehdr *h = &u->arch_ehdr;

        /* Only what libebl looks at to choose a backend: class, data
         * encoding, machine. The class and byte order are the host's,
         * i.e. the target's (src/proc only handles same-ISA targets). */
        _Static_assert(sizeof(void *) == 8, "only 64-bit targets have an arch port");
        memset(h, 0, sizeof(*h));
        memcpy(h->e_ident, ELFMAG, SELFMAG);
        h->e_ident[EI_CLASS] = ELFCLASS64;
        h->e_ident[EI_DATA] = __BYTE_ORDER == __LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB;
        h->e_ident[EI_VERSION] = EV_CURRENT;
        h->e_type = ET_CORE;
        h->e_machine = (Elf64_Half)arch_elf_machine();
        h->e_version = EV_CURRENT;
        h->e_ehsize = sizeof(*h);

        if (elf_version(EV_CURRENT) == EV_NONE) {
                errbuf_set(err, "libelf is too old");
                return -ENOTSUP;
        }
        u->arch_elf = elf_memory((char *)h, sizeof(*h));
        if (!u->arch_elf) {
                errbuf_set(err, "cannot describe the architecture to libdw: %s", elf_errmsg(-1));
                return -EIO;
        }
        return 0;
}

int proc_unwinder_new(struct proc *p, struct proc_unwinder **ret, struct errbuf *err)
{
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->p = p;
        u->pid = proc_pid(p);

        r = open_arch_elf(u, err);
        if (r < 0)
                return r;
        u->dwfl = dwfl_begin(&dwfl_callbacks);
        if (!u->dwfl) {
                errbuf_set(err, "cannot start libdw: %s", dwfl_last_error());
                return -ENOMEM;
        }
        r = report_maps(u, err);
        if (r < 0)
                return r;
        r = attach_state(u, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}

int proc_unwinder_refresh(struct proc_unwinder *u, struct errbuf *err)
{
        int r;

        /* dwfl_report_begin/end keeps the modules that are still mapped
         * (with their indexed CFI) and the attached process state; check
         * the latter anyway, libdw does not promise it. */
        r = report_maps(u, err);
        if (r < 0)
                return r;
        if (dwfl_pid(u->dwfl) == u->pid)
                return 0;
        log_debug("unwind: libdw dropped the thread state of pid %d on refresh, reattaching",
                  (int)u->pid);
        return attach_state(u, err);
}

void proc_unwinder_free(struct proc_unwinder *u)
{
        if (!u)
                return;
        if (u->dwfl)
                dwfl_end(u->dwfl);
        if (u->arch_elf)
                elf_end(u->arch_elf);
        free(u);
}

void proc_stack_done(struct proc_stack *s)
{
        if (!s)
                return;
        free(s->frames);
        s->frames = NULL;
        s->n = 0;
}

/* ---- Unwinding ------------------------------------------------------------- */

static int frame_cb(Dwfl_Frame *frame, void *arg)
{
        struct proc_unwinder *u = arg;
        struct proc_stack *s = u->stack;
        Dwarf_Addr pc;
        bool activation = false;

        if (!dwfl_frame_pc(frame, &pc, &activation)) {
                u->frame_pc_failed = true;
                return DWARF_CB_ABORT;
        }
        if (s->n >= u->max_frames) {
                /* There is one more frame than we may keep. */
                u->truncated = true;
                return DWARF_CB_ABORT;
        }
        if (s->n == u->cap) {
                size_t cap = MIN(MAX(u->cap * 2, (size_t)32), u->max_frames);
                struct proc_frame *f = realloc(s->frames, cap * sizeof(*f));

                if (!f) {
                        u->oom = true;
                        return DWARF_CB_ABORT;
                }
                s->frames = f;
                u->cap = cap;
        }
        s->frames[s->n++] = (struct proc_frame){ .pc = pc, .activation = activation };
        u->read_error = 0;
        return DWARF_CB_OK;
}

static Dwfl_Module *frame_module(struct proc_unwinder *u, const struct proc_frame *f)
{
        /* A return address may be just past its function, and past its
         * object: look up the call, as libdw does. */
        return dwfl_addrmodule(u->dwfl, f->pc - (f->activation ? 0 : 1));
}

/* libdw ends an unwind with success (0) both when the CFI of the last
 * frame marks the caller's return address undefined, which is how
 * glibc's _start and clone3 say "outermost frame", and when it merely
 * could not compute the return address (unreadable stack slot, or a
 * return address of 0): frame_unwind.c sets PC_UNDEFINED in both cases.
 * A stack cut short must not pass for a complete one, so ask the CFI of
 * the last frame ourselves: the first CFI with an entry for the pc
 * decides, .eh_frame before .debug_frame, as in libdw. */
static bool ends_at_outermost(struct proc_unwinder *u, const struct proc_frame *f)
{
        Dwarf_Addr pc = f->pc - (f->activation ? 0 : 1);
        Dwfl_Module *mod = frame_module(u, f);

        if (!mod)
                return false;
        for (int pass = 0; pass < 2; pass++) {
                Dwarf_CFI *cfi;
                Dwarf_Frame *frame = NULL;
                Dwarf_Op ops_mem[3], *ops = NULL;
                Dwarf_Addr bias = 0;
                size_t nops = 0;
                bool undefined;
                int ra;

                cfi = pass == 0 ? dwfl_module_eh_cfi(mod, &bias) : dwfl_module_dwarf_cfi(mod, &bias);
                if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0)
                        continue;
                ra = dwarf_frame_info(frame, NULL, NULL, NULL);
                /* "undefined" is nops == 0 with ops == ops_mem (libdw.h);
                 * ops == NULL would be "same value". */
                undefined = ra >= 0 && dwarf_frame_register(frame, ra, ops_mem, &ops, &nops) == 0 &&
                            nops == 0 && ops == ops_mem;
                free(frame);
                return undefined;
        }
        return false;
}

static void stack_set_error(struct proc_stack *s, int error, const char *fmt, ...)
        _printf_(3, 4);

static void stack_set_error(struct proc_stack *s, int error, const char *fmt, ...)
{
        va_list ap;

        s->error = error;
        va_start(ap, fmt);
        vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
        va_end(ap);
}

int proc_unwind_thread(struct proc_unwinder *u, struct proc_thread *t, size_t max_frames,
                       struct proc_stack *ret)
{
        struct proc_stack s = { .tid = t->tid };
        const struct arch_regs *regs;
        int dw_error, r;

        if (t->state == PROC_THREAD_GONE)
                return -ESRCH;
        if (t->state != PROC_THREAD_STOPPED)
                return -EBUSY;
        /* Fetch now, so that a thread that cannot be read is an error of
         * the call, not a stack with no frames. */
        r = proc_regs(u->p, t, &regs);
        if (r < 0)
                return r;

        u->stack = &s;
        u->max_frames = max_frames > 0 ? max_frames : DEFAULT_MAX_FRAMES;
        u->cap = 0;
        u->truncated = u->oom = u->frame_pc_failed = false;
        u->read_error = 0;
        cache_reset(u);
        (void)dwfl_errno(); /* clear */

        r = dwfl_getthread_frames(u->dwfl, t->tid, frame_cb, u);
        dw_error = dwfl_errno();
        u->stack = NULL;

        if (u->oom) {
                proc_stack_done(&s);
                return -ENOMEM;
        }
        if (r == 0) {
                /* libdw says "done"; believe it only if the CFI agrees. */
                const struct proc_frame *last = &s.frames[s.n - 1];

                if (ends_at_outermost(u, last))
                        ;
                else if (u->read_error < 0)
                        stack_set_error(&s, u->read_error,
                                        "cannot read memory at 0x%" PRIx64 " (caller of 0x%" PRIx64
                                        ")", u->read_error_addr, last->pc);
                else
                        stack_set_error(&s, -EIO,
                                        "no caller for pc 0x%" PRIx64
                                        ", and its unwind info does not mark the outermost frame",
                                        last->pc);
        } else if (u->truncated)
                stack_set_error(&s, -E2BIG, "more than %zu frames", u->max_frames);
        else if (u->frame_pc_failed)
                stack_set_error(&s, -EIO, "no pc for frame #%zu", s.n);
        else if (u->read_error < 0)
                stack_set_error(&s, u->read_error, "cannot read memory at 0x%" PRIx64 ": %s",
                                u->read_error_addr, strerror(-u->read_error));
        else if (s.n > 0 && !frame_module(u, &s.frames[s.n - 1]))
                stack_set_error(&s, -ENOENT, "pc 0x%" PRIx64 " is not in any mapped object",
                                s.frames[s.n - 1].pc);
        else {
                const char *m = dw_error ? dwfl_errmsg(dw_error) : NULL;

                stack_set_error(&s, -EIO, "%s", m ? m : "libdw could not unwind further");
        }
        if (s.error != 0)
                log_debug("unwind: thread %d stopped after %zu frames: %s", (int)t->tid, s.n,
                          s.reason);
        *ret = s;
        return 0;
}
