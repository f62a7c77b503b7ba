/* Unwinding the stacks of a stopped process with libdw, inside the stop
 * window, reliably enough for a consistency check.
 *
 * libdw does the CFI work (.eh_frame, else .debug_frame); this file gives
 * it the process through Dwfl_Thread_Callbacks instead of letting it
 * ptrace by itself (dwfl_linux_proc_attach would attach and stop threads
 * on its own, which collides with src/proc owning the ptrace
 * relationship):
 * - threads are src/proc's threads (proc_thread_at/proc_thread_by_tid);
 * - initial registers are the ones src/proc already fetched for this stop
 *   (proc_regs, converted with arch_regs_to_dwarf);
 * - memory is read with proc_read() through a small cache of 4 KiB chunks,
 *   because each frame reads a few words and one process_vm_readv costs
 *   about as much as reading a whole page: with the cache a warm unwind
 *   of a 8-15 frame stack costs 5-7 µs, without it 27-66 µs (16 threads,
 *   tests/unit/test-unwind.c n16_*).
 *
 * Code outside file mappings (a live patch's image) is described by the
 * caller (proc_unwinder_set_code): for each region this file reads the
 * region's .eh_frame from the target and wraps it in a small ELF image
 * built in memory, which libdw gets from find_elf as if it were a file:
 * - ET_EXEC, one PT_LOAD at the region's start (so libdw's load bias is
 *   0 and addresses are the target's), section headers for the code (a
 *   NOBITS .text over [start, end)) and for .eh_frame at its address in
 *   the target, whose pc-relative FDE pointers libdw decodes against
 *   that address;
 * - no .eh_frame_hdr: libdw then reads the FDEs in order, indexing them
 *   in a tree as it goes (fine for a patch's few functions), and
 *   warm_module has it read them all before any stop window;
 * - the module is named "[NAME] #SERIAL", a new serial whenever the
 *   region or its .eh_frame bytes change, because libdw keeps a module
 *   (and the Elf it opened) across a report when name and range match.
 * The image buffer must outlive libdw's Elf: it is freed only after the
 * dwfl_report_end() that dropped its module, or after dwfl_end().
 *
 * Lifecycle: proc_unwinder_new() reports every mapped object to libdw and
 * warms up the CFI of each (opening files and indexing .eh_frame_hdr
 * costs ~1 ms in total, so it is done while the threads still run).
 * proc_unwind_thread() is then called for stopped threads, any number of
 * times, across stops. proc_unwinder_refresh() re-reads the maps after the
 * target's mappings changed, and the code regions' .eh_frame;
 * proc_unwinder_set_code() replaces the code regions and refreshes.
 *
 * Invariants:
 * - The memory cache lives for one proc_unwind_thread() call only: the
 *   unwound thread is stopped while we read, but memory can change as soon
 *   as anything runs again.
 * - Nothing slow happens in the stop window: separate debug files are
 *   never opened for a module that has .eh_frame (find_debuginfo), as
 *   loading libc's took 78 ms, for nothing on x86-64.
 * - The libdw "process state" uses its own architecture backend, opened
 *   from a synthetic ELF header of this ISA, not from one of the reported
 *   modules: dwfl_attach_state(..., NULL, ...) would borrow the backend of
 *   the first module, which dangles once a refresh removes that module.
 * - Nothing here symbolises: a stack is a list of pcs.
 *
 * What libdw returns is not taken at its word, because two of its habits
 * would let a stack cut short pass for a complete one:
 * - for a pc without CFI it guesses the caller by following the frame
 *   pointer (its ebl fallback), and may then reach clone3 and report
 *   success; here the stack ends at the first frame without CFI;
 * - it reports success when it could not read the return address, as if
 *   the stack ended there; here a stack is complete only when the last
 *   frame's CFI marks the return address undefined, which is how glibc's
 *   _start and clone3 mark the outermost frame.
 * So proc_stack.error is 0 only for a complete stack; else -ENOENT when a
 * pc has no CFI (anonymous code not described by proc_unwinder_set_code:
 * a JIT; a pc of a code region that its .eh_frame does not cover; asm
 * without CFI, e.g. a thread born during the stop, still at the return
 * of the clone syscall), -EFAULT when a read of the stack failed,
 * -E2BIG at the frame limit, -EIO for anything else (libdw's message goes
 * to reason).
 *
 * The fast path. libdw re-executes a frame's CIE and FDE instructions and
 * allocates a Dwarf_Frame for every frame of every unwind, and evaluates
 * the CFA once per register: too slow for a stop window over many
 * threads (bench-stop, 16 threads, 12-frame stacks, warm: libdw 6-8 µs
 * per thread, the fast path 2.5-3.5 µs, of which ~1.9 µs is the one
 * process_vm_readv of the stack's chunk). So proc_unwind_thread() first
 * unwinds by itself (unwind_fast), with rules taken from libdw's CFI once
 * per lookup pc (dwarf_cfi_addrframe, dwarf_frame_cfa,
 * dwarf_frame_register) and kept in the cfi_cache beside the verdict
 * (cleared with it on refresh and set_code), and reads through the same
 * chunk cache. It computes what libdw's frame_unwind.c computes, register
 * by register, and gives up on the whole thread, which libdw then unwinds
 * from scratch, wherever the two could differ. Invariants:
 * - It carries all ARCH_DWARF_NREGS registers libdw carries, each known or
 *   unknown as in libdw (a same-value rule copies the state, undefined
 *   makes it unknown, a register rule of an unknown register too), because
 *   a CFA rule further up may use any callee-saved register. Generic code
 *   names no register: the return-address column comes from the CFI, and
 *   src/arch says whether libdw takes its value as the pc unchanged
 *   (arch_dwarf_ra_is_pc).
 * - A frame's rule is "simple" when the CFA is a register plus an offset
 *   and every register's rule is undefined, same value, saved at CFA + k,
 *   CFA + k, or a register plus k; and the frame is no signal frame.
 *   Anything else (DW_CFA_def_cfa_expression as in PLT stubs and
 *   __restore_rt, DW_CFA_expression and val_expression, a signal frame's
 *   "S" CIE, an offset beyond 32 bits) makes it give up.
 * - Only the innermost frame is an activation (libdw also marks frames
 *   next to a signal frame, where it gives up); other pcs are looked up
 *   at pc - 1, in the same cfi_cache as the libdw path's checks.
 * - Its verdicts are the libdw path's: the stack ends at the first pc
 *   without CFI (-ENOENT, the same reason, from stack_set_no_cfi), is
 *   complete at a frame whose CFI marks the return address undefined,
 *   -E2BIG when one more frame than max_frames exists. Where libdw's
 *   outcome depends on its quirks it gives up rather than imitating them:
 *   any failed read (libdw then leaves a register unknown and may or may
 *   not report the read), an unknown CFA register or return address, a
 *   return address of 0 (libdw ends the stack there as if complete).
 * LIVEUP_UNWIND=libdw in the environment (read by proc_unwinder_new) or
 * proc_unwinder_set_path() turns the fast path off, for tests that compare
 * the two and for debugging only; proc_unwinder_stats() counts which path
 * unwound how many stacks and why the fast path gave up. */
#include "proc/unwind.h"
#include "proc-internal.h"

#include "base/log.h"

#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdwfl.h>
#include <endian.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#define CHUNK_SIZE 4096u
#define CHUNK_SLOTS 4u
#define DEFAULT_MAX_FRAMES 256u
#define CFI_CACHE_SIZE 1024u /* power of two */
#define CODE_MAX_REGIONS 1024u
#define EH_FRAME_MAX (16u << 20)

/* What the CFI says about a (lookup) pc. */
enum cfi_kind {
        CFI_UNKNOWN = 0, /* not looked up yet */
        CFI_NONE,        /* no FDE: libdw would guess with frame pointers */
        CFI_FDE,         /* an FDE: the caller is found from it */
        CFI_OUTERMOST,   /* an FDE that marks the return address undefined */
};

/* How the fast path finds the caller's value of one register. */
enum reg_rule_kind {
        REG_UNDEFINED, /* unknown (the register is "unset", as in libdw) */
        REG_AT_CFA,    /* saved at CFA + off */
        REG_CFA,       /* CFA + off itself */
        REG_REGISTER,  /* this frame's register `from`, + off */
};

struct reg_rule {
        int32_t off;
        uint8_t regno; /* the register it is the rule of */
        uint8_t kind;  /* enum reg_rule_kind */
        uint8_t from;
};

/* The CFI of one pc in the form the fast path evaluates: CFA = register
 * cfa_reg + cfa_off; every register not listed keeps its value (same
 * value); rules[] give the others. simple false: some rule is beyond the
 * fast path (see the top of the file), libdw unwinds the stack. */
struct frame_rule {
        bool simple;
        uint8_t cfa_reg, ra, n_rules;
        int32_t cfa_off;
        struct reg_rule rules[ARCH_DWARF_NREGS];
};

struct cfi_entry {
        uint64_t pc;
        enum cfi_kind kind;
        bool met;               /* by proc_unwind_thread(), not only warmed */
        struct frame_rule rule; /* for CFI_FDE */
};

/* What a module's user data (libdw's per-module void *) points at: a
 * tag, first member of whatever owns it. NULL: an object file not
 * looked at yet (see warm_module). */
enum mod_kind {
        MOD_EH_FRAME_ONLY = 1, /* an object file with .eh_frame */
        MOD_CODE,              /* a code region (struct code_region) */
};

struct mod_tag {
        enum mod_kind kind;
};

/* A code region as reported to libdw, and the ELF image libdw reads for
 * it (see the top of the file). */
struct code_region {
        struct mod_tag tag; /* first: the module's user data points here */
        uint64_t start, end, eh_frame_addr, eh_frame_size;
        char name[64];
        char modname[96];
        uint8_t *image;
        size_t image_size;
        size_t eh_off; /* of the .eh_frame bytes in image; 0: none */
};

/* Whose stack a chunk read ahead is: the thread, at which of its stops
 * (proc_thread.stopped_ns), so that a chunk left from an abandoned window
 * is never taken for the stack of a later stop. */
struct pre_owner {
        pid_t tid;
        uint64_t stopped_ns;
};

struct chunk {
        uint64_t base;
        bool valid;
        uint32_t len;          /* bytes valid from base: CHUNK_SIZE, or less for a
                                  * chunk read ahead (sp to the end of its page) */
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

        /* Stack chunks read ahead for a stop window, one per thread, all
         * in one process_vm_readv (proc_unwinder_preload); a thread's
         * proc_thread.preload is its index + 1. */
        struct chunk *pre;
        struct pre_owner *pre_owner;
        struct iovec *pre_local, *pre_remote;
        size_t cap_pre, n_pre;

        /* CFI verdicts and fast-path rules by lookup pc, for the whole
         * life of the unwinder (cleared on refresh: an address may then
         * belong to another object). Stacks of one process share most of
         * their pcs. */
        struct cfi_entry cfi_cache[CFI_CACHE_SIZE];
        bool unwinding;         /* inside proc_unwind_thread() */

        enum proc_unwind_path path;
        struct proc_unwind_stats stats;

        /* Code regions: as the caller set them (image NULL), and as
         * reported to libdw (owned, see report_maps). */
        struct code_region *want;
        size_t n_want;
        struct code_region **code;
        size_t n_code;
        unsigned long code_serial;
};

/* ---- Memory ---------------------------------------------------------------- */

static void cache_reset(struct proc_unwinder *u)
{
        for (unsigned i = 0; i < CHUNK_SLOTS; i++)
                u->chunks[i].valid = false;
        u->next_slot = 0;
}

/* Start the cache of thread `t` with the chunk read ahead for it, if any
 * (it is used once: the thread runs again before another unwind). */
static void cache_seed(struct proc_unwinder *u, struct proc_thread *t)
{
        unsigned i = t->preload;

        t->preload = 0;
        if (i == 0 || i > u->n_pre || u->pre_owner[i - 1].tid != t->tid ||
            u->pre_owner[i - 1].stopped_ns != t->stopped_ns || !u->pre[i - 1].valid)
                return;
        memcpy(&u->chunks[0], &u->pre[i - 1], sizeof(u->chunks[0]));
        u->next_slot = 1;
        u->stats.preloaded++;
}

static int cache_read_word(struct proc_unwinder *u, uint64_t addr, uint64_t *ret)
{
        uint64_t base = ALIGN_DOWN(addr, (uint64_t)CHUNK_SIZE);
        struct chunk *c;
        int r;

        for (unsigned i = 0; i < CHUNK_SLOTS; i++) {
                c = &u->chunks[i];
                if (c->valid && addr >= c->base && c->len >= sizeof(*ret) &&
                    addr - c->base <= c->len - sizeof(*ret)) {
                        memcpy(ret, c->data + (addr - c->base), sizeof(*ret));
                        return 0;
                }
        }
        /* A word across a page boundary: read it directly (rare, stacks
         * are word-aligned). A page-aligned chunk never crosses a mapping
         * boundary. */
        if (addr - base > CHUNK_SIZE - sizeof(uint64_t))
                return proc_read(u->p, addr, ret, sizeof(*ret));
        c = &u->chunks[u->next_slot];
        u->next_slot = (u->next_slot + 1) % CHUNK_SLOTS;
        c->valid = false;
        r = proc_read(u->p, base, c->data, CHUNK_SIZE);
        if (r < 0)
                return r;
        c->base = base;
        c->len = CHUNK_SIZE;
        c->valid = true;
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

/* Module user data: this module has .eh_frame, never look for its
 * separate debug file (see warm_module). */
static struct mod_tag eh_frame_only = { MOD_EH_FRAME_ONLY };

static struct code_region *mod_code_region(void *userdata)
{
        struct mod_tag *tag = userdata;

        return tag && tag->kind == MOD_CODE ? (struct code_region *)tag : NULL;
}

/* dwfl_linux_proc_find_elf, except for code regions: their ELF image in
 * memory. libdw owns the Elf (elf_end when it drops the module), we own
 * the bytes. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                    char **file_name, Elf **elfp)
{
        struct code_region *c = mod_code_region(*userdata);

        if (!c)
                return dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
        *elfp = elf_memory((char *)c->image, c->image_size);
        if (!*elfp)
                log_debug("unwind: cannot open the image of code region %s: %s", c->name,
                          elf_errmsg(-1));
        return -1;
}

/* dwfl_standard_find_debuginfo, except for tagged modules (eh_frame_only,
 * and code regions, which have no file at all):
 * libdw falls back to .debug_frame for any pc whose .eh_frame has no FDE
 * (code without CFI, or an address in the gap after a module, which
 * dwfl_addrmodule attributes to the module), and loading a debug file
 * found by build-id inside the stop window cost 78 ms for libc's. On
 * x86-64 gcc emits unwind info in .eh_frame only, so the debug file has
 * nothing more to offer the unwinder. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                          Dwarf_Addr base, const char *file_name, const char *debuglink_file,
                          GElf_Word debuglink_crc, char **debuginfo_file_name)
{
        if (*userdata)
                return -1;
        return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
                                            debuglink_file, debuglink_crc, debuginfo_file_name);
}

static char *debuginfo_path = NULL;

static const Dwfl_Callbacks dwfl_callbacks = {
        .find_elf = find_elf,
        .find_debuginfo = find_debuginfo,
        .debuginfo_path = &debuginfo_path,
};

/* ---- Setup ----------------------------------------------------------------- */

static const char *dwfl_last_error(void)
{
        const char *m = dwfl_errmsg(dwfl_errno());

        return m ? m : "unknown libdw error";
}

/* Open each module's ELF and index its CFI now, outside of any stop
 * window, instead of on the first unwind that passes through it: the
 * .eh_frame of modules that have one (and then never their debug file,
 * see find_debuginfo), else the .debug_frame, which may need the debug
 * file. Modules kept across a refresh keep their tag. */
static int warm_module(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
                       void *arg)
{
        Dwarf_Addr bias;

        if (mod_code_region(*userdata)) {
                struct code_region *c = mod_code_region(*userdata);
                Dwarf_CFI *cfi = dwfl_module_eh_cfi(mod, &bias);
                Dwarf_Frame *frame = NULL;

                /* .eh_frame or nothing. Without an .eh_frame_hdr libdw
                 * reads FDEs in order until one covers the pc, indexing
                 * them on the way: a lookup of a pc that none covers
                 * indexes them all, now rather than in the stop window. */
                if (cfi && dwarf_cfi_addrframe(cfi, c->start - 1 - bias, &frame) == 0)
                        free(frame);
                return DWARF_CB_OK;
        }
        if (*userdata)
                return DWARF_CB_OK;
        if (dwfl_module_eh_cfi(mod, &bias))
                *userdata = &eh_frame_only;
        else
                (void)dwfl_module_dwarf_cfi(mod, &bias);
        return DWARF_CB_OK;
}

static void code_region_free(struct code_region *c)
{
        if (!c)
                return;
        free(c->image);
        free(c);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct code_region *, code_region_free);

static void code_regions_free(struct code_region **code, size_t n)
{
        for (size_t i = 0; i < n; i++)
                code_region_free(code[i]);
        free(code);
}

static struct code_region *module_code_region(Dwfl_Module *mod)
{
        void **userdata = NULL;

        if (!dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL) || !userdata)
                return NULL;
        return mod_code_region(*userdata);
}

/* The ELF image of region c, its .eh_frame being eh[0..eh_size): see the
 * top of the file. Addresses are the target's; no code bytes (.text is
 * NOBITS): the unwinder never reads code. */
static int build_image(struct code_region *c, const uint8_t *eh, size_t eh_size)
{
        static const char shstrtab[] = "\0.text\0.eh_frame\0.shstrtab";
        enum { SH_TEXT = 1, SH_EH_FRAME, SH_SHSTRTAB, SH_N };
        enum { NAME_TEXT = 1, NAME_EH_FRAME = 7, NAME_SHSTRTAB = 17 };
        size_t eh_off = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
        size_t str_off = eh_off + eh_size;
        size_t sh_off = ALIGN_UP(str_off + sizeof(shstrtab), (size_t)8);
        size_t size = sh_off + SH_N * sizeof(Elf64_Shdr);
        Elf64_Ehdr *h;
        Elf64_Phdr *ph;
        Elf64_Shdr *sh;
        uint8_t *img;

        _Static_assert(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) == 120, "eh_frame stays aligned");
        img = calloc(1, size);
        if (!img)
                return -ENOMEM;
        h = (Elf64_Ehdr *)img;
        memcpy(h->e_ident, ELFMAG, SELFMAG);
        h->e_ident[EI_CLASS] = ELFCLASS64;
        h->e_ident[EI_DATA] = __BYTE_ORDER == __LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB;
        h->e_ident[EI_VERSION] = EV_CURRENT;
        h->e_type = ET_EXEC;
        h->e_machine = (Elf64_Half)arch_elf_machine();
        h->e_version = EV_CURRENT;
        h->e_phoff = sizeof(*h);
        h->e_shoff = sh_off;
        h->e_ehsize = sizeof(*h);
        h->e_phentsize = sizeof(*ph);
        h->e_phnum = 1;
        h->e_shentsize = sizeof(*sh);
        h->e_shnum = SH_N;
        h->e_shstrndx = SH_SHSTRTAB;

        /* libdw's load bias is the module's start minus the first PT_LOAD's
         * p_vaddr rounded down to p_align: 0 here. */
        ph = (Elf64_Phdr *)(img + h->e_phoff);
        ph->p_type = PT_LOAD;
        ph->p_flags = PF_R | PF_X;
        ph->p_vaddr = ph->p_paddr = c->start;
        ph->p_memsz = c->end - c->start;
        ph->p_align = 1;

        if (eh_size > 0)
                memcpy(img + eh_off, eh, eh_size);
        memcpy(img + str_off, shstrtab, sizeof(shstrtab));
        sh = (Elf64_Shdr *)(img + sh_off);
        sh[SH_TEXT] = (Elf64_Shdr){
                .sh_name = NAME_TEXT,
                .sh_type = SHT_NOBITS,
                .sh_flags = SHF_ALLOC | SHF_EXECINSTR,
                .sh_addr = c->start,
                .sh_offset = eh_off,
                .sh_size = c->end - c->start,
                .sh_addralign = 1,
        };
        /* libdw looks for .eh_frame by name and skips a NOBITS one: no
         * call frame information at all. */
        sh[SH_EH_FRAME] = (Elf64_Shdr){
                .sh_name = NAME_EH_FRAME,
                .sh_type = eh_size > 0 ? SHT_PROGBITS : SHT_NOBITS,
                .sh_flags = SHF_ALLOC,
                .sh_addr = c->eh_frame_addr,
                .sh_offset = eh_off,
                .sh_size = eh_size,
                .sh_addralign = 1,
        };
        sh[SH_SHSTRTAB] = (Elf64_Shdr){
                .sh_name = NAME_SHSTRTAB,
                .sh_type = SHT_STRTAB,
                .sh_offset = str_off,
                .sh_size = sizeof(shstrtab),
                .sh_addralign = 1,
        };
        c->image = img;
        c->image_size = size;
        c->eh_off = eh_size > 0 ? eh_off : 0;
        return 0;
}

/* The region to report for w: the one reported last time when neither it
 * nor its .eh_frame bytes changed (libdw then keeps its module and the
 * CFI it indexed), else a new one under a new module name. *ret_fresh
 * says which. Reads the target's memory. */
static int code_region_prepare(struct proc_unwinder *u, const struct code_region *w,
                               struct code_region **ret, bool *ret_fresh)
{
        _cleanup_(code_region_freep) struct code_region *c = NULL;
        _cleanup_free_ uint8_t *eh = NULL;
        size_t eh_size = w->eh_frame_size;
        int r;

        if (eh_size > 0) {
                eh = malloc(eh_size);
                if (!eh)
                        return -ENOMEM;
                r = proc_read(u->p, w->eh_frame_addr, eh, eh_size);
                if (r < 0) {
                        log_debug("unwind: cannot read the .eh_frame of code region %s at "
                                  "0x%" PRIx64 " (%s): no unwind info there",
                                  w->name, w->eh_frame_addr, strerror(-r));
                        eh_size = 0;
                }
        }
        for (size_t i = 0; i < u->n_code; i++) {
                struct code_region *old = u->code[i];

                if (old->start == w->start && old->end == w->end &&
                    old->eh_frame_addr == w->eh_frame_addr && old->eh_frame_size == eh_size &&
                    strcmp(old->name, w->name) == 0 &&
                    (eh_size == 0 || memcmp(old->image + old->eh_off, eh, eh_size) == 0)) {
                        *ret = old;
                        *ret_fresh = false;
                        return 0;
                }
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = *w;
        c->tag.kind = MOD_CODE;
        c->eh_frame_size = eh_size;
        c->image = NULL;
        snprintf(c->modname, sizeof(c->modname), "[%s] #%lu", c->name, ++u->code_serial);
        r = build_image(c, eh, eh_size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        *ret_fresh = true;
        return 0;
}

/* Report the mapped objects (from /proc/PID/maps) and the code regions.
 * Afterwards u->code holds the regions reported (libdw's modules of them
 * point at these); an image libdw may still read is never freed here
 * before dwfl_report_end() dropped its module. */
static int report_maps(struct proc_unwinder *u, struct errbuf *err)
{
        _cleanup_free_ bool *fresh = NULL;
        struct code_region **code = NULL;
        size_t n_code = 0;
        int r, q = 0;

        /* Read the .eh_frames and build the images first: no libdw report
         * is open while we read the target. */
        if (u->n_want > 0) {
                code = calloc(u->n_want, sizeof(*code));
                fresh = calloc(u->n_want, sizeof(*fresh));
                if (!code || !fresh) {
                        free(code);
                        return -ENOMEM;
                }
        }
        for (; n_code < u->n_want; n_code++) {
                r = code_region_prepare(u, &u->want[n_code], &code[n_code], &fresh[n_code]);
                if (r < 0) {
                        /* Nothing reported yet: only the new ones go. */
                        for (size_t i = 0; i < n_code; i++)
                                if (fresh[i])
                                        code_region_free(code[i]);
                        free(code);
                        errbuf_set(err, "cannot describe the code regions of pid %d: %s",
                                   (int)u->pid, strerror(-r));
                        return r;
                }
        }

        dwfl_report_begin(u->dwfl);
        r = dwfl_linux_proc_report(u->dwfl, u->pid);
        if (r != 0) {
                const char *why = r > 0 ? strerror(r) : dwfl_last_error();

                errbuf_set(err, "cannot read the memory map of pid %d: %s", (int)u->pid, why);
                if (r == ENOENT || r == ESRCH)
                        q = -ESRCH;
                else
                        q = r > 0 ? -r : -EIO;
        }
        for (size_t i = 0; q == 0 && i < n_code; i++) {
                Dwfl_Module *mod =
                        dwfl_report_module(u->dwfl, code[i]->modname, code[i]->start, code[i]->end);
                void **userdata = NULL;

                if (!mod || !dwfl_module_info(mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL)) {
                        errbuf_set(err, "cannot report code region %s of pid %d: %s", code[i]->name,
                                   (int)u->pid, dwfl_last_error());
                        q = -ENOMEM;
                        break;
                }
                *userdata = &code[i]->tag;
        }
        if (dwfl_report_end(u->dwfl, NULL, NULL) != 0 && q == 0) {
                errbuf_set(err, "cannot report the objects of pid %d: %s", (int)u->pid,
                           dwfl_last_error());
                q = -EIO;
        }
        /* libdw has dropped the modules not reported again, and their Elf:
         * the old images that are not in the new list can go. */
        for (size_t i = 0; i < u->n_code; i++) {
                bool kept = false;

                for (size_t k = 0; k < n_code && !kept; k++)
                        kept = code[k] == u->code[i];
                if (!kept)
                        code_region_free(u->code[i]);
        }
        free(u->code);
        u->code = code;
        u->n_code = n_code;
        if (q < 0)
                return q;
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
        const char *e;
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        /* The stack chunks are written now, not in the stop window: a
         * fresh zero page first written there costs a fault (~13 µs here;
         * the first unwind of a window took ~60 µs with 3 of them).
         * explicit_bzero, because a plain memset after calloc may be left
         * out by the compiler. The CFI cache is faulted in by
         * proc_unwinder_warm*(), slot by slot: all of it would be ~30
         * pages, 0.5 ms. */
        explicit_bzero(u->chunks, sizeof(u->chunks));
        u->p = p;
        u->pid = proc_pid(p);
        e = secure_getenv("LIVEUP_UNWIND");
        if (e && strcmp(e, "libdw") == 0)
                u->path = PROC_UNWIND_LIBDW;

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
         * (with their indexed CFI), the code regions that did not change,
         * and the attached process state; check the latter anyway, libdw
         * does not promise it. */
        r = report_maps(u, err);
        if (r < 0)
                return r;
        memset(u->cfi_cache, 0, sizeof(u->cfi_cache));
        if (dwfl_pid(u->dwfl) == u->pid)
                return 0;
        log_debug("unwind: libdw dropped the thread state of pid %d on refresh, reattaching",
                  (int)u->pid);
        return attach_state(u, err);
}

int proc_unwinder_set_code(struct proc_unwinder *u, const struct proc_code_region *regions,
                           size_t n, struct errbuf *err)
{
        _cleanup_free_ struct code_region *want = NULL;

        if (n > CODE_MAX_REGIONS) {
                errbuf_set(err, "pid %d: too many code regions to unwind through (%zu)",
                           (int)u->pid, n);
                return -EINVAL;
        }
        if (n > 0) {
                want = calloc(n, sizeof(*want));
                if (!want)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const struct proc_code_region *g = &regions[i];
                struct code_region *w = &want[i];

                snprintf(w->name, sizeof(w->name), "%s", g->name && *g->name ? g->name : "code");
                if (g->start >= g->end) {
                        errbuf_set(err, "code region %s of pid %d is empty", w->name, (int)u->pid);
                        return -EINVAL;
                }
                if (g->eh_frame_size > EH_FRAME_MAX ||
                    g->eh_frame_addr + g->eh_frame_size < g->eh_frame_addr) {
                        errbuf_set(err,
                                   "code region %s of pid %d: its .eh_frame (%" PRIu64
                                   " bytes at 0x%" PRIx64 ") is implausible",
                                   w->name, (int)u->pid, g->eh_frame_size, g->eh_frame_addr);
                        return -EINVAL;
                }
                for (size_t k = 0; k < i; k++)
                        if (g->start < regions[k].end && regions[k].start < g->end) {
                                errbuf_set(err, "code regions %s and %s of pid %d overlap",
                                           want[k].name, w->name, (int)u->pid);
                                return -EINVAL;
                        }
                w->start = g->start;
                w->end = g->end;
                w->eh_frame_size = g->eh_frame_size;
                w->eh_frame_addr = g->eh_frame_size > 0 ? g->eh_frame_addr : 0;
        }
        free(u->want);
        u->want = TAKE_PTR(want);
        u->n_want = n;
        return proc_unwinder_refresh(u, err);
}

void proc_unwinder_free(struct proc_unwinder *u)
{
        if (!u)
                return;
        /* libdw first: its Elfs read the code regions' images. */
        if (u->dwfl)
                dwfl_end(u->dwfl);
        code_regions_free(u->code, u->n_code);
        free(u->want);
        free(u->pre);
        free(u->pre_owner);
        free(u->pre_local);
        free(u->pre_remote);
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
        Dwarf_Addr pc = f->pc - (f->activation ? 0 : 1), start = 0, end = 0;
        Dwfl_Module *mod = dwfl_addrmodule(u->dwfl, pc);

        /* dwfl_addrmodule() also answers for the gap after a module (seen
         * with 0.188: an anonymous page 40 KiB past libelf's end), so
         * check the module's extent. */
        if (!mod || !dwfl_module_info(mod, NULL, &start, &end, NULL, NULL, NULL, NULL) ||
            pc < start || pc >= end)
                return NULL;
        return mod;
}

/* Register `regno` and offset of a DWARF operation that names a register
 * (DW_OP_bregN/bregx: its value plus an offset; DW_OP_regN/regx: its
 * value), when regno is one the fast path tracks and the offset fits. */
static bool op_register(const Dwarf_Op *op, uint8_t *ret_regno, int32_t *ret_off)
{
        uint64_t regno;
        int64_t off;

        if (op->atom >= DW_OP_breg0 && op->atom <= DW_OP_breg31) {
                regno = op->atom - DW_OP_breg0;
                off = (int64_t)op->number;
        } else if (op->atom == DW_OP_bregx) {
                regno = op->number;
                off = (int64_t)op->number2;
        } else if (op->atom >= DW_OP_reg0 && op->atom <= DW_OP_reg31) {
                regno = op->atom - DW_OP_reg0;
                off = 0;
        } else if (op->atom == DW_OP_regx) {
                regno = op->number;
                off = 0;
        } else
                return false;
        if (regno >= ARCH_DWARF_NREGS || off != (int32_t)off)
                return false;
        *ret_regno = (uint8_t)regno;
        *ret_off = (int32_t)off;
        return true;
}

/* The fast path's form of a register's rule, from the operations
 * dwarf_frame_register() gives for it. These are the only forms whose
 * evaluation by libdw (frame_unwind.c, expr_eval) the fast path repeats:
 * - DW_OP_call_frame_cfa [DW_OP_plus_uconst k]: the value saved at CFA + k
 *   (DW_CFA_offset and kin);
 * - the same followed by DW_OP_stack_value: CFA + k (DW_CFA_val_offset);
 * - one register operation: that register's value, + k (DW_CFA_register).
 * An expression (DW_CFA_expression, val_expression) comes with more or
 * other operations, and is refused. */
static bool reg_rule_of(const Dwarf_Op *ops, size_t nops, struct reg_rule *rr)
{
        size_t i = 1;
        int64_t off = 0;
        bool value = false;

        if (nops == 1 && op_register(&ops[0], &rr->from, &rr->off)) {
                rr->kind = REG_REGISTER;
                return true;
        }
        if (nops == 0 || ops[0].atom != DW_OP_call_frame_cfa)
                return false;
        if (i < nops && ops[i].atom == DW_OP_plus_uconst)
                off = (int64_t)ops[i++].number;
        if (i < nops && ops[i].atom == DW_OP_stack_value) {
                value = true;
                i++;
        }
        if (i != nops || off != (int32_t)off)
                return false;
        rr->kind = value ? REG_CFA : REG_AT_CFA;
        rr->off = (int32_t)off;
        return true;
}

/* The fast path's rule for `frame`, whose return-address column is ra;
 * ret->simple false when the fast path cannot follow it. */
static void frame_rule_of(Dwarf_Frame *frame, int ra, struct frame_rule *ret)
{
        struct frame_rule fr = {};
        Dwarf_Op *ops = NULL;
        size_t nops = 0;
        bool signal = false;

        *ret = (struct frame_rule){ .simple = false };
        /* A signal frame (CIE augmentation "S") changes how libdw looks up
         * the next frame and its activation flag: libdw's. */
        if (!arch_dwarf_ra_is_pc() || ra < 0 || ra >= ARCH_DWARF_NREGS ||
            dwarf_frame_info(frame, NULL, NULL, &signal) < 0 || signal)
                return;
        /* CFA: one register plus an offset (DW_CFA_def_cfa and kin), as
         * dwarf_frame_cfa() gives it; an expression is refused. */
        if (dwarf_frame_cfa(frame, &ops, &nops) != 0 || nops != 1 ||
            !op_register(&ops[0], &fr.cfa_reg, &fr.cfa_off))
                return;
        fr.ra = (uint8_t)ra;
        /* Every register libdw carries from frame to frame
         * (ARCH_DWARF_NREGS, see src/arch/arch.h), not only those this
         * frame's caller needs: a rule further up may use any of them. */
        for (int regno = 0; regno < ARCH_DWARF_NREGS; regno++) {
                Dwarf_Op ops_mem[3];
                struct reg_rule rr = { .regno = (uint8_t)regno };

                ops = NULL;
                nops = 0;
                if (dwarf_frame_register(frame, regno, ops_mem, &ops, &nops) != 0)
                        return;
                if (nops == 0) {
                        /* libdw.h: ops NULL is "same value", ops_mem
                         * "undefined". */
                        if (!ops)
                                continue;
                        if (ops != ops_mem)
                                return;
                        rr.kind = REG_UNDEFINED;
                } else if (!reg_rule_of(ops, nops, &rr))
                        return;
                fr.rules[fr.n_rules++] = rr;
        }
        fr.simple = true;
        *ret = fr;
}

static void cfi_lookup(struct proc_unwinder *u, const struct proc_frame *f,
                       struct cfi_entry *ret)
{
        Dwarf_Addr pc = f->pc - (f->activation ? 0 : 1);
        Dwfl_Module *mod = frame_module(u, f);
        int passes;

        ret->kind = CFI_NONE;
        ret->rule = (struct frame_rule){ .simple = false };
        if (!mod)
                return;
        /* The first CFI with an entry for the pc decides, .eh_frame before
         * .debug_frame, as in libdw's frame_unwind.c. A code region has
         * no .debug_frame. */
        passes = module_code_region(mod) ? 1 : 2;
        for (int pass = 0; pass < passes; pass++) {
                Dwarf_CFI *cfi;
                Dwarf_Frame *frame = NULL;
                Dwarf_Op ops_mem[3], *ops = NULL;
                Dwarf_Addr bias = 0;
                size_t nops = 0;
                bool undefined;
                int ra;

                cfi = pass == 0 ? dwfl_module_eh_cfi(mod, &bias)
                                : dwfl_module_dwarf_cfi(mod, &bias);
                if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0)
                        continue;
                ra = dwarf_frame_info(frame, NULL, NULL, NULL);
                /* "undefined" is nops == 0 with ops == ops_mem (libdw.h);
                 * ops == NULL would be "same value". */
                undefined = ra >= 0 && dwarf_frame_register(frame, ra, ops_mem, &ops, &nops) == 0 &&
                            nops == 0 && ops == ops_mem;
                ret->kind = undefined ? CFI_OUTERMOST : CFI_FDE;
                if (!undefined)
                        frame_rule_of(frame, ra, &ret->rule);
                free(frame);
                return;
        }
}

/* What the CFI says about the pc of frame f; cached. The entry is valid
 * until the next lookup. */
static const struct cfi_entry *cfi_entry_of(struct proc_unwinder *u, const struct proc_frame *f)
{
        uint64_t key = f->pc - (f->activation ? 0 : 1);
        struct cfi_entry *e = &u->cfi_cache[(key ^ (key >> 10) ^ (key >> 20)) &
                                            (CFI_CACHE_SIZE - 1)];

        if (e->kind == CFI_UNKNOWN || e->pc != key) {
                e->pc = key;
                e->met = false;
                cfi_lookup(u, f, e);
        }
        e->met |= u->unwinding;
        return e;
}

static enum cfi_kind cfi_kind_of(struct proc_unwinder *u, const struct proc_frame *f)
{
        return cfi_entry_of(u, f)->kind;
}

static const struct proc_frame *last_frame(const struct proc_stack *s)
{
        return &s->frames[s->n - 1];
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

/* The stack ends at its last frame, whose pc has no CFI: -ENOENT. */
static void stack_set_no_cfi(struct proc_unwinder *u, struct proc_stack *s)
{
        Dwfl_Module *mod = frame_module(u, last_frame(s));
        struct code_region *c = mod ? module_code_region(mod) : NULL;

        if (c)
                stack_set_error(s, -ENOENT, "no unwind info for pc 0x%" PRIx64 " (in %s)",
                                last_frame(s)->pc, c->name);
        else
                stack_set_error(s, -ENOENT,
                                mod ? "no unwind info for pc 0x%" PRIx64
                                    : "pc 0x%" PRIx64 " is in no object file (no unwind info)",
                                last_frame(s)->pc);
}

/* ---- Unwinding with libdw -------------------------------------------------- */

static int unwind_libdw(struct proc_unwinder *u, struct proc_thread *t, size_t max_frames,
                        struct proc_stack *ret)
{
        struct proc_stack s = { .tid = t->tid };
        bool guessed = false;
        int dw_error, r;

        u->stack = &s;
        u->max_frames = max_frames;
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
        /* libdw takes a step without CFI by guessing with frame pointers
         * (its ebl fallback): the stack is reliable only up to the first
         * frame whose pc has no CFI. */
        for (size_t i = 0; i + 1 < s.n; i++)
                if (cfi_kind_of(u, &s.frames[i]) == CFI_NONE) {
                        s.n = i + 1;
                        guessed = true;
                        break;
                }

        if (s.n == 0)
                stack_set_error(&s, -EIO, "no frame: %s",
                                dw_error ? dwfl_errmsg(dw_error) : "libdw gave none");
        else if (guessed || cfi_kind_of(u, last_frame(&s)) == CFI_NONE)
                stack_set_no_cfi(u, &s);
        else if (r == 0 && cfi_kind_of(u, last_frame(&s)) == CFI_OUTERMOST)
                ; /* complete */
        else if (u->truncated)
                stack_set_error(&s, -E2BIG, "frame limit (%zu) reached", u->max_frames);
        else if (u->frame_pc_failed)
                stack_set_error(&s, -EIO, "no pc for frame #%zu", s.n);
        else if (u->read_error < 0)
                /* Whether libdw failed (-1) or took the failed read for
                 * the end of the stack (0). */
                stack_set_error(&s, u->read_error,
                                "cannot read memory at 0x%" PRIx64 " (caller of 0x%" PRIx64 ")",
                                u->read_error_addr, last_frame(&s)->pc);
        else if (r == 0)
                stack_set_error(&s, -EIO,
                                "no caller for pc 0x%" PRIx64
                                ", and its unwind info does not mark the outermost frame",
                                last_frame(&s)->pc);
        else {
                const char *m = dw_error ? dwfl_errmsg(dw_error) : NULL;

                stack_set_error(&s, -EIO, "%s", m ? m : "libdw could not unwind further");
        }
        *ret = s;
        return 0;
}

/* ---- The fast path --------------------------------------------------------- */

/* Why the fast path gave up on a stack. */
enum gave_up {
        GAVE_UP_RULE = 1, /* a frame's CFI is not simple */
        GAVE_UP_READ,     /* a read failed (libdw's way of failing then is
                           * intricate: let it) */
        GAVE_UP_OTHER,    /* a register a rule needs is unknown, the return
                           * address is unknown or 0 */
};

#define REG_BIT(regno) (UINT32_C(1) << (regno))

/* From the registers of a frame (regs, *set: which are known) to those of
 * its caller, by rule fr, as libdw's handle_cfi() computes them: every
 * rule is evaluated against the frame's own registers, a rule that needs
 * an unknown register leaves the caller's unknown. Returns 0, or a
 * gave_up reason (regs untouched). */
static int fast_step(struct proc_unwinder *u, const struct frame_rule *fr,
                     uint64_t regs[ARCH_DWARF_NREGS], uint32_t *set)
{
        uint64_t caller[ARCH_DWARF_NREGS], cfa;
        uint32_t caller_set = *set;

        /* libdw evaluates the CFA for each rule that uses it and leaves
         * those registers unknown when it cannot; the return address
         * always does on x86-64, so that is a dead end anyway. */
        if (!(*set & REG_BIT(fr->cfa_reg)))
                return GAVE_UP_OTHER;
        cfa = regs[fr->cfa_reg] + (uint64_t)(int64_t)fr->cfa_off;
        memcpy(caller, regs, sizeof(caller));
        for (unsigned i = 0; i < fr->n_rules; i++) {
                const struct reg_rule *rr = &fr->rules[i];
                uint64_t v;

                switch (rr->kind) {
                case REG_UNDEFINED:
                        caller_set &= ~REG_BIT(rr->regno);
                        continue;
                case REG_AT_CFA:
                        if (cache_read_word(u, cfa + (uint64_t)(int64_t)rr->off, &v) < 0)
                                return GAVE_UP_READ;
                        break;
                case REG_CFA:
                        v = cfa + (uint64_t)(int64_t)rr->off;
                        break;
                case REG_REGISTER:
                        if (!(*set & REG_BIT(rr->from))) {
                                caller_set &= ~REG_BIT(rr->regno);
                                continue;
                        }
                        v = regs[rr->from] + (uint64_t)(int64_t)rr->off;
                        break;
                default:
                        return GAVE_UP_RULE;
                }
                caller[rr->regno] = v;
                caller_set |= REG_BIT(rr->regno);
        }
        /* libdw ends the stack, as if complete, when the return address is
         * unknown or 0: the libdw path reports that (-EIO). */
        if (!(caller_set & REG_BIT(fr->ra)) || caller[fr->ra] == 0)
                return GAVE_UP_OTHER;
        memcpy(regs, caller, sizeof(caller));
        *set = caller_set;
        return 0;
}

static int stack_push(struct proc_stack *s, size_t *cap, size_t max_frames,
                      const struct proc_frame *f)
{
        if (s->n == *cap) {
                size_t c = MIN(MAX(*cap * 2, (size_t)32), max_frames);
                struct proc_frame *frames = realloc(s->frames, c * sizeof(*frames));

                if (!frames)
                        return -ENOMEM;
                s->frames = frames;
                *cap = c;
        }
        s->frames[s->n++] = *f;
        return 0;
}

/* Unwind from registers r with the cached rules, the same stack as
 * unwind_libdw() would find: see the top of the file. Returns 0 with the
 * stack in *ret, a gave_up reason (> 0, nothing in *ret), or -ENOMEM. */
static int unwind_fast(struct proc_unwinder *u, struct proc_thread *t, pid_t tid,
                       const struct arch_regs *r, size_t max_frames, struct proc_stack *ret)
{
        _cleanup_(proc_stack_done) struct proc_stack s = { .tid = tid };
        uint64_t regs[ARCH_DWARF_NREGS] = {};
        uint32_t set;
        uint64_t pc = arch_regs_pc(r);
        size_t n, cap = 0;
        int q;

        _Static_assert(ARCH_DWARF_NREGS <= 32, "register set fits a uint32_t");
        /* As cb_set_initial_registers gives them to libdw. */
        n = arch_regs_to_dwarf(r, regs);
        set = n >= 32 ? UINT32_MAX : REG_BIT(n) - 1;
        cache_reset(u);
        if (t)
                cache_seed(u, t);
        for (;;) {
                /* Only the innermost frame is an activation: the fast path
                 * gives up at signal frames. */
                struct proc_frame f = { .pc = pc, .activation = s.n == 0 };
                const struct cfi_entry *e;

                if (s.n >= max_frames) {
                        /* There is one more frame than we may keep. */
                        stack_set_error(&s, -E2BIG, "frame limit (%zu) reached", max_frames);
                        break;
                }
                q = stack_push(&s, &cap, max_frames, &f);
                if (q < 0)
                        return q;
                e = cfi_entry_of(u, &f);
                if (e->kind == CFI_NONE) {
                        stack_set_no_cfi(u, &s);
                        break;
                }
                if (e->kind == CFI_OUTERMOST)
                        break; /* complete */
                if (!e->rule.simple)
                        return GAVE_UP_RULE;
                q = fast_step(u, &e->rule, regs, &set);
                if (q != 0)
                        return q;
                pc = regs[e->rule.ra];
        }
        *ret = s;
        s = (struct proc_stack){};
        return 0;
}

/* ---- Unwinding ------------------------------------------------------------- */

void proc_unwinder_set_path(struct proc_unwinder *u, enum proc_unwind_path path)
{
        u->path = path;
}

void proc_unwinder_stats(const struct proc_unwinder *u, struct proc_unwind_stats *ret)
{
        *ret = u->stats;
}

/* *ptr resized to `size` bytes, every byte written now (zero): room used
 * inside a stop window must not be faulted in there. */
static int grow_touched(void **ptr, size_t size)
{
        void *q = realloc(*ptr, size);

        if (!q)
                return -ENOMEM;
        explicit_bzero(q, size);
        *ptr = q;
        return 0;
}

int proc_unwinder_reserve(struct proc_unwinder *u, size_t n)
{
        if (n <= u->cap_pre)
                return 0;
        u->n_pre = 0;
        if (grow_touched((void **)&u->pre, n * sizeof(*u->pre)) < 0 ||
            grow_touched((void **)&u->pre_owner, n * sizeof(*u->pre_owner)) < 0 ||
            grow_touched((void **)&u->pre_local, n * sizeof(*u->pre_local)) < 0 ||
            grow_touched((void **)&u->pre_remote, n * sizeof(*u->pre_remote)) < 0)
                return -ENOMEM;
        u->cap_pre = n;
        return 0;
}

/* Each thread's chunk is the rest of the page its stack pointer is in:
 * each remote page costs ~3 µs to reach here (whatever is copied from it),
 * so never two; frames above it are read when reached, a page at a time. */
void proc_unwinder_preload(struct proc_unwinder *u)
{
        struct proc *p = u->p;
        size_t n = 0;

        u->n_pre = 0;
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                const struct arch_regs *regs;

                if (t->visited)
                        continue;
                t->preload = 0;
                if (n >= u->cap_pre || t->state != PROC_THREAD_STOPPED || t->unborn ||
                    proc_regs(p, t, &regs) < 0)
                        continue;
                uint64_t base = arch_regs_sp(regs);
                uint32_t len = (uint32_t)(CHUNK_SIZE - (base & (CHUNK_SIZE - 1)));
                u->pre[n].base = base;
                u->pre[n].len = len;
                u->pre[n].valid = false;
                u->pre_owner[n] = (struct pre_owner){ t->tid, t->stopped_ns };
                u->pre_local[n] = (struct iovec){ u->pre[n].data, len };
                u->pre_remote[n] = (struct iovec){ (void *)(uintptr_t)base, len };
                t->preload = (unsigned)++n;
        }
        u->n_pre = n;
        /* In calls of at most IOV_MAX chunks. A chunk that cannot be read
         * (a stack pointer into nothing) ends a call early: the chunks
         * before it are in, it is left out, and the next call starts after
         * it. */
        for (size_t k = 0; k < n;) {
                size_t m = MIN(n - k, (size_t)IOV_MAX);
                ssize_t got = process_vm_readv(p->pid, &u->pre_local[k], m, &u->pre_remote[k], m,
                                               0);
                size_t full = 0;

                /* The iovecs read whole, in order. */
                for (size_t left = got > 0 ? (size_t)got : 0;
                     full < m && left >= u->pre_local[k + full].iov_len; full++) {
                        left -= u->pre_local[k + full].iov_len;
                        u->pre[k + full].valid = true;
                }
                k += full < m ? full + 1 : m;
                if (got < 0 && errno == ESRCH)
                        break;
        }
}

int proc_unwind_thread(struct proc_unwinder *u, struct proc_thread *t, size_t max_frames,
                       struct proc_stack *ret)
{
        struct proc_stack s = {};
        const struct arch_regs *regs;
        int r;

        if (t->state == PROC_THREAD_GONE)
                return -ESRCH;
        if (t->state != PROC_THREAD_STOPPED)
                return -EBUSY;
        /* Fetch now, so that a thread that cannot be read is an error of
         * the call, not a stack with no frames. */
        r = proc_regs(u->p, t, &regs);
        if (r < 0)
                return r;
        if (max_frames == 0)
                max_frames = DEFAULT_MAX_FRAMES;

        u->unwinding = true;
        r = u->path == PROC_UNWIND_AUTO ? unwind_fast(u, t, t->tid, regs, max_frames, &s) : GAVE_UP_RULE;
        u->unwinding = false;
        if (r < 0)
                return r;
        if (r == 0) {
                u->stats.fast_threads++;
                u->stats.fast_frames += s.n;
        } else {
                if (u->path == PROC_UNWIND_AUTO) {
                        if (r == GAVE_UP_RULE)
                                u->stats.gave_up_rule++;
                        else if (r == GAVE_UP_READ)
                                u->stats.gave_up_read++;
                        else
                                u->stats.gave_up_other++;
                }
                u->unwinding = true;
                r = unwind_libdw(u, t, max_frames, &s);
                u->unwinding = false;
                if (r < 0)
                        return r;
                u->stats.libdw_threads++;
                u->stats.libdw_frames += s.n;
        }
        if (s.error != 0)
                log_debug("unwind: thread %d stopped after %zu frames: %s", (int)t->tid, s.n,
                          s.reason);
        *ret = s;
        return 0;
}

void proc_unwinder_warm(struct proc_unwinder *u, const struct arch_regs *regs)
{
        struct proc_stack s = {};

        if (u->path != PROC_UNWIND_AUTO)
                return;
        if (unwind_fast(u, NULL, 0, regs, 64, &s) == 0)
                proc_stack_done(&s);
}

void proc_unwinder_warm_pcs(struct proc_unwinder *u, const uint64_t *pcs, size_t n)
{
        if (u->path != PROC_UNWIND_AUTO)
                return;
        for (size_t i = 0; i < n; i++)
                (void)cfi_entry_of(u, &(struct proc_frame){ .pc = pcs[i], .activation = true });
}

size_t proc_unwinder_cached_pcs(const struct proc_unwinder *u, uint64_t *ret, size_t max)
{
        size_t n = 0;

        for (size_t i = 0; i < CFI_CACHE_SIZE && n < max; i++)
                if (u->cfi_cache[i].kind != CFI_UNKNOWN && u->cfi_cache[i].met)
                        ret[n++] = u->cfi_cache[i].pc;
        return n;
}
