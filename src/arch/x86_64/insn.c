/* x86-64 instruction decoding with capstone: length, branch kind, and the
 * absolute address behind a pc-relative operand, which is what relocating
 * a function's displaced entry instructions needs.
 *
 * One capstone handle (64-bit mode, details on) is opened on first use
 * and kept for the life of the process. A capstone handle is not safe for
 * concurrent use (it keeps the last error and a per-call state), so
 * decoding holds a mutex; decoding one instruction takes well under a
 * microsecond, and nothing here is on a hot path of the target.
 *
 * libcapstone is loaded with dlopen() on that first use, not linked:
 * Debian's libcapstone.so.4 carries tables for every architecture it
 * knows, with 77,375 relative relocations that the dynamic linker would
 * apply at every start of liveup (about 500 page faults; beside 16 busy
 * threads on two CPUs, `liveup --version` took 125 ms to run against
 * 16 ms for a static "true"). Only `build --diff` decodes, so every other
 * verb starts without it.
 *
 * Machine facts this file depends on:
 * - An instruction is at most 15 bytes long.
 * - A rip-relative operand (modrm mod=00 rm=101 in 64-bit mode) is
 *   counted from the end of the instruction; capstone reports it as a
 *   memory operand with base RIP (EIP under an address-size prefix, where
 *   the result is truncated to 32 bits).
 * - Direct jmp/jcc/call/loop/jrcxz encode their target relative to the
 *   end of the instruction; capstone reports it already made absolute, as
 *   the immediate operand. */
#include "arch/arch.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef CAPSTONE_SONAME
#error "CAPSTONE_SONAME (the library's soname, e.g. \"libcapstone.so.4\") must be defined"
#endif

#define INSN_MAX_LEN 15

static pthread_once_t cs_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cs_lock = PTHREAD_MUTEX_INITIALIZER;
static csh cs_handle;
static cs_insn *cs_buf;
static int cs_error; /* < 0 when the handle could not be set up */
static char cs_error_msg[256];

/* The capstone functions used here, from the library loaded at first use. */
static struct {
        typeof(cs_open) *open;
        typeof(cs_option) *option;
        typeof(cs_malloc) *malloc;
        typeof(cs_disasm_iter) *disasm_iter;
        typeof(cs_insn_group) *insn_group;
        typeof(cs_close) *close;
} cs;

static int cs_load(void)
{
        void *dl = dlopen(CAPSTONE_SONAME, RTLD_NOW | RTLD_LOCAL);
        const char *missing = NULL;

        if (!dl) {
                snprintf(cs_error_msg, sizeof(cs_error_msg), "cannot load %s: %s", CAPSTONE_SONAME,
                         dlerror());
                return -ELIBACC;
        }
#define CS_SYM(field, name)                                            \
        do {                                                           \
                cs.field = (typeof(cs.field))dlsym(dl, #name);         \
                if (!cs.field && !missing)                             \
                        missing = #name;                               \
        } while (0)
        CS_SYM(open, cs_open);
        CS_SYM(option, cs_option);
        CS_SYM(malloc, cs_malloc);
        CS_SYM(disasm_iter, cs_disasm_iter);
        CS_SYM(insn_group, cs_insn_group);
        CS_SYM(close, cs_close);
#undef CS_SYM
        if (missing) {
                snprintf(cs_error_msg, sizeof(cs_error_msg), "%s has no symbol %s",
                         CAPSTONE_SONAME, missing);
                dlclose(dl);
                return -ELIBBAD;
        }
        return 0; /* kept loaded for the life of the process */
}

static void cs_setup(void)
{
        cs_error = cs_load();
        if (cs_error < 0)
                return;
        if (cs.open(CS_ARCH_X86, CS_MODE_64, &cs_handle) != CS_ERR_OK) {
                snprintf(cs_error_msg, sizeof(cs_error_msg), "capstone: cannot open x86-64 mode");
                cs_error = -ENOMEM;
                return;
        }
        if (cs.option(cs_handle, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
                cs.close(&cs_handle);
                snprintf(cs_error_msg, sizeof(cs_error_msg), "capstone: cannot turn details on");
                cs_error = -EIO;
                return;
        }
        cs_buf = cs.malloc(cs_handle);
        if (!cs_buf) {
                cs.close(&cs_handle);
                snprintf(cs_error_msg, sizeof(cs_error_msg), "capstone: out of memory");
                cs_error = -ENOMEM;
        }
}

int arch_decoder_ready(const char **ret_msg)
{
        pthread_once(&cs_once, cs_setup);
        if (cs_error < 0 && ret_msg)
                *ret_msg = cs_error_msg;
        return cs_error;
}

static bool is_trap(unsigned id)
{
        switch (id) {
        case X86_INS_INT:
        case X86_INS_INT1:
        case X86_INS_INT3:
        case X86_INS_INTO:
        case X86_INS_UD0:
        case X86_INS_UD2:
        case X86_INS_UD2B:
        case X86_INS_HLT:
                return true;
        default:
                return false;
        }
}

/* Append to a NUL-terminated string in buf[size], cutting what does not
 * fit (a very long AVX-512 operand list, in a message). */
static void text_append(char *buf, size_t size, const char *s)
{
        size_t len = strnlen(buf, size);

        if (len + 1 >= size)
                return;
        size_t k = MIN(strlen(s), size - len - 1);
        memcpy(buf + len, s, k);
        buf[len + k] = 0;
}

/* Fill `out` from the decoded cs_buf. Called with cs_lock held. */
static void fill_insn(const cs_insn *ci, struct arch_insn *out)
{
        const cs_x86 *x = &ci->detail->x86;
        bool call = cs.insn_group(cs_handle, ci, CS_GRP_CALL);
        bool relative = cs.insn_group(cs_handle, ci, CS_GRP_BRANCH_RELATIVE);
        /* loop/loope/loopne are only in the "relative branch" group. */
        bool branch = cs.insn_group(cs_handle, ci, CS_GRP_JUMP) || (relative && !call);

        *out = (struct arch_insn){ .addr = ci->address, .len = (uint8_t)ci->size };
        memcpy(out->bytes, ci->bytes, MIN((size_t)ci->size, sizeof(out->bytes)));
        text_append(out->text, sizeof(out->text), ci->mnemonic);
        if (ci->op_str[0]) {
                text_append(out->text, sizeof(out->text), " ");
                text_append(out->text, sizeof(out->text), ci->op_str);
        }

        if (branch)
                out->flags |= ARCH_INSN_BRANCH;
        if (call)
                out->flags |= ARCH_INSN_CALL;
        if (cs.insn_group(cs_handle, ci, CS_GRP_RET) || cs.insn_group(cs_handle, ci, CS_GRP_IRET))
                out->flags |= ARCH_INSN_RET;
        if (is_trap(ci->id))
                out->flags |= ARCH_INSN_TRAP;
        /* nop, nopw/nopl with any operand and prefixes, xchg %ax,%ax: what
         * assemblers put between and inside functions to align. */
        if (ci->id == X86_INS_NOP ||
            (ci->id == X86_INS_XCHG && ci->size == 2 && ci->bytes[0] == 0x66 && ci->bytes[1] == 0x90))
                out->flags |= ARCH_INSN_PADDING;

        for (unsigned i = 0; i < x->op_count && i < ELEMENTSOF(x->operands); i++) {
                const cs_x86_op *op = &x->operands[i];

                if (op->type == X86_OP_MEM &&
                    (op->mem.base == X86_REG_RIP || op->mem.base == X86_REG_EIP)) {
                        uint64_t t = ci->address + ci->size + (uint64_t)op->mem.disp;

                        if (op->mem.base == X86_REG_EIP)
                                t &= 0xffffffffu;
                        out->flags |= ARCH_INSN_PC_RELATIVE;
                        out->target = t;
                }
                if (branch || call) {
                        if (op->type == X86_OP_REG || op->type == X86_OP_MEM)
                                out->flags |= ARCH_INSN_INDIRECT;
                        else if (op->type == X86_OP_IMM && relative) {
                                out->flags |= ARCH_INSN_PC_RELATIVE;
                                out->target = (uint64_t)op->imm;
                        }
                }
        }
}

int arch_decode(const uint8_t *code, size_t size, uint64_t addr, struct arch_insn *ret)
{
        const uint8_t *p = code;
        size_t left = MIN(size, (size_t)INSN_MAX_LEN);
        uint64_t a = addr;
        struct arch_insn insn;
        bool ok;

        pthread_once(&cs_once, cs_setup);
        if (cs_error < 0)
                return cs_error;
        if (size == 0)
                return -EILSEQ;

        pthread_mutex_lock(&cs_lock);
        ok = cs.disasm_iter(cs_handle, &p, &left, &a, cs_buf);
        if (ok && cs_buf->size > 0 && cs_buf->size <= INSN_MAX_LEN)
                fill_insn(cs_buf, &insn);
        else
                ok = false;
        pthread_mutex_unlock(&cs_lock);

        if (!ok)
                return -EILSEQ;
        *ret = insn;
        return 0;
}

/* The bytes at code[0..size) do not decode: were they cut short? True
 * when padding them out makes an instruction longer than `size`. */
static bool is_truncated(const uint8_t *code, size_t size, uint64_t addr)
{
        uint8_t pad[INSN_MAX_LEN + 1] = {};
        struct arch_insn insn;

        if (size >= INSN_MAX_LEN)
                return false;
        memcpy(pad, code, size);
        return arch_decode(pad, sizeof(pad), addr, &insn) >= 0 && insn.len > size;
}

int arch_decode_prologue(const uint8_t *code, size_t size, uint64_t addr, size_t min_bytes,
                         struct arch_insn *ret, size_t max, size_t *ret_n)
{
        size_t covered = 0, n = 0;

        /* ret[] is scratch until success; only *ret_n says what is valid. */
        while (covered < min_bytes) {
                int r;

                if (covered >= size)
                        return -ENODATA;
                if (n >= max)
                        return -ENOSPC;
                r = arch_decode(code + covered, size - covered, addr + covered, &ret[n]);
                if (r == -EILSEQ && is_truncated(code + covered, size - covered, addr + covered))
                        return -ENODATA;
                if (r < 0)
                        return r;
                covered += ret[n].len;
                n++;
        }
        *ret_n = n;
        return 0;
}
