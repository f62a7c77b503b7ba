/* The ISA contract. Generic code never names a register or an opcode; it
 * asks this interface. src/arch/x86_64/ implements it; an aarch64 port
 * provides the same functions and a `struct arch_regs` of its own.
 *
 * `struct arch_regs` is exactly the kernel's NT_PRSTATUS register set for
 * the ISA (user_regs_struct on x86-64), so src/proc can fetch and store it
 * with PTRACE_GETREGSET/SETREGSET without knowing its layout. */
#pragma once

#include "base/macro.h"

#if defined(__x86_64__)
#include "arch/x86_64/regs.h"
#else
#error "liveup: this ISA has no src/arch port yet"
#endif

/* ---- Registers ---------------------------------------------------------- */

uint64_t arch_regs_pc(const struct arch_regs *r);
void arch_regs_set_pc(struct arch_regs *r, uint64_t pc);
uint64_t arch_regs_sp(const struct arch_regs *r);
/* Thread pointer (fs base on x86-64), the key of per-thread patch state. */
uint64_t arch_regs_tp(const struct arch_regs *r);

/* The stop came while the thread was inside a syscall that the kernel
 * will restart on resume (regs show -ERESTARTSYS & co.). When registers
 * are about to be changed (to run injected code), the restart must be done
 * by hand, or the thread would see the kernel-internal code as a result:
 * this rewinds pc to the syscall instruction and reloads its number
 * (restart_syscall for ERESTART_RESTARTBLOCK), exactly what the kernel's
 * signal-exit path does when no handler runs, and marks the registers as
 * "not in a syscall" so the kernel does not rewind a second time. Returns
 * true when it changed anything. */
bool arch_regs_fixup_syscall_restart(struct arch_regs *r);

/* The thread was stopped by a ptrace interrupt on its way out of a
 * syscall that the kernel never restarts (epoll_wait, rt_sigtimedwait,
 * semtimedop, io_getevents...; see signal(7)), which therefore failed with
 * EINTR although no signal was delivered. The caller must make sure no
 * signal was delivered and pc follows a syscall instruction. */
bool arch_regs_is_spurious_eintr(const struct arch_regs *r);
/* Make the thread execute that syscall again (pc back to the syscall
 * instruction, number reloaded). Returns true when it changed anything. */
bool arch_regs_fixup_spurious_eintr(struct arch_regs *r);

/* Mark the registers as "not in a syscall" (x86-64: orig_rax = -1), so
 * that writing them at a syscall-entry stop cancels that syscall and the
 * kernel's restart logic leaves them alone. */
void arch_regs_set_no_syscall(struct arch_regs *r);

/* Set up `r` to execute the syscall instruction at `insn_addr` with number
 * `nr` and up to six arguments, outside of any syscall (no restart). */
void arch_regs_setup_syscall(struct arch_regs *r, uint64_t insn_addr, long nr,
                             const uint64_t args[6]);
/* Result of a syscall, read at syscall-exit-stop. */
uint64_t arch_regs_syscall_result(const struct arch_regs *r);

/* Set up a function call: pc = fn, up to six integer arguments, a stack
 * below `r`'s stack pointer that skips the red zone and is aligned as the
 * ABI demands at a call, whose return address is `ret_addr`. On x86-64 the
 * return address lives in memory: *ret_push_addr and *ret_push_value tell
 * the caller to write those 8 bytes (ret_push_addr = 0: nothing to write,
 * e.g. a link register ISA). */
void arch_regs_setup_call(struct arch_regs *r, uint64_t fn, const uint64_t args[6],
                          uint64_t ret_addr, uint64_t *ret_push_addr,
                          uint64_t *ret_push_value);
/* A called function "returned" into a syscall instruction and the thread
 * stopped at syscall entry: its return value. */
uint64_t arch_regs_call_result_at_syscall_entry(const struct arch_regs *r);

/* The syscall instruction's bytes. */
extern const uint8_t arch_syscall_insn[];
extern const size_t arch_syscall_insn_len;

/* Registers in DWARF numbering, for libdw's unwinder: fills out[0..n) and
 * returns n (<= ARCH_DWARF_NREGS). ARCH_DWARF_NREGS is also the number of
 * registers libdw's backend for the ISA tracks from frame to frame
 * (ebl_frame_nregs): src/proc/unwind.c's fast path computes exactly those. */
#define ARCH_DWARF_NREGS 17
size_t arch_regs_to_dwarf(const struct arch_regs *r, uint64_t out[ARCH_DWARF_NREGS]);
/* true when libdw takes the value of the CFI's return-address column as
 * the caller's pc unchanged (no pointer-authentication mask, no offset
 * from the call to the return address, no register renumbering), so that
 * an unwinder that evaluates the CFI rules itself finds the same pcs as
 * libdw's. */
bool arch_dwarf_ra_is_pc(void);
/* ELF machine of this ISA (EM_X86_64). */
int arch_elf_machine(void);

/* ---- Jumps -------------------------------------------------------------- */

/* Size of the short relative jump that fits a function entry (5 on
 * x86-64: jmp rel32). */
size_t arch_jump_size(void);
/* Encode a relative jump at `from` to `to` into buf (size >= 16). Returns
 * its length, or -ERANGE when `to` is out of reach (±2 GiB on x86-64). */
int arch_encode_jump(uint64_t from, uint64_t to, uint8_t *buf, size_t size);
/* Encode an absolute jump to `to` that clobbers no register (x86-64:
 * jmp *0(%rip) followed by the 8-byte address; 14 bytes). Returns its
 * length. */
int arch_encode_jump_abs(uint64_t to, uint8_t *buf, size_t size);

/* Length of an endbr64 (or the ISA's landing pad) at code[0], 0 if none. */
size_t arch_landing_pad_size(const uint8_t *code, size_t size);

/* ---- Decoding ----------------------------------------------------------- */

enum {
        ARCH_INSN_BRANCH = 1 << 0,     /* jmp/jcc/loop (not call) */
        ARCH_INSN_CALL = 1 << 1,
        ARCH_INSN_RET = 1 << 2,
        ARCH_INSN_PC_RELATIVE = 1 << 3, /* an operand is relative to pc */
        ARCH_INSN_INDIRECT = 1 << 4,    /* branch/call target in reg/mem */
        ARCH_INSN_TRAP = 1 << 5,        /* int3, ud2, hlt... */
        ARCH_INSN_PADDING = 1 << 6,     /* a no-op (alignment padding) */
};

struct arch_insn {
        uint64_t addr;
        uint8_t len;
        uint8_t bytes[16];
        unsigned flags;    /* ARCH_INSN_* */
        uint64_t target;   /* direct branch/call target, or pc-relative
                            * operand's absolute address; 0 if none */
        char text[96];     /* "mnemonic operands", for messages */
};

/* Load the decoder (a library loaded on first use): 0, or < 0 with
 * *ret_msg set to one line saying why it cannot be used. arch_decode()
 * calls it and returns its error. */
int arch_decoder_ready(const char **ret_msg);

/* Decode the instruction at code[0] (which lives at `addr`). Returns
 * -EILSEQ for bytes that are not a valid instruction, or the error of
 * arch_decoder_ready(). */
int arch_decode(const uint8_t *code, size_t size, uint64_t addr, struct arch_insn *ret);

/* Decode whole instructions from code[0] until at least `min_bytes` are
 * covered (the bytes a jump at the entry would overwrite). Fills up to
 * `max` instructions, *ret_n set. -ENOSPC if `max` is too small, -EILSEQ
 * on undecodable bytes, -ENODATA if `size` ends before `min_bytes`. */
int arch_decode_prologue(const uint8_t *code, size_t size, uint64_t addr, size_t min_bytes,
                         struct arch_insn *ret, size_t max, size_t *ret_n);

/* ---- Relocations (of the ISA's ELF relocatable objects) ----------------- */

enum arch_reloc_kind {
        ARCH_RELOC_NONE,        /* nothing to do */
        ARCH_RELOC_DIRECT,      /* V = S + A (absolute or pc-relative) */
        ARCH_RELOC_BRANCH,      /* a call/jump: V = S + A, or the address of a
                                 * stub that jumps to S when S is out of reach */
        ARCH_RELOC_GOT,         /* V = address of a slot holding S, + A */
        ARCH_RELOC_TLS,         /* thread-local storage: not supported */
        ARCH_RELOC_UNSUPPORTED,
};

/* What relocation `type` needs. */
enum arch_reloc_kind arch_reloc_classify(uint32_t type);
/* Its name, for messages ("R_X86_64_PC32"). */
const char *arch_reloc_name(uint32_t type);
/* The dynamic relocation type that makes the loader call an IFUNC
 * resolver (its addend) and store the result in a slot (R_X86_64_IRELATIVE). */
uint32_t arch_reloc_irelative(void);
/* Write the relocation of `type` at `loc` (the place, which will live at
 * address `place`) for the value V computed as arch_reloc_classify() says.
 * pc-relative types subtract `place` themselves. -ERANGE when the result
 * does not fit the field; -EOPNOTSUPP for types it cannot apply. */
int arch_reloc_apply(uint32_t type, uint8_t *loc, uint64_t place, uint64_t value);
/* Bytes the relocation of `type` writes (0 for none). */
size_t arch_reloc_width(uint32_t type);
/* For comparing a relocatable object with code a static linker made from
 * it (src/build): the bytes around a relocation of `type` at `off` that the
 * linker may rewrite are [off - before, off + width) (the field itself,
 * and for relaxable GOT and TLS relocations the opcode bytes the linker
 * may change when it relaxes them); S + A + bias is the address the
 * instruction refers to (a pc-relative field ends `bias` bytes before the
 * next instruction in the usual encodings, which the addend compensates
 * for). */
struct arch_reloc_span {
        size_t before, width;
        int64_t bias;
};
void arch_reloc_span(uint32_t type, struct arch_reloc_span *ret);

/* Size of the stub arch_encode_jump_abs() writes, for far branches. */
size_t arch_stub_size(void);
