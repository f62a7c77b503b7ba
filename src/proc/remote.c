/* Running code in the target: a syscall, or a call of one of its
 * functions, in a stopped thread, with its registers restored exactly
 * afterwards.
 *
 * How (no signal involved, so the target's signal dispositions and masks
 * are never touched, unlike an int3 or single-step, whose SIGTRAP the
 * kernel forces through by resetting a blocked or ignored SIGTRAP):
 * - find a syscall instruction already in the target's executable memory
 *   (the vDSO has one; else libc's text); we never write code to do this;
 * - syscall: point pc at it with the number and arguments in registers,
 *   resume with PTRACE_SYSCALL, and take the result at the syscall-exit
 *   stop of that instruction (PTRACE_GET_SYSCALL_INFO gives the pc and sp,
 *   so a signal handler that runs meanwhile and makes syscalls of its own
 *   cannot be mistaken for ours);
 * - call: push the syscall instruction's address as the return address;
 *   when the function returns it executes that syscall with its return
 *   value as the number, and we read it at syscall entry (the kernel keeps
 *   it in the "orig" register), then cancel that syscall.
 * - the thread's registers are first "normalised": if it was stopped inside
 *   a syscall the kernel would restart, the restart is done by hand
 *   (arch_regs_fixup_syscall_restart), because the restart logic runs only
 *   on the path we are taking the thread off. The thread ends in a
 *   syscall-exit stop with those registers; resuming it re-executes the
 *   interrupted syscall. The target sees no EINTR.
 * Red zone and stack alignment for calls are arch_regs_setup_call()'s. */
#include "proc-internal.h"
#include "base/log.h"
#include "base/procfs.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define DEFAULT_CALL_TIMEOUT_NS (5ull * 1000000000ull)
#define SYSCALL_TIMEOUT_NS (5ull * 1000000000ull)

static int scan_for_insn(struct proc *p, uint64_t start, uint64_t end, uint64_t *ret)
{
        uint8_t buf[65536];
        size_t n = arch_syscall_insn_len;

        for (uint64_t a = start; a < end;) {
                size_t len = (size_t)MIN(sizeof(buf), end - a);
                if (proc_read(p, a, buf, len) < 0)
                        return -EFAULT;
                const uint8_t *hit = memmem(buf, len, arch_syscall_insn, n);
                if (hit) {
                        *ret = a + (uint64_t)(hit - buf);
                        return 0;
                }
                if (len <= n)
                        break;
                a += len - (n - 1); /* overlap: an instruction across chunks */
        }
        return -ENOENT;
}

/* Address of a syscall instruction in the target's executable memory. Any
 * occurrence of the bytes is usable: the CPU decodes from where pc points,
 * whatever the surrounding instructions are. */
static int find_syscall_insn(struct proc *p, uint64_t *ret)
{
        struct procfs_maps maps = {};
        int r;

        if (p->syscall_insn) {
                *ret = p->syscall_insn;
                return 0;
        }
        r = procfs_maps_read(p->pid, &maps);
        if (r < 0)
                return r;
        r = -ENOENT;
        /* The vDSO first: small, and present in every process. Then any
         * executable file mapping (libc has many). */
        for (int pass = 0; pass < 2 && r < 0; pass++)
                for (size_t i = 0; i < maps.n && r < 0; i++) {
                        const struct procfs_map *m = &maps.maps[i];
                        bool vdso = strcmp(m->path, "[vdso]") == 0;
                        if (!(m->perms & PROCFS_PERM_X))
                                continue;
                        if (pass == 0 && !vdso)
                                continue;
                        if (pass == 1 && (vdso || strcmp(m->path, "[vsyscall]") == 0))
                                continue;
                        r = scan_for_insn(p, m->start, m->end, ret);
                }
        procfs_maps_done(&maps);
        if (r == 0)
                p->syscall_insn = *ret;
        return r;
}

int proc_inject_prepare(struct proc *p, struct errbuf *err)
{
        uint64_t insn;
        int r = find_syscall_insn(p, &insn);

        if (r < 0)
                errbuf_set(err, "pid %d: found no syscall instruction in its executable memory",
                           p->pid);
        return r;
}

static struct proc_thread *pick_thread(struct proc *p, struct proc_thread *t, struct errbuf *err,
                                       int *ret_r)
{
        if (t) {
                if (t->state != PROC_THREAD_STOPPED) {
                        errbuf_set(err, "thread %d of pid %d is not stopped", t->tid, p->pid);
                        *ret_r = -EBUSY;
                        return NULL;
                }
                if (t->group_stop) {
                        errbuf_set(err, "thread %d of pid %d is stopped by %s; send SIGCONT "
                                   "first", t->tid, p->pid, strsignal(t->group_stop_sig));
                        *ret_r = -EAGAIN;
                        return NULL;
                }
                return t;
        }
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < p->n_threads; i++) {
                        struct proc_thread *c = p->threads[i];
                        if (c->state != PROC_THREAD_STOPPED || c->group_stop)
                                continue;
                        /* Prefer one that needs no settling. */
                        if (pass == 0 && c->stop_kind != PROC_STOP_INTERRUPT &&
                            c->stop_kind != PROC_STOP_INJECTED)
                                continue;
                        return c;
                }
        for (size_t i = 0; i < p->n_threads; i++)
                if (p->threads[i]->state == PROC_THREAD_STOPPED) {
                        errbuf_set(err, "pid %d is stopped (%s); send SIGCONT first", p->pid,
                                   strsignal(p->threads[i]->group_stop_sig));
                        *ret_r = -EAGAIN;
                        return NULL;
                }
        errbuf_set(err, "no thread of pid %d is stopped", p->pid);
        *ret_r = -EBUSY;
        return NULL;
}

enum inject_wait {
        WAIT_ENTRY, /* syscall-entry stop at (pc, sp) */
        WAIT_EXIT,  /* syscall-exit stop at (pc, sp), not a restart */
};

static bool is_restart_code(int64_t rval)
{
        return rval == -512 || rval == -513 || rval == -514 || rval == -516;
}

static bool kill_pending(pid_t pid, pid_t tid)
{
        char buf[64];
        const char *fields[] = { "SigPnd", "ShdPnd" };

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (procfs_status_field(pid, tid, fields[i], buf, sizeof(buf)) < 0)
                        return true; /* gone */
                if (strtoull(buf, NULL, 16) & (1ull << (SIGKILL - 1)))
                        return true;
        }
        return false;
}

/* Let thread `t` run (PTRACE_SYSCALL) until it reaches a syscall stop of
 * the kind `what` at exactly (pc, sp). Signals that arrive are delivered;
 * threads it creates are adopted. */
static int run_until(struct proc *p, struct proc_thread *t, enum inject_wait what, uint64_t pc,
                     uint64_t sp, uint64_t timeout_ns, struct arch_regs *ret_regs)
{
        uint64_t deadline = now_ns() + timeout_ns;
        int resume_sig = 0;

        for (;;) {
                int status = 0, r;

                if (ptrace(PTRACE_SYSCALL, t->tid, 0, (void *)(long)resume_sig) < 0)
                        return -errno;
                t->state = PROC_THREAD_RUNNING;
                resume_sig = 0;

                do {
                        uint64_t now = now_ns();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        r = proc_wait_one(p, deadline - now, t->tid, &status);
                        if (r < 0)
                                return r;
                        if (t->state == PROC_THREAD_GONE || proc_gone(p))
                                return -ESRCH;
                } while (r != 2);

                int sig = WSTOPSIG(status), event = (status >> 16) & 0xff;
                if (event == PTRACE_EVENT_EXEC) {
                        p->execed = true;
                        return -ESRCH;
                }
                if (event == PTRACE_EVENT_CLONE) {
                        unsigned long msg = 0;
                        if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &msg) == 0 &&
                            !proc_thread_by_tid(p, (pid_t)msg)) {
                                struct proc_thread *c = proc_add_thread(p, (pid_t)msg);
                                if (c)
                                        c->new_thread = true;
                        }
                        continue;
                }
                if (event != 0)
                        continue; /* an interrupt or group-stop report: go on */
                if (sig != (SIGTRAP | 0x80)) {
                        resume_sig = sig; /* deliver it, as if we were not here */
                        t->signal_seen = true;
                        continue;
                }

                struct __ptrace_syscall_info info;
                memset(&info, 0, sizeof(info));
                if (ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(info), &info) < 0)
                        return -errno;
                if (info.instruction_pointer != pc || info.stack_pointer != sp)
                        continue; /* a syscall of a handler, or of the callee */
                if (what == WAIT_ENTRY && info.op == PTRACE_SYSCALL_INFO_ENTRY)
                        break;
                if (what == WAIT_EXIT && info.op == PTRACE_SYSCALL_INFO_EXIT) {
                        if (is_restart_code(info.exit.rval))
                                continue; /* a signal interrupted it: it restarts */
                        /* With a fatal signal pending the kernel skips the
                         * syscall after the entry stop (-ENOSYS): the
                         * process is being killed, the result is void. */
                        if (info.exit.rval == -ENOSYS && kill_pending(p->pid, t->tid))
                                return -ESRCH;
                        break;
                }
        }
        t->state = PROC_THREAD_STOPPED;
        return proc_fetch_regs(t->tid, ret_regs);
}

/* Put the thread back: registers as they were (normalised), still
 * stopped. */
static int restore(struct proc_thread *t, const struct arch_regs *regs)
{
        int r = proc_store_regs(t->tid, regs);
        if (r < 0)
                return r;
        t->regs = *regs;
        t->regs_valid = true;
        t->regs_dirty = false;
        return 0;
}

/* Bring back a thread that did not finish injected code in time. */
static int abandon(struct proc *p, struct proc_thread *t, const struct arch_regs *regs)
{
        uint64_t deadline = now_ns() + 2ull * 1000000000ull;
        int status, r;

        if (t->state == PROC_THREAD_RUNNING) {
                if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
                        return -errno;
                do {
                        uint64_t now = now_ns();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        r = proc_wait_one(p, deadline - now, t->tid, &status);
                        if (r < 0)
                                return r;
                        if (t->state == PROC_THREAD_GONE)
                                return -ESRCH;
                } while (r != 2);
        }
        return restore(t, regs);
}

/* False when the process is dead or dying (a zombie has no memory map). */
static bool process_alive(struct proc *p)
{
        char st = 0;

        if (procfs_thread_state(p->pid, p->pid, &st) < 0)
                return false;
        return !kill_pending(p->pid, 0) && st != 'X' &&
               (st != 'Z' || proc_n_threads(p) > 1);
}

/* A thread stopped in the middle of a syscall (at its clone event) must
 * first finish it: let it run into the interrupt trap on its way out. */
static int settle(struct proc *p, struct proc_thread *t, struct errbuf *err)
{
        for (int tries = 0; tries < 5; tries++) {
                uint64_t deadline = now_ns() + 2ull * 1000000000ull;
                int r;

                if (t->stop_kind == PROC_STOP_INTERRUPT || t->stop_kind == PROC_STOP_INJECTED)
                        return 0;
                t->want_stop = true;
                if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
                        return -errno;
                t->state = PROC_THREAD_RUNNING;
                t->regs_valid = t->saved_valid = false;
                if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
                        return -errno;
                t->interrupt_sent = true;
                while (t->state == PROC_THREAD_RUNNING) {
                        uint64_t now = now_ns();
                        if (now >= deadline) {
                                errbuf_set(err, "thread %d of pid %d did not stop", t->tid,
                                           p->pid);
                                return -ETIMEDOUT;
                        }
                        r = proc_wait_one(p, deadline - now, 0, NULL);
                        if (r < 0)
                                return r;
                }
                if (t->state == PROC_THREAD_GONE || proc_gone(p))
                        return -ESRCH;
        }
        errbuf_set(err, "thread %d of pid %d does not settle at a safe stop", t->tid, p->pid);
        return -EAGAIN;
}

static int prepare(struct proc *p, struct proc_thread **tp, struct arch_regs *ret_orig,
                   uint64_t *ret_insn, struct errbuf *err)
{
        const struct arch_regs *cur;
        struct proc_thread *t;
        int r = 0;

        t = pick_thread(p, *tp, err, &r);
        if (!t)
                return r;
        r = settle(p, t, err);
        if (r < 0)
                return r;
        r = find_syscall_insn(p, ret_insn);
        if (r < 0 && !process_alive(p)) {
                errbuf_set(err, "pid %d exited during the operation", p->pid);
                return -ESRCH;
        }
        if (r < 0) {
                errbuf_set(err, "pid %d: found no syscall instruction in its executable memory",
                           p->pid);
                return r;
        }
        r = proc_regs(p, t, &cur);
        if (r < 0)
                return r;
        *ret_orig = *cur;
        /* The thread will not go back through the kernel's restart logic:
         * do the restart now, in the registers it resumes with. */
        arch_regs_fixup_syscall_restart(ret_orig);
        /* A call ends at a syscall-entry stop, where these registers cancel
         * the pending syscall only if they say "no syscall". */
        arch_regs_set_no_syscall(ret_orig);
        *tp = t;
        return 0;
}

int proc_syscall(struct proc *p, struct proc_thread *t, long nr, const uint64_t args[6],
                 uint64_t *ret, struct errbuf *err)
{
        struct arch_regs orig, work, out;
        uint64_t insn;
        uint64_t start = now_ns();
        int r;

        r = prepare(p, &t, &orig, &insn, err);
        if (r < 0)
                return r;
        p->n_injected++;
        work = orig;
        arch_regs_setup_syscall(&work, insn, nr, args);
        r = proc_store_regs(t->tid, &work);
        if (r < 0)
                return r;
        r = run_until(p, t, WAIT_EXIT, insn + arch_syscall_insn_len, arch_regs_sp(&work),
                      SYSCALL_TIMEOUT_NS, &out);
        if (r < 0) {
                if (r != -ESRCH)
                        abandon(p, t, &orig);
                errbuf_set(err, "syscall %ld in thread %d of pid %d failed: %s", nr, t->tid,
                           p->pid, r == -ESRCH ? "the process exited" : strerror(-r));
                return r;
        }
        r = restore(t, &orig);
        if (r < 0)
                return r;
        t->stop_kind = PROC_STOP_INJECTED;
        *ret = arch_regs_syscall_result(&out);
        log_debug("remote syscall %ld in thread %d: %.0f µs", nr, t->tid,
                  (double)(now_ns() - start) / 1e3);
        return 0;
}

int proc_call(struct proc *p, struct proc_thread *t, uint64_t fn, const uint64_t args[6],
              uint64_t timeout_ns, uint64_t *ret, struct errbuf *err)
{
        struct arch_regs orig, work, out;
        uint64_t insn, push_addr = 0, push_val = 0, result;
        int r;

        r = prepare(p, &t, &orig, &insn, err);
        if (r < 0)
                return r;
        p->n_injected++;
        work = orig;
        arch_regs_setup_call(&work, fn, args, insn, &push_addr, &push_val);
        if (push_addr) {
                r = proc_write(p, push_addr, &push_val, sizeof(push_val));
                if (r < 0) {
                        errbuf_set(err, "cannot write the stack of thread %d of pid %d", t->tid,
                                   p->pid);
                        return r;
                }
        }
        r = proc_store_regs(t->tid, &work);
        if (r < 0)
                return r;
        /* When the callee returns, sp is back above the return address. */
        uint64_t ret_sp = arch_regs_sp(&work) + (push_addr ? sizeof(uint64_t) : 0);
        r = run_until(p, t, WAIT_ENTRY, insn + arch_syscall_insn_len, ret_sp,
                      timeout_ns ? timeout_ns : DEFAULT_CALL_TIMEOUT_NS, &out);
        if (r < 0) {
                if (r != -ESRCH)
                        abandon(p, t, &orig);
                errbuf_set(err, "call of 0x%" PRIx64 " in thread %d of pid %d failed: %s", fn,
                           t->tid, p->pid,
                           r == -ESRCH      ? "the process exited"
                           : r == -ETIMEDOUT ? "it did not return in time"
                                             : strerror(-r));
                return r;
        }
        result = arch_regs_call_result_at_syscall_entry(&out);
        /* We are at the entry of the syscall the return jumped into.
         * Restoring the registers also cancels it (they say "no syscall"),
         * and the thread stays stopped here. */
        r = restore(t, &orig);
        if (r < 0)
                return r;
        /* Step over the cancelled syscall to its exit stop, the same safe
         * place a remote syscall leaves the thread in. */
        r = run_until(p, t, WAIT_EXIT, arch_regs_pc(&orig), arch_regs_sp(&orig),
                      SYSCALL_TIMEOUT_NS, &out);
        if (r < 0)
                return r;
        r = restore(t, &orig);
        if (r < 0)
                return r;
        t->stop_kind = PROC_STOP_INJECTED;
        *ret = result;
        return 0;
}

int proc_mmap(struct proc *p, uint64_t addr, uint64_t len, int prot, int flags, int fd,
              uint64_t off, uint64_t *ret, struct errbuf *err)
{
        uint64_t args[6] = { addr, len, (uint64_t)prot, (uint64_t)flags, (uint64_t)(int64_t)fd,
                             off };
        uint64_t res;
        int r;

        r = proc_syscall(p, NULL, SYS_mmap, args, &res, err);
        if (r < 0)
                return r;
        if ((int64_t)res < 0 && (int64_t)res > -4096) {
                errbuf_set(err, "mmap of %" PRIu64 " bytes in pid %d failed: %s", len, p->pid,
                           strerror((int)-(int64_t)res));
                return (int)(int64_t)res;
        }
        *ret = res;
        return 0;
}

int proc_munmap(struct proc *p, uint64_t addr, uint64_t len, struct errbuf *err)
{
        uint64_t args[6] = { addr, len, 0, 0, 0, 0 };
        uint64_t res;
        int r;

        r = proc_syscall(p, NULL, SYS_munmap, args, &res, err);
        if (r < 0)
                return r;
        if ((int64_t)res < 0) {
                errbuf_set(err, "munmap in pid %d failed: %s", p->pid,
                           strerror((int)-(int64_t)res));
                return (int)(int64_t)res;
        }
        return 0;
}
