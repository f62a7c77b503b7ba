/* x86-64 registers for ptrace and remote execution.
 *
 * Machine facts this file depends on:
 * - At a ptrace stop inside a syscall that was interrupted, rax holds the
 *   kernel-internal restart code (-ERESTARTSYS 512, -ERESTARTNOINTR 513,
 *   -ERESTARTNOHAND 514, -ERESTART_RESTARTBLOCK 516), orig_rax the syscall
 *   number, and rip points just past the 2-byte `syscall`. The kernel
 *   rewinds rip by 2 on the way out when no handler runs
 *   (arch_do_signal_or_restart); it keys that on orig_rax >= 0, which is
 *   why setting orig_rax = -1 switches it off.
 * - The System V ABI reserves 128 bytes below rsp (the red zone) that a
 *   leaf function may use without moving rsp; code we inject must not
 *   touch them. At a call, rsp + 8 is 16-byte aligned. */
#include "arch/arch.h"

#include <elf.h>
#include <sys/syscall.h>

#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516
#define RED_ZONE 128

const uint8_t arch_syscall_insn[] = { 0x0f, 0x05 };
const size_t arch_syscall_insn_len = sizeof(arch_syscall_insn);

uint64_t arch_regs_pc(const struct arch_regs *r)
{
        return r->r.rip;
}

void arch_regs_set_pc(struct arch_regs *r, uint64_t pc)
{
        r->r.rip = pc;
}

uint64_t arch_regs_sp(const struct arch_regs *r)
{
        return r->r.rsp;
}

uint64_t arch_regs_tp(const struct arch_regs *r)
{
        return r->r.fs_base;
}

bool arch_regs_fixup_syscall_restart(struct arch_regs *r)
{
        long orig = (long)r->r.orig_rax;
        long rax = (long)r->r.rax;

        if (orig < 0)
                return false;
        switch (rax) {
        case -ERESTARTSYS:
        case -ERESTARTNOINTR:
        case -ERESTARTNOHAND:
                r->r.rax = (uint64_t)orig;
                break;
        case -ERESTART_RESTARTBLOCK:
                r->r.rax = SYS_restart_syscall;
                break;
        default:
                return false;
        }
        r->r.rip -= 2;
        r->r.orig_rax = (uint64_t)-1;
        return true;
}

bool arch_regs_is_spurious_eintr(const struct arch_regs *r)
{
        /* Syscalls that return EINTR when interrupted by a stop, even with
         * no handler (signal(7), "Interruption of system calls and library
         * functions by stop signals"), and are not restarted. */
        static const long never_restarted[] = {
                232, /* epoll_wait */
                281, /* epoll_pwait */
                441, /* epoll_pwait2 */
                128, /* rt_sigtimedwait */
                65,  /* semop */
                220, /* semtimedop */
                208, /* io_getevents */
                333, /* io_pgetevents */
        };
        long orig = (long)r->r.orig_rax;

        if ((long)r->r.rax != -EINTR || orig < 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(never_restarted); i++)
                if (orig == never_restarted[i])
                        return true;
        return false;
}

bool arch_regs_fixup_spurious_eintr(struct arch_regs *r)
{
        if (!arch_regs_is_spurious_eintr(r))
                return false;
        r->r.rax = r->r.orig_rax;
        r->r.rip -= 2;
        r->r.orig_rax = (uint64_t)-1;
        return true;
}

void arch_regs_set_no_syscall(struct arch_regs *r)
{
        r->r.orig_rax = (uint64_t)-1;
}

void arch_regs_setup_syscall(struct arch_regs *r, uint64_t insn_addr, long nr,
                             const uint64_t args[6])
{
        r->r.rip = insn_addr;
        r->r.rax = (uint64_t)nr;
        r->r.orig_rax = (uint64_t)-1;
        r->r.rdi = args[0];
        r->r.rsi = args[1];
        r->r.rdx = args[2];
        r->r.r10 = args[3];
        r->r.r8 = args[4];
        r->r.r9 = args[5];
}

uint64_t arch_regs_syscall_result(const struct arch_regs *r)
{
        return r->r.rax;
}

void arch_regs_setup_call(struct arch_regs *r, uint64_t fn, const uint64_t args[6],
                          uint64_t ret_addr, uint64_t *ret_push_addr,
                          uint64_t *ret_push_value)
{
        uint64_t sp = r->r.rsp - RED_ZONE;

        /* After the push of the return address, rsp + 8 must be 16-byte
         * aligned, i.e. rsp itself is 8 mod 16. */
        sp &= ~(uint64_t)15;
        sp -= 8;
        r->r.rsp = sp;
        r->r.rip = fn;
        r->r.orig_rax = (uint64_t)-1;
        r->r.rax = 0; /* no vector registers used by a variadic callee */
        r->r.rdi = args[0];
        r->r.rsi = args[1];
        r->r.rdx = args[2];
        r->r.rcx = args[3];
        r->r.r8 = args[4];
        r->r.r9 = args[5];
        *ret_push_addr = sp;
        *ret_push_value = ret_addr;
}

uint64_t arch_regs_call_result_at_syscall_entry(const struct arch_regs *r)
{
        /* At syscall-entry-stop the kernel has moved rax to orig_rax and
         * put -ENOSYS in rax. */
        return r->r.orig_rax;
}

size_t arch_regs_to_dwarf(const struct arch_regs *r, uint64_t out[ARCH_DWARF_NREGS])
{
        /* DWARF numbering of the x86-64 psABI: rax, rdx, rcx, rbx, rsi,
         * rdi, rbp, rsp, r8-r15, return address (rip). */
        out[0] = r->r.rax;
        out[1] = r->r.rdx;
        out[2] = r->r.rcx;
        out[3] = r->r.rbx;
        out[4] = r->r.rsi;
        out[5] = r->r.rdi;
        out[6] = r->r.rbp;
        out[7] = r->r.rsp;
        out[8] = r->r.r8;
        out[9] = r->r.r9;
        out[10] = r->r.r10;
        out[11] = r->r.r11;
        out[12] = r->r.r12;
        out[13] = r->r.r13;
        out[14] = r->r.r14;
        out[15] = r->r.r15;
        out[16] = r->r.rip;
        return 17;
}

bool arch_dwarf_ra_is_pc(void)
{
        /* libdw's x86-64 backend sets no func_addr_mask and no ra_offset,
         * and its DWARF register numbers are the psABI's (see
         * arch_regs_to_dwarf): column 16 holds the return address itself. */
        return true;
}

int arch_elf_machine(void)
{
        return EM_X86_64;
}
