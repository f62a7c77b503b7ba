/* Controlling another process with ptrace: attach to every thread, stop
 * and resume them, read and write their memory, run syscalls and function
 * calls in them, and detach leaving the process exactly as found.
 *
 * Lifecycle:
 *
 *     proc_attach(pid)          every thread seized (PTRACE_SEIZE), running
 *       proc_stop_all()         every thread in a ptrace-stop
 *         proc_regs(), proc_read(), proc_write(), proc_syscall(), ...
 *       proc_resume_all()       running again
 *       proc_wait_events()      serve clone/signal/stop events meanwhile
 *     proc_detach()             untraced, as found
 *
 * Invariants, and how they are kept:
 * - No thread escapes: threads are seized with PTRACE_O_TRACECLONE, so a
 *   thread created by a seized thread is attached by the kernel; attaching
 *   repeats reading /proc/PID/task until a pass finds no unseized thread.
 * - No signal is lost or duplicated: a signal-delivery-stop seen while we
 *   wait is re-injected at once with the same signal number (the kernel
 *   keeps the siginfo), so handlers run as if we were not there.
 * - No spurious EINTR: a thread stopped inside a blocking syscall is left
 *   to the kernel's restart logic; registers are restored bit for bit, and
 *   when we run injected code the restart is done by hand first
 *   (arch_regs_fixup_syscall_restart).
 * - Group-stop is kept: a thread found in group-stop (SIGSTOP, SIGTSTP...)
 *   is resumed with PTRACE_LISTEN, not PTRACE_CONT, and stays stopped;
 *   detach leaves a stopped process stopped.
 * - Events are served only while the tool waits in proc_*(); between
 *   calls, a thread that clones or gets a signal waits in a ptrace-stop.
 *   Long work (symbolising, sleeping between retries) should go through
 *   proc_wait_events(), or happen after proc_detach().
 *
 * When the target is a child of the tool and exits while attached, its
 * exit status is reaped here (the kernel reports it once, to the tracer).
 * When the attaching thread has no children at proc_attach(), statuses are
 * taken with one waitpid(-1, __WNOTHREAD) each (proc_reaps_direct()):
 * that thread must not fork while attached, nor gain children otherwise
 * (a thread of the tool that exits may leave its children to it), or
 * their exits would be taken and dropped here.
 *
 * While attached, the calling thread blocks SIGCHLD (to wait on it with a
 * signalfd); proc_free() restores the previous mask. While seizing,
 * proc_attach() briefly installs a handler for SIGRTMAX-1 with a timer
 * (see "the exec deadlock" in attach.c) and restores the old one; so does
 * a stop that sleeps in a blocking wait (the timer is its deadline: see
 * stop_blocking() in attach.c). One `struct proc` is used by one thread
 * of the tool. */
#pragma once

#include "arch/arch.h"
#include "base/macro.h"
#include "base/util.h"

#include <sys/types.h>

struct proc;

enum proc_thread_state {
        PROC_THREAD_RUNNING,  /* seized, running (or in a syscall) */
        PROC_THREAD_STOPPED,  /* in a ptrace-stop of ours */
        PROC_THREAD_GONE,     /* exited; kept until the next compaction */
};

/* Where a stopped thread stopped (private to src/proc). Code can be
 * injected only at an interrupt stop or at the syscall-exit stop our own
 * injection left: a thread stopped in the middle of a syscall (the clone
 * event) would finish that syscall on resume, over our registers. */
enum {
        PROC_STOP_INTERRUPT,   /* PTRACE_EVENT_STOP, not group-stop */
        PROC_STOP_GROUP,       /* group-stop */
        PROC_STOP_IN_SYSCALL,  /* an event inside a syscall (clone, exec) */
        PROC_STOP_INJECTED,    /* syscall-exit stop left by remote.c */
};

struct proc_thread {
        pid_t tid;
        enum proc_thread_state state;
        bool group_stop;      /* in (or owes) a group-stop: resume with LISTEN */
        int group_stop_sig;   /* the stop signal, when group_stop */
        bool regs_valid;      /* regs were fetched at this stop */
        bool regs_dirty;      /* regs changed: stored back before resume */
        struct arch_regs regs;
        struct arch_regs saved_regs; /* as found at this stop (for restore) */
        bool saved_valid;
        uint64_t stopped_ns;  /* when it was seen stopped (monotonic) */
        /* Attached at birth and stopped before running any code of its
         * own: its stack is only the clone frame (no CFI there), and it
         * cannot be inside any function yet. Cleared when it resumes. */
        bool unborn;

        /* Private to src/proc. */
        bool interrupt_sent;  /* PTRACE_INTERRUPT sent, its stop not seen */
        bool new_thread;      /* auto-attached; initial stop not seen yet */
        bool signal_seen;     /* a signal was delivered since it resumed */
        bool want_stop;       /* proc_stop_thread(): keep its next stop */
        int stop_kind;        /* PROC_STOP_*, what kind of stop it is in */
        bool visited;         /* proc_stop_all_visit() called back for it */
        bool fixup_due;       /* interrupted: fixup_after_interrupt() still to run */
        unsigned preload;     /* its stack chunk read ahead by the unwinder + 1 */
        /* Its registers at its last stop (as found there), kept after it
         * resumes: stale, only good for warming caches before the next
         * stop (proc_unwinder_warm). */
        struct arch_regs last_regs;
        bool last_regs_valid;
};

/* Options of proc_attach(). */
struct proc_attach_opts {
        /* Seconds proc_stop_all()/proc_stop_thread() wait for threads to
         * report their stops (a thread in uninterruptible sleep, e.g. a
         * vfork parent, cannot stop). 0 means 10 s. */
        double timeout;
};

/* Seize every thread of `pid`. Threads keep running. Refuses with
 * -EBUSY when any thread is already traced (by a debugger, another
 * liveup), -EPERM without permission, -ESRCH when there is no such
 * process (or it is a zombie). Details for the user go to `err`. */
int proc_attach(pid_t pid, const struct proc_attach_opts *opts, struct proc **ret,
                struct errbuf *err);

/* Stop every thread (PTRACE_INTERRUPT, then wait for each stop). New
 * threads born meanwhile are attached and stopped too. */
int proc_stop_all(struct proc *p, struct errbuf *err);

/* proc_stop_all(), calling visit() for each stopped thread. When every
 * status is ours to take (the attaching thread has no children), the
 * threads are first all stopped with the tool asleep in one blocking wait
 * per status, as a bare ptrace loop does (they need the CPUs to reach
 * their stops), and visited then; otherwise each is visited as soon as it
 * is in its stop, while the others are still on their way. A thread stays
 * stopped once visited, so what visit() saw holds until the resume.
 * Threads born during the stop are visited too (t->unborn). When visit()
 * returns < 0 the stop is abandoned: every thread is resumed and that
 * value returned (err untouched); 0 goes on. With `preload`, the stacks
 * of the threads about to be visited are read together, in one system
 * call (see proc_unwinder_reserve()). */
struct proc_unwinder;
typedef int (*proc_visit_fn)(struct proc *p, struct proc_thread *t, void *userdata);
int proc_stop_all_visit(struct proc *p, proc_visit_fn visit, void *userdata,
                        struct proc_unwinder *preload, struct errbuf *err);
/* Visit every thread in a stop of its own, never all at once: running
 * threads are interrupted a few at a time (two per CPU), each visited as
 * soon as it stops and resumed right away, so each is held for about its
 * own visit (the longest such hold, counted from when its stop was
 * reaped, in *ret_held_max_ns). Threads in a group stop (job control)
 * are interrupted too, visited, and let go back into it (PTRACE_LISTEN),
 * as by proc_stop_all(). After `budget_ns` the threads not reached yet are
 * left alone and 0 is returned: a busy thread reaches its stop only when
 * the scheduler gives it a turn on a CPU, so with more busy threads than
 * CPUs a whole probe takes tens of milliseconds. What visit() saw may be
 * stale by the time it returns: a probe, not a consistency point. It also
 * runs the stop path of the tool (and warms what the visits cache) before
 * a window of proc_stop_all_visit(), whose first run in a process is ~20%
 * slower; a probe of 2 ms is enough for that. When visit() returns < 0 the
 * probe ends (the threads still on their way are resumed when they stop)
 * and that value is returned (err untouched). */
int proc_probe_all(struct proc *p, proc_visit_fn visit, void *userdata, uint64_t budget_ns,
                   uint64_t *ret_held_max_ns, struct errbuf *err);
/* Resume every stopped thread (restoring changed registers first). */
int proc_resume_all(struct proc *p, struct errbuf *err);
/* Stop or resume one thread. */
int proc_stop_thread(struct proc *p, struct proc_thread *t, struct errbuf *err);
int proc_resume_thread(struct proc *p, struct proc_thread *t, struct errbuf *err);

/* True when every thread left is in a group stop (job control: SIGSTOP,
 * SIGTSTP...) as last seen: then none can run injected code (remote
 * syscalls refuse with -EAGAIN). */
bool proc_job_stopped(const struct proc *p);
/* Are wait statuses taken directly, one waitpid(-1, __WNOTHREAD) each, and
 * stops waited for with the tool asleep (see proc_stop_all_visit())? */
bool proc_reaps_direct(const struct proc *p);

/* True when the process executed a new program (execve) or exited
 * while attached: the operation must be abandoned. */
bool proc_gone(const struct proc *p);
/* "exited" or "executed a new program" when proc_gone(), else NULL. */
const char *proc_gone_reason(const struct proc *p);

/* Serve events (clones, signals, exits, group-stop changes) of running
 * threads for up to `timeout_ns` (0: only what is pending now). Returns
 * -ESRCH when the process is gone. */
int proc_wait_events(struct proc *p, uint64_t timeout_ns);

/* Detach from every thread: stops them first when needed, restores
 * registers, and leaves group-stopped threads stopped. Always leaves `p`
 * detached (best effort on a dying process); returns the first error. */
int proc_detach(struct proc *p);

/* Detach (if still attached) and free. NULL is allowed. */
void proc_free(struct proc *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct proc *, proc_free);

pid_t proc_pid(const struct proc *p);
/* Threads currently known (gone ones excluded after each stop/resume). */
size_t proc_n_threads(const struct proc *p);
struct proc_thread *proc_thread_at(struct proc *p, size_t i);
struct proc_thread *proc_thread_by_tid(struct proc *p, pid_t tid);
/* True when the whole process was found in group-stop at attach time. */
bool proc_was_group_stopped(const struct proc *p);

/* Registers of a stopped thread (fetched lazily, cached for the stop). */
int proc_regs(struct proc *p, struct proc_thread *t, const struct arch_regs **ret);
/* Replace a stopped thread's registers; written back before it resumes. */
int proc_set_regs(struct proc *p, struct proc_thread *t, const struct arch_regs *regs);

/* Memory. proc_read() uses process_vm_readv (falls back to /proc/PID/mem
 * for pages it cannot read, e.g. PROT_NONE); proc_write() writes through
 * /proc/PID/mem, which works on read-only text (the kernel forces the
 * write, copy-on-write for file mappings) without an mprotect in the
 * target. Both return -EFAULT when any byte is unmapped (a short transfer
 * is an error, never partial success). */
int proc_read(struct proc *p, uint64_t addr, void *buf, size_t size);
int proc_write(struct proc *p, uint64_t addr, const void *buf, size_t size);

/* Run syscall `nr` with `args` in stopped thread `t` (NULL: any thread
 * that is not group-stopped) and return its raw result (a negative errno
 * value as the kernel returned it, e.g. (uint64_t)-ENOMEM) in *ret.
 * Registers are restored exactly afterwards; the thread stays stopped.
 * -EAGAIN when every thread is group-stopped (running code would wake
 * it). */
int proc_syscall(struct proc *p, struct proc_thread *t, long nr, const uint64_t args[6],
                 uint64_t *ret, struct errbuf *err);

/* Call the function at `fn` in thread `t` (NULL: any) with up to six
 * integer arguments, and return its integer result. The call runs on the
 * thread's stack below the red zone; the thread's registers are restored
 * afterwards. Signals that arrive meanwhile are delivered as usual. A
 * call that does not return within `timeout_ns` (0: 5 s) is abandoned by
 * restoring the registers (-ETIMEDOUT). */
int proc_call(struct proc *p, struct proc_thread *t, uint64_t fn, const uint64_t args[6],
              uint64_t timeout_ns, uint64_t *ret, struct errbuf *err);

/* How many remote syscalls and calls (proc_syscall(), proc_call() and
 * what is built on them) were started in the target since attach: a
 * figure for reports and tests. */
unsigned proc_n_injected(const struct proc *p);

/* Find what injection needs (a syscall instruction in the target) now,
 * while the threads run, rather than in the first stop window that
 * injects (it reads the maps and scans code: a few hundred µs). */
int proc_inject_prepare(struct proc *p, struct errbuf *err);

/* Convenience: remote mmap/munmap (result checked, -errno on failure). */
int proc_mmap(struct proc *p, uint64_t addr, uint64_t len, int prot, int flags, int fd,
              uint64_t off, uint64_t *ret, struct errbuf *err);
int proc_munmap(struct proc *p, uint64_t addr, uint64_t len, struct errbuf *err);

/* Raise the calling thread to SCHED_FIFO for a stop window (see DEVELOPERS
 * facts: resuming 64 busy threads takes 30 ms at normal priority, 1 ms at
 * SCHED_FIFO) and lower it again. Failure to raise is not an error (the
 * window is just longer); proc_sched_raise() returns whether it did. */
struct proc_sched_saved {
        int policy;
        int priority;
        bool raised;
};
bool proc_sched_raise(struct proc_sched_saved *saved);
void proc_sched_restore(struct proc_sched_saved *saved);

/* Between stop windows the tool still works for the target (ELF files,
 * linking, remote syscalls in one stopped thread) while the target's
 * threads run; at nice 0 against N busy threads on this 2-CPU machine it
 * gets about 2/(N+1) of the CPU. proc_nice_raise() puts the calling thread
 * at nice -20 for a whole operation (still SCHED_OTHER: the target keeps
 * running), proc_nice_restore() puts it back. */
struct proc_nice_saved {
        int nice;
        bool raised;
};
bool proc_nice_raise(struct proc_nice_saved *saved);
void proc_nice_restore(struct proc_nice_saved *saved);
