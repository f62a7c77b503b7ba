/* Attaching to every thread of a process, stopping and resuming them, and
 * detaching, without the target noticing.
 *
 * ptrace facts this file relies on (see ptrace(2), kernel/signal.c):
 * - PTRACE_SEIZE does not stop the thread. With PTRACE_O_TRACECLONE a
 *   thread created by a traced thread is traced from birth; it reports a
 *   PTRACE_EVENT_STOP first, and that report may reach us before the
 *   parent's PTRACE_EVENT_CLONE.
 * - PTRACE_INTERRUPT makes a running thread report PTRACE_EVENT_STOP. The
 *   stop signal reported is SIGTRAP, or the group-stop signal while the
 *   process is group-stopped (do_jobctl_trap). Any ptrace stop clears a
 *   pending interrupt, so after re-injecting a signal at a
 *   signal-delivery-stop we interrupt again.
 * - At a signal-delivery-stop the signal is delivered only if the tracer
 *   resumes with it: we always resume with the same signal, so nothing is
 *   lost, and never with another, so nothing is duplicated.
 * - A thread in group-stop must be resumed with PTRACE_LISTEN to stay
 *   stopped. PTRACE_DETACH reinstates a group-stop in effect
 *   (__ptrace_unlink), so a stopped process stays stopped.
 * - A thread interrupted inside a blocking syscall is restarted by the
 *   kernel when it resumes (-ERESTART* codes), provided its registers are
 *   as they were. A few syscalls are never restarted and return EINTR
 *   (epoll_wait, sigtimedwait, semtimedop, io_getevents...): for those, when
 *   no signal caused it, we restart them by hand
 *   (arch_regs_fixup_spurious_eintr), so the target sees no EINTR.
 * - waitpid(-1, __WALL) would also reap children of the tool that are not
 *   our tracees; we peek with waitid(WNOWAIT) and reap only tracees.
 *
 * A thread is in one of three states (enum proc_thread_state); every stop
 * reported by the kernel goes through handle_stop(), which decides to keep
 * the thread stopped (p->stopping, or an interrupt of ours) or to resume
 * it at once (events while the target runs). */
#include "proc-internal.h"
#include "base/log.h"
#include "base/procfs.h"

#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define SEIZE_OPTIONS                                                          \
        (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD)

static bool is_stop_signal(int sig)
{
        return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

pid_t proc_pid(const struct proc *p)
{
        return p->pid;
}

unsigned proc_n_injected(const struct proc *p)
{
        return p->n_injected;
}

size_t proc_n_threads(const struct proc *p)
{
        return p->n_threads;
}

struct proc_thread *proc_thread_at(struct proc *p, size_t i)
{
        return i < p->n_threads ? p->threads[i] : NULL;
}

struct proc_thread *proc_thread_by_tid(struct proc *p, pid_t tid)
{
        for (size_t i = 0; i < p->n_threads; i++)
                if (p->threads[i]->tid == tid)
                        return p->threads[i];
        return NULL;
}

bool proc_was_group_stopped(const struct proc *p)
{
        return p->was_group_stopped;
}

bool proc_reaps_direct(const struct proc *p)
{
        return p->reap_direct;
}

bool proc_job_stopped(const struct proc *p)
{
        size_t live = 0;

        for (size_t i = 0; i < p->n_threads; i++) {
                const struct proc_thread *t = p->threads[i];

                if (t->state == PROC_THREAD_GONE)
                        continue;
                if (!t->group_stop)
                        return false;
                live++;
        }
        return live > 0;
}

bool proc_gone(const struct proc *p)
{
        return p->exited || p->execed;
}

const char *proc_gone_reason(const struct proc *p)
{
        return p->execed ? "executed a new program" : p->exited ? "exited" : NULL;
}

struct proc_thread *proc_add_thread(struct proc *p, pid_t tid)
{
        struct proc_thread *t;

        if (p->n_threads == p->cap_threads) {
                size_t ncap = p->cap_threads ? p->cap_threads * 2 : 16;
                struct proc_thread **nt = realloc(p->threads, ncap * sizeof(*nt));
                if (!nt)
                        return NULL;
                p->threads = nt;
                p->cap_threads = ncap;
        }
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->tid = tid;
        t->state = PROC_THREAD_RUNNING;
        p->threads[p->n_threads++] = t;
        return t;
}

/* Drop threads that are gone. Pointers to live threads stay valid. */
static void compact_threads(struct proc *p)
{
        size_t j = 0;

        for (size_t i = 0; i < p->n_threads; i++) {
                if (p->threads[i]->state == PROC_THREAD_GONE)
                        free(p->threads[i]);
                else
                        p->threads[j++] = p->threads[i];
        }
        p->n_threads = j;
}

int proc_fetch_regs(pid_t tid, struct arch_regs *ret)
{
        struct iovec iov = { .iov_base = ret, .iov_len = sizeof(*ret) };

        if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
                return -errno;
        if (iov.iov_len != sizeof(*ret))
                return -EIO;
        return 0;
}

int proc_store_regs(pid_t tid, const struct arch_regs *regs)
{
        struct iovec iov = { .iov_base = (void *)regs, .iov_len = sizeof(*regs) };

        if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
                return -errno;
        return 0;
}

static void mark_gone(struct proc *p, struct proc_thread *t)
{
        t->fixup_due = false;
        t->state = PROC_THREAD_GONE;
        t->interrupt_sent = false;
        t->new_thread = false;
        for (size_t i = 0; i < p->n_threads; i++)
                if (p->threads[i]->state != PROC_THREAD_GONE)
                        return;
        p->exited = true;
}

static void fixup_after_interrupt(struct proc *p, struct proc_thread *t);

/* Run the interrupt fixup that a stop in stop_blocking() left for later:
 * before the thread's registers are used, stored, or it goes on. */
static void fixup_if_due(struct proc *p, struct proc_thread *t)
{
        if (!t->fixup_due)
                return;
        t->fixup_due = false;
        if (t->state == PROC_THREAD_STOPPED)
                fixup_after_interrupt(p, t);
}

/* Resume a thread that reported a stop we do not keep. */
static int resume_raw(struct proc *p, struct proc_thread *t, int sig)
{
        long r;

        fixup_if_due(p, t);
        if (t->group_stop && sig == 0)
                r = ptrace(PTRACE_LISTEN, t->tid, 0, 0);
        else
                r = ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig);
        if (r < 0) {
                if (errno == ESRCH) {
                        /* Killed meanwhile: its exit report will follow. */
                        t->state = PROC_THREAD_RUNNING;
                        return 0;
                }
                return -errno;
        }
        t->state = PROC_THREAD_RUNNING;
        if (t->saved_valid || (t->regs_valid && !t->regs_dirty)) {
                t->last_regs = t->saved_valid ? t->saved_regs : t->regs;
                t->last_regs_valid = true;
        }
        t->regs_valid = false;
        t->saved_valid = false;
        t->regs_dirty = false;
        t->unborn = false;
        return 0;
}

static int interrupt_thread(struct proc_thread *t)
{
        if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0) {
                if (errno == ESRCH)
                        return 0; /* exiting: its exit report will follow */
                return -errno;
        }
        t->interrupt_sent = true;
        return 0;
}

/* At an interrupt stop, undo an EINTR that only our interrupt caused. */
static void fixup_after_interrupt(struct proc *p, struct proc_thread *t)
{
        struct arch_regs regs;
        uint8_t insn[8];
        size_t n = arch_syscall_insn_len;

        if (t->signal_seen)
                return; /* a signal may have caused the EINTR: keep it */
        if (proc_fetch_regs(t->tid, &regs) < 0)
                return;
        t->regs = regs;
        t->saved_regs = regs;
        t->regs_valid = t->saved_valid = true;
        if (!arch_regs_is_spurious_eintr(&regs))
                return;
        /* Only when pc really follows a syscall instruction. */
        if (n > sizeof(insn) || proc_read(p, arch_regs_pc(&regs) - n, insn, n) < 0 ||
            memcmp(insn, arch_syscall_insn, n) != 0)
                return;
        if (!arch_regs_fixup_spurious_eintr(&regs))
                return;
        if (proc_store_regs(t->tid, &regs) < 0)
                return;
        log_debug("thread %d: restarted a syscall our interrupt made fail with EINTR", t->tid);
        t->regs = regs;
        t->saved_regs = regs;
}

/* Handle one wait status of thread `t`. Returns 2 (and leaves the thread
 * stopped) for a syscall stop of `for_tid`, else 1, or < 0. */
static int handle_status(struct proc *p, struct proc_thread *t, int status, pid_t for_tid)
{
        int sig, event;

        if (WIFEXITED(status) || WIFSIGNALED(status)) {
                log_debug("thread %d exited", t->tid);
                mark_gone(p, t);
                return 1;
        }
        if (!WIFSTOPPED(status))
                return 1;

        sig = WSTOPSIG(status);
        event = (status >> 16) & 0xff;
        t->stopped_ns = now_ns();

        if (t->tid == for_tid) {
                /* The thread runs injected code (remote.c): every stop of
                 * it is for the injector to judge. */
                t->state = PROC_THREAD_STOPPED;
                return 2;
        }

        switch (event) {
        case PTRACE_EVENT_STOP: {
                bool was_interrupted = t->interrupt_sent;

                t->interrupt_sent = false;
                t->unborn = t->new_thread;
                t->new_thread = false;
                t->state = PROC_THREAD_STOPPED;
                t->regs_valid = t->saved_valid = t->regs_dirty = false;
                if (is_stop_signal(sig)) {
                        t->group_stop = true;
                        t->group_stop_sig = sig;
                        t->stop_kind = PROC_STOP_GROUP;
                } else {
                        t->group_stop = false;
                        t->stop_kind = PROC_STOP_INTERRUPT;
                }

                if (was_interrupted && !t->group_stop) {
                        if (p->defer_fixup)
                                t->fixup_due = true;
                        else
                                fixup_after_interrupt(p, t);
                }
                if (p->stopping || t->want_stop || t->tid == for_tid)
                        return 1;
                /* Not stopping: an event while the target runs (group-stop
                 * change, new thread's first stop, a late interrupt: the
                 * stop was abandoned before this thread reached it, and its
                 * interrupted syscall has just been restarted above). */
                return resume_raw(p, t, 0) < 0 ? -EIO : 1;
        }
        case PTRACE_EVENT_CLONE: {
                unsigned long msg = 0;
                pid_t child, tgid = 0;

                t->state = PROC_THREAD_STOPPED;
                t->stop_kind = PROC_STOP_IN_SYSCALL;
                t->regs_valid = t->saved_valid = t->regs_dirty = false;
                if (ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &msg) == 0) {
                        child = (pid_t)msg;
                        if (procfs_tgid(child, &tgid) == 0 && tgid != p->pid) {
                                /* clone() of a new process without SIGCHLD:
                                 * not ours to trace. */
                                log_debug("clone child %d is process %d: detaching", child,
                                          tgid);
                                struct proc_thread *c = proc_thread_by_tid(p, child);
                                (void)c;
                                /* It reports its first stop before it can be
                                 * detached; do it then (see proc_wait_one). */
                        } else if (!proc_thread_by_tid(p, child)) {
                                struct proc_thread *c = proc_add_thread(p, child);
                                if (!c)
                                        return -ENOMEM;
                                c->new_thread = true;
                                log_debug("thread %d created thread %d", t->tid, child);
                        }
                }
                /* The parent may have been interrupted too: its interrupt was
                 * cleared by this stop. Keep it if we are stopping. */
                if (p->stopping || t->want_stop) {
                        t->interrupt_sent = false;
                        t->group_stop = false;
                        return 1;
                }
                return resume_raw(p, t, 0) < 0 ? -EIO : 1;
        }
        case PTRACE_EVENT_EXEC:
                log_debug("thread %d executed a new program", t->tid);
                p->execed = true;
                t->fixup_due = false; /* its registers are the new program's */
                t->state = PROC_THREAD_STOPPED;
                t->stop_kind = PROC_STOP_IN_SYSCALL;
                t->interrupt_sent = false;
                return 1;
        case 0:
                break;
        default:
                /* Events we did not ask for: just go on. */
                t->state = PROC_THREAD_STOPPED;
                t->stop_kind = PROC_STOP_IN_SYSCALL;
                if (p->stopping || t->want_stop)
                        return 1;
                return resume_raw(p, t, 0) < 0 ? -EIO : 1;
        }

        /* Signal-delivery-stop: deliver the very same signal now. */
        if (sig == (SIGTRAP | 0x80)) {
                /* A syscall stop we did not ask for (left from an injection
                 * that was abandoned): keep it if stopping, else go on. */
                t->state = PROC_THREAD_STOPPED;
                t->stop_kind = PROC_STOP_IN_SYSCALL;
                t->regs_valid = t->saved_valid = t->regs_dirty = false;
                if (p->stopping || t->want_stop)
                        return 1;
                return resume_raw(p, t, 0) < 0 ? -EIO : 1;
        }
        log_debug("thread %d: delivering signal %d", t->tid, sig);
        t->signal_seen = true;
        t->state = PROC_THREAD_STOPPED;
        t->interrupt_sent = false;
        {
                bool gs = t->group_stop;
                t->group_stop = false; /* CONT with a signal, never LISTEN */
                int r = resume_raw(p, t, sig);
                if (r < 0)
                        return r;
                t->group_stop = gs && is_stop_signal(sig);
        }
        /* The stop cleared our pending interrupt: ask again. */
        if (p->stopping || t->want_stop)
                return interrupt_thread(t) < 0 ? -EIO : 1;
        return 1;
}

/* Is `tid` a thread of our process that the kernel attached for us (a
 * clone child whose first stop came before the parent's clone event)? */
static struct proc_thread *adopt_thread(struct proc *p, pid_t tid)
{
        pid_t tgid = 0;
        struct proc_thread *t;

        if (procfs_tgid(tid, &tgid) < 0 || tgid != p->pid)
                return NULL;
        t = proc_add_thread(p, tid);
        if (t)
                t->new_thread = true;
        return t;
}

/* Has the calling thread no children of its own (/proc/self/task/TID/
 * children, which lists children, never tracees)? Then every status that
 * waitpid(-1, __WNOTHREAD) can return is a tracee's: ours, or a clone()d
 * process the kernel attached for us. False when it cannot tell. */
static bool thread_childless(void)
{
        char path[64], buf[16];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)gettid());
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf));
        close(fd);
        return n == 0;
}

/* A status reaped for `tid`: hand it to *ret_t, or let go of a traced task
 * that is not a thread of ours (a clone()d process). Returns 1. */
static int take_status(struct proc *p, pid_t tid, int status, struct proc_thread **ret_t,
                       int *ret_status)
{
        struct proc_thread *t = proc_thread_by_tid(p, tid);

        if (!t && WIFSTOPPED(status))
                t = adopt_thread(p, tid);
        if (!t) {
                if (WIFSTOPPED(status))
                        ptrace(PTRACE_DETACH, tid, 0, 0);
                return 1;
        }
        *ret_t = t;
        *ret_status = status;
        return 1;
}

/* Reap one pending status of one of our threads, without blocking. Returns
 * 1 with *ret_t and *ret_status set (*ret_t NULL: a status that was not
 * ours to keep), 0 when nothing is pending.
 *
 * When the tracer thread has no children (reap_direct, the usual case),
 * one waitpid(-1, __WNOTHREAD) takes the next status, whichever tracee it
 * is. Otherwise (a program that links libliveup may have children of its
 * own, whose exits are not ours to take) a waitid(WNOWAIT) first says
 * whose status is pending, and only a tracee's is taken. Inside a stop
 * window that is one system call per thread saved (~1 µs here), and
 * waitid(P_ALL) walks every tracee in the kernel each time. */
static int reap_pending(struct proc *p, struct proc_thread **ret_t, int *ret_status)
{
        siginfo_t si;
        int status;
        pid_t r;

        if (p->reap_direct) {
                r = waitpid(-1, &status, __WALL | __WNOTHREAD | WNOHANG);
                if (r < 0)
                        return errno == ECHILD ? 0 : -errno;
                if (r == 0)
                        return 0;
                return take_status(p, r, status, ret_t, ret_status);
        }
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0) {
                if (errno == ECHILD)
                        return 0;
                return -errno;
        }
        if (si.si_pid == 0)
                return 0; /* nothing pending for any child or tracee */
        {
                struct proc_thread *t = proc_thread_by_tid(p, si.si_pid);
                if (!t && si.si_code != CLD_EXITED && si.si_code != CLD_KILLED &&
                    si.si_code != CLD_DUMPED)
                        t = adopt_thread(p, si.si_pid);
                if (!t && si.si_code == CLD_TRAPPED) {
                        /* A traced task that is not a thread of ours (a
                         * clone()d process): let it go. */
                        if (waitpid(si.si_pid, &status, __WALL | WNOHANG) > 0)
                                ptrace(PTRACE_DETACH, si.si_pid, 0, 0);
                        return 1;
                }
                if (t) {
                        r = waitpid(t->tid, &status, __WALL | WNOHANG);
                        if (r < 0)
                                return -errno;
                        if (r == 0)
                                return 0;
                        *ret_t = t;
                        *ret_status = status;
                        return 1;
                }
        }
        /* The first pending child is not ours (a child of the tool that
         * exited, left for its owner to reap): look at our threads one by
         * one. */
        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];

                if (t->state == PROC_THREAD_GONE)
                        continue;
                r = waitpid(t->tid, &status, __WALL | WNOHANG);
                if (r < 0 && errno == ECHILD) {
                        /* Not traced by us any more (reaped elsewhere). */
                        mark_gone(p, t);
                        continue;
                }
                if (r > 0) {
                        *ret_t = t;
                        *ret_status = status;
                        return 1;
                }
        }
        return 0;
}

/* Take a pending SIGCHLD from the signalfd, without blocking: true if
 * one was there, i.e. some tracee stopped or exited since the last take.
 * (SIGCHLDs coalesce: one stands for any number of statuses.) */
static bool sigchld_taken(struct proc *p)
{
        struct signalfd_siginfo ssi;
        bool taken = false;

        while (read(p->sigchld_fd, &ssi, sizeof(ssi)) == sizeof(ssi))
                taken = true;
        return taken;
}

/* Sleep until SIGCHLD (each ptrace stop and exit of a tracee sends one),
 * but at most `timeout_ns` and at most 20 ms: signals coalesce, and one
 * may have been taken by another thread of the tool. */
static int wait_sigchld(struct proc *p, uint64_t timeout_ns)
{
        struct pollfd pfd = { .fd = p->sigchld_fd, .events = POLLIN };
        int ms = (int)MIN(timeout_ns / 1000000 + 1, 20);
        int r = poll(&pfd, 1, ms);

        if (r < 0 && errno != EINTR)
                return -errno;
        if (r > 0)
                (void)sigchld_taken(p);
        return 0;
}

int proc_wait_one(struct proc *p, uint64_t timeout_ns, pid_t for_tid, int *ret_status)
{
        uint64_t deadline = now_ns() + timeout_ns;

        for (;;) {
                struct proc_thread *t = NULL;
                int status = 0, r;

                r = reap_pending(p, &t, &status);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (!t)
                                continue;
                        r = handle_status(p, t, status, for_tid);
                        if (r == 2 && ret_status)
                                *ret_status = status;
                        return r;
                }

                uint64_t now = now_ns();
                if (timeout_ns == 0 || now >= deadline)
                        return 0;
                r = wait_sigchld(p, deadline - now);
                if (r < 0)
                        return r;
        }
}

int proc_wait_events(struct proc *p, uint64_t timeout_ns)
{
        uint64_t deadline = now_ns() + timeout_ns;
        int r;

        do {
                r = proc_wait_one(p, timeout_ns ? deadline - MIN(deadline, now_ns()) : 0, 0,
                                  NULL);
                if (r < 0)
                        return r;
                if (proc_gone(p))
                        return -ESRCH;
        } while (r > 0 || (timeout_ns && now_ns() < deadline));
        return 0;
}

static int setup_signalfd(struct proc *p)
{
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (pthread_sigmask(SIG_BLOCK, &mask, &p->saved_mask) != 0)
                return -EINVAL;
        p->mask_saved = true;
        p->sigchld_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (p->sigchld_fd < 0)
                return -errno;
        return 0;
}

static void describe_tracer(pid_t tracer, char *buf, size_t size)
{
        char comm[64] = "";

        if (procfs_thread_name(tracer, tracer, comm, sizeof(comm)) < 0)
                snprintf(comm, sizeof(comm), "?");
        snprintf(buf, size, "already traced by pid %d (%s)", tracer, comm);
}

/* Why seizing `tid` failed with EPERM: traced by someone, or permission. */
static int explain_eperm(struct proc *p, pid_t tid, struct errbuf *err)
{
        pid_t tracer = 0;
        char what[128];

        if (procfs_tracer_pid(p->pid, tid, &tracer) == 0 && tracer != 0) {
                if (tracer == getpid())
                        return 0; /* ours: auto-attached clone child */
                describe_tracer(tracer, what, sizeof(what));
                errbuf_set(err, "cannot attach to pid %d: %s", p->pid, what);
                return -EBUSY;
        }
        errbuf_set(err, "cannot attach to pid %d: permission denied (need root, or the same user "
                   "and a dumpable process)", p->pid);
        return -EPERM;
}

static int check_target(pid_t pid, struct errbuf *err)
{
        char state = 0;
        pid_t tracer = 0, tgid = 0;
        char what[128];
        int r;

        if (pid == getpid()) {
                errbuf_set(err, "cannot attach to pid %d: that is liveup itself", pid);
                return -EINVAL;
        }
        r = procfs_tgid(pid, &tgid);
        if (r < 0) {
                errbuf_set(err, "cannot attach to pid %d: no such process", pid);
                return -ESRCH;
        }
        if (tgid != pid) {
                errbuf_set(err, "cannot attach to pid %d: it is a thread of process %d; give the "
                           "process id", pid, tgid);
                return -EINVAL;
        }
        r = procfs_thread_state(pid, pid, &state);
        if (r < 0) {
                errbuf_set(err, "cannot attach to pid %d: no such process", pid);
                return -ESRCH;
        }
        if (state == 'Z' || state == 'X') {
                pid_t *tids = NULL;
                size_t n = 0;
                /* A zombie leader with live threads is still a process. */
                if (procfs_tasks(pid, &tids, &n) < 0 || n <= 1) {
                        free(tids);
                        errbuf_set(err, "cannot attach to pid %d: the process has exited "
                                   "(zombie)", pid);
                        return -ESRCH;
                }
                free(tids);
        }
        if (procfs_tracer_pid(pid, pid, &tracer) == 0 && tracer != 0) {
                describe_tracer(tracer, what, sizeof(what));
                errbuf_set(err, "cannot attach to pid %d: %s", pid, what);
                return -EBUSY;
        }
        return 0;
}

/* The exec deadlock. execve() holds the target's cred_guard_mutex while
 * de_thread() waits for the other threads to exit and be released; a
 * thread we trace is released only when we reap it. PTRACE_SEIZE takes
 * the same mutex (interruptibly): if the target execs just then, we block
 * in SEIZE and it blocks on us. So while seizing, a timer signal wakes us
 * every 20 ms, and its handler reaps exited tracees (waitid, which is
 * async-signal-safe); exec then completes and SEIZE goes on. The reaped
 * threads are recorded and marked gone afterwards. */
#define REAPER_MAX 256
static struct {
        pid_t tids[REAPER_MAX];
        volatile sig_atomic_t n_tids;
        pid_t reaped[REAPER_MAX];
        volatile sig_atomic_t n_reaped;
} reaper;

static void reaper_handler(int sig)
{
        int saved = errno;

        for (int i = 0; i < reaper.n_tids; i++) {
                siginfo_t si;
                if (reaper.tids[i] == 0)
                        continue;
                memset(&si, 0, sizeof(si));
                if (waitid(P_PID, (id_t)reaper.tids[i], &si, WEXITED | WNOHANG | __WALL) == 0 &&
                    si.si_pid == reaper.tids[i]) {
                        if (reaper.n_reaped < REAPER_MAX)
                                reaper.reaped[reaper.n_reaped++] = reaper.tids[i];
                        reaper.tids[i] = 0;
                }
        }
        errno = saved;
}

/* A POSIX timer that sends THREAD_ALARM_SIG to the calling thread, first
 * at `first` (absolute on CLOCK_MONOTONIC with TIMER_ABSTIME in `flags`,
 * else from now) and every 20 ms after, with `handler` installed for it.
 * Without SA_RESTART, a blocking call it lands in returns EINTR; one that
 * comes just before such a call starts is not lost for good, the next
 * comes 20 ms later. Used by the reaper (seizing) and by stop_blocking(),
 * never both at once. False when it cannot be armed (the signal blocked
 * in this thread, or a call failed): nothing is then changed. */
#define THREAD_ALARM_SIG (SIGRTMAX - 1)

struct thread_alarm {
        timer_t timer;
        struct sigaction old;
};

static bool thread_alarm_arm(struct thread_alarm *a, void (*handler)(int), int flags,
                             struct timespec first)
{
        struct sigaction sa = { .sa_handler = handler };
        struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
                                .sigev_signo = THREAD_ALARM_SIG };
        struct itimerspec its = { .it_value = first, .it_interval = { 0, 20 * 1000000 } };
        sigset_t cur;

        if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0 || sigismember(&cur, THREAD_ALARM_SIG))
                return false;
        if (sigaction(THREAD_ALARM_SIG, &sa, &a->old) < 0)
                return false;
        sev._sigev_un._tid = gettid();
        if (timer_create(CLOCK_MONOTONIC, &sev, &a->timer) < 0) {
                sigaction(THREAD_ALARM_SIG, &a->old, NULL);
                return false;
        }
        if (timer_settime(a->timer, flags, &its, NULL) < 0) {
                timer_delete(a->timer);
                sigaction(THREAD_ALARM_SIG, &a->old, NULL);
                return false;
        }
        return true;
}

static void thread_alarm_disarm(struct thread_alarm *a)
{
        timer_delete(a->timer);
        /* One may be pending: take it before the old handler is back. */
        sigset_t one;
        struct timespec zero = { 0, 0 };
        sigemptyset(&one);
        sigaddset(&one, THREAD_ALARM_SIG);
        while (sigtimedwait(&one, NULL, &zero) > 0)
                ;
        sigaction(THREAD_ALARM_SIG, &a->old, NULL);
}

struct reaper_guard {
        struct thread_alarm alarm;
        bool armed;
};

static void reaper_arm(struct proc *p, const pid_t *tasks, size_t n_tasks,
                       struct reaper_guard *g)
{
        g->armed = false;
        reaper.n_tids = 0;
        reaper.n_reaped = 0;
        /* Our threads, and every task of the process: a zombie we still
         * trace from an earlier attachment must be reaped too. waitid on a
         * task that is not ours fails harmlessly (ECHILD). */
        for (size_t i = 0; i < p->n_threads && reaper.n_tids < REAPER_MAX; i++)
                reaper.tids[reaper.n_tids++] = p->threads[i]->tid;
        for (size_t i = 0; i < n_tasks && reaper.n_tids < REAPER_MAX; i++)
                reaper.tids[reaper.n_tids++] = tasks[i];
        /* Every 20 ms from now. SEIZE restarts by itself after the
         * handler (ERESTARTNOINTR). */
        g->armed = thread_alarm_arm(&g->alarm, reaper_handler, 0,
                                    (struct timespec){ 0, 20 * 1000000 });
}

static void reaper_disarm(struct proc *p, struct reaper_guard *g)
{
        if (!g->armed)
                return;
        thread_alarm_disarm(&g->alarm);
        for (int i = 0; i < reaper.n_reaped; i++) {
                struct proc_thread *t = proc_thread_by_tid(p, reaper.reaped[i]);
                if (t)
                        mark_gone(p, t);
        }
        reaper.n_tids = reaper.n_reaped = 0;
        g->armed = false;
}

/* Seize every thread in `tids` that we do not know yet. Returns how many
 * were new. */
static int seize_tids(struct proc *p, const pid_t *tids, size_t n, struct errbuf *err)
{
        int r, added = 0;

        for (size_t i = 0; i < n; i++) {
                struct proc_thread *t;

                if (proc_thread_by_tid(p, tids[i]))
                        continue;
                if (ptrace(PTRACE_SEIZE, tids[i], 0, (void *)(long)SEIZE_OPTIONS) < 0) {
                        if (errno == ESRCH)
                                continue; /* exited meanwhile */
                        if (errno == EPERM) {
                                char st = 0;
                                /* An exited thread not yet reaped (a zombie)
                                 * cannot be traced, and runs no code. */
                                if (procfs_thread_state(p->pid, tids[i], &st) < 0 ||
                                    st == 'Z' || st == 'X')
                                        continue;
                                r = explain_eperm(p, tids[i], err);
                                if (r < 0)
                                        return r;
                                /* Auto-attached by the kernel: adopt it. */
                                t = proc_add_thread(p, tids[i]);
                                if (!t)
                                        return -ENOMEM;
                                t->new_thread = true;
                                added++;
                                continue;
                        }
                        r = -errno;
                        errbuf_set(err, "cannot attach to thread %d of pid %d: %s", tids[i],
                                   p->pid, strerror(-r));
                        return r;
                }
                t = proc_add_thread(p, tids[i]);
                if (!t)
                        return -ENOMEM;
                added++;
        }
        return added;
}

/* Seize every thread listed in /proc/PID/task that we do not know yet,
 * with the exec-deadlock reaper armed. Returns how many were new. */
static int seize_pass(struct proc *p, struct errbuf *err)
{
        _cleanup_free_ pid_t *tids = NULL;
        struct reaper_guard g;
        size_t n = 0;
        int r;

        r = procfs_tasks(p->pid, &tids, &n);
        if (r < 0) {
                errbuf_set(err, "cannot attach to pid %d: the process exited", p->pid);
                return -ESRCH;
        }
        reaper_arm(p, tids, n, &g);
        r = seize_tids(p, tids, n, err);
        reaper_disarm(p, &g);
        return r;
}

int proc_attach(pid_t pid, const struct proc_attach_opts *opts, struct proc **ret,
                struct errbuf *err)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        char path[64];
        char state = 0;
        int r;

        r = check_target(pid, err);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->pid = pid;
        p->mem_fd = -EBADF;
        p->sigchld_fd = -EBADF;

        r = setup_signalfd(p);
        if (r < 0) {
                errbuf_set(err, "cannot attach to pid %d: signalfd: %s", pid, strerror(-r));
                return r;
        }
        if (procfs_thread_state(pid, pid, &state) == 0 && state == 'T')
                p->was_group_stopped = true;
        p->reap_direct = thread_childless();

        p->attached = true;
        /* Seize until a pass finds no thread we do not know. Threads created
         * by seized threads are attached by the kernel (TRACECLONE); only
         * threads created by not-yet-seized ones need another pass. */
        for (int pass = 0;; pass++) {
                int added = seize_pass(p, err);
                if (added < 0)
                        return added;
                if (p->n_threads == 0) {
                        errbuf_set(err, "cannot attach to pid %d: the process exited", pid);
                        return -ESRCH;
                }
                /* Serve what is pending (clone events, first stops) so that
                 * new threads are known before the next pass. */
                r = proc_wait_events(p, 0);
                if (r < 0) {
                        errbuf_set(err, "cannot attach to pid %d: the process %s while "
                                   "attaching", pid, p->execed ? "executed a new program"
                                                               : "exited");
                        return -ESRCH;
                }
                /* A pass that found nothing new saw every thread seized: from
                 * then on, threads are born attached. */
                if (added == 0)
                        break;
                if (pass > 1000) {
                        errbuf_set(err, "cannot attach to pid %d: threads are created faster "
                                   "than they can be attached", pid);
                        return -EAGAIN;
                }
        }

        snprintf(path, sizeof(path), "/proc/%d/mem", pid);
        p->mem_fd = open(path, O_RDWR | O_CLOEXEC);
        if (p->mem_fd < 0) {
                r = -errno;
                errbuf_set(err, "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        p->stop_timeout_ns = opts && opts->timeout > 0 ? (uint64_t)(opts->timeout * 1e9)
                                                       : 10ull * 1000000000ull;
        log_debug("attached to pid %d: %zu threads", pid, p->n_threads);
        *ret = TAKE_PTR(p);
        return 0;
}

static bool all_stopped(const struct proc *p)
{
        for (size_t i = 0; i < p->n_threads; i++)
                if (p->threads[i]->state == PROC_THREAD_RUNNING)
                        return false;
        return true;
}

static const struct proc_thread *first_running(const struct proc *p)
{
        for (size_t i = 0; i < p->n_threads; i++)
                if (p->threads[i]->state == PROC_THREAD_RUNNING)
                        return p->threads[i];
        return NULL;
}

static void gone_message(struct proc *p, struct errbuf *err)
{
        if (p->execed)
                errbuf_set(err, "pid %d executed a new program during the operation", p->pid);
        else
                errbuf_set(err, "pid %d exited during the operation", p->pid);
}

/* Can threads of `p` be stopped: attached, and the process still there? */
static int ready_to_stop(struct proc *p, struct errbuf *err)
{
        if (!p->attached)
                return -ENOTCONN;
        if (proc_gone(p)) {
                gone_message(p, err);
                return -ESRCH;
        }
        return 0;
}

/* Call visit() for every stopped thread not visited yet: the number
 * visited, or < 0 from visit(). */
static int visit_stopped(struct proc *p, proc_visit_fn visit, void *userdata)
{
        int n = 0;

        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];

                if (t->visited || t->state != PROC_THREAD_STOPPED)
                        continue;
                t->visited = true;
                int r = visit(p, t, userdata);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}

static void timeout_message(struct proc *p, struct errbuf *err)
{
        const struct proc_thread *t = first_running(p);
        char st = '?';

        if (t)
                procfs_thread_state(p->pid, t->tid, &st);
        errbuf_set(err, "thread %d of pid %d did not stop within %.1f s (state: %s)",
                   t ? t->tid : 0, p->pid, (double)p->stop_timeout_ns / 1e9,
                   procfs_state_name(st));
}

/* Wait for every interrupted thread to stop as the bare ptrace loop does:
 * one blocking waitpid(-1, __WNOTHREAD) per status, nothing else. The
 * tool sleeps while the threads run into their stops, and does no other
 * work then: the threads need the CPUs to stop (on 2 CPUs, the tool's
 * work during the stops lengthened the window by about its own length),
 * so even the interrupt fixup (a PTRACE_GETREGSET each) waits until all
 * are stopped (fixup_due). Only when every status is ours (reap_direct)
 * and the stop deadline can be armed: 1 when it cannot, 0 when all are
 * stopped (or the process is gone), < 0. */
static void wait_alarm_handler(int sig)
{
        (void)sig;
}

static int stop_blocking(struct proc *p, uint64_t deadline, struct errbuf *err)
{
        struct timespec at = { (time_t)(deadline / 1000000000), (long)(deadline % 1000000000) };
        struct thread_alarm alarm;
        int r = 0;

        /* The deadline: the alarm ends the wait with EINTR. */
        if (!p->reap_direct || !thread_alarm_arm(&alarm, wait_alarm_handler, TIMER_ABSTIME, at))
                return 1;
        p->defer_fixup = true;
        while (!all_stopped(p) && !proc_gone(p)) {
                struct proc_thread *t = NULL;
                int status, st = 0;
                pid_t pid = waitpid(-1, &status, __WALL | __WNOTHREAD);

                if (pid < 0 && errno == EINTR) {
                        if (now_ns() < deadline)
                                continue;
                        timeout_message(p, err);
                        r = -ETIMEDOUT;
                        break;
                }
                if (pid < 0 && errno == ECHILD) {
                        /* None of ours is traced any more: all gone. */
                        for (size_t i = 0; i < p->n_threads; i++)
                                if (p->threads[i]->state == PROC_THREAD_RUNNING)
                                        mark_gone(p, p->threads[i]);
                        break;
                }
                if (pid < 0) {
                        r = -errno;
                        break;
                }
                (void)take_status(p, pid, status, &t, &st);
                if (t) {
                        r = handle_status(p, t, st, 0);
                        if (r < 0)
                                break;
                        r = 0;
                }
        }
        p->defer_fixup = false;
        thread_alarm_disarm(&alarm);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n_threads; i++)
                fixup_if_due(p, p->threads[i]);
        return 0;
}

int proc_stop_all_visit(struct proc *p, proc_visit_fn visit, void *userdata,
                        struct proc_unwinder *preload, struct errbuf *err)
{
        uint64_t deadline = now_ns() + p->stop_timeout_ns;
        bool abandoned = false;
        int r;

        r = ready_to_stop(p, err);
        if (r < 0)
                return r;
        p->stopping = true;
        for (size_t i = 0; i < p->n_threads; i++)
                p->threads[i]->visited = false;

        /* Take what is already pending first, so that a stop reported
         * before our interrupt is not followed by a second one. */
        while ((r = proc_wait_one(p, 0, 0, NULL)) > 0)
                ;
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];

                if (t->state != PROC_THREAD_RUNNING || t->interrupt_sent || t->new_thread)
                        continue;
                r = interrupt_thread(t);
                if (r < 0)
                        goto fail;
        }

        /* All stopped by then (0), or not tried (1). */
        r = stop_blocking(p, deadline, err);
        if (r < 0)
                goto fail;

        /* In rounds: take every stop that is in (an empty wait ends the
         * round), then check the stacks of the threads that stopped while
         * the others are still on their way. An empty wait walks every
         * tracee in the kernel (~5 µs at 256 threads), so a new round
         * starts only when the signalfd has a SIGCHLD, taken before the
         * waits: a stop after that take queues another. Sleep only when
         * there is nothing to check; after a wake-up (or the 20 ms a
         * SIGCHLD taken elsewhere would cost) always wait once. After
         * stop_blocking(), one round visits them all. */
        bool pending = r == 1; /* what came in before */
        for (;;) {
                if (pending) {
                        while ((r = proc_wait_one(p, 0, 0, NULL)) > 0)
                                ;
                        if (r < 0)
                                goto fail;
                }
                if (proc_gone(p)) {
                        r = -ESRCH;
                        goto fail;
                }
                if (visit) {
                        if (preload)
                                proc_unwinder_preload(preload);
                        r = visit_stopped(p, visit, userdata);
                        if (r < 0) {
                                abandoned = true;
                                goto fail;
                        }
                }
                if (all_stopped(p))
                        break;
                uint64_t now = now_ns();
                if (now >= deadline) {
                        timeout_message(p, err);
                        r = -ETIMEDOUT;
                        goto fail;
                }
                pending = sigchld_taken(p);
                if (pending)
                        continue;
                r = wait_sigchld(p, deadline - now);
                if (r < 0)
                        goto fail;
                pending = true;
        }
        compact_threads(p);
        return 0;

fail:
        if (!abandoned) {
                if (r == -ESRCH || proc_gone(p))
                        gone_message(p, err);
                else if (!err || !err->msg[0])
                        errbuf_set(err, "cannot stop the threads of pid %d: %s", p->pid,
                                   strerror(-r));
        }
        /* Leave the process as it was: running. */
        {
                int saved = r;
                (void)proc_resume_all(p, NULL);
                r = saved;
        }
        return r;
}

int proc_stop_all(struct proc *p, struct errbuf *err)
{
        return proc_stop_all_visit(p, NULL, NULL, NULL, err);
}

static int resume_kept(struct proc *p, struct proc_thread *t);

/* Interrupt running threads not probed yet until `width` are on their
 * way. Returns 1 when some are on their way or still to go, 0 when none,
 * or < 0. */
static int probe_launch(struct proc *p, size_t width)
{
        size_t flying = 0, left = 0;

        for (size_t i = 0; i < p->n_threads; i++) {
                const struct proc_thread *t = p->threads[i];

                if (!t->visited && t->state == PROC_THREAD_RUNNING && t->want_stop)
                        flying++;
        }
        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];

                if (t->visited || t->state != PROC_THREAD_RUNNING || t->want_stop ||
                    t->new_thread)
                        continue;
                if (flying >= width) {
                        left++;
                        continue;
                }
                t->want_stop = true;
                if (!t->interrupt_sent) {
                        int r = interrupt_thread(t);
                        if (r < 0)
                                return r;
                }
                flying++;
        }
        return flying + left > 0;
}

/* Visit and resume every thread that is stopped for the probe. 1 when
 * some thread is still on its way, 0 when all are done, < 0 from visit()
 * or from resuming. */
static int probe_pass(struct proc *p, proc_visit_fn visit, void *userdata,
                      uint64_t *held_max)
{
        bool waiting = false;

        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];
                int r;

                if (t->visited || t->state == PROC_THREAD_GONE)
                        continue;
                if (t->state == PROC_THREAD_RUNNING) {
                        waiting = waiting || t->want_stop;
                        continue;
                }
                /* Stopped: for us (want_stop), or by job control. */
                t->visited = true;
                r = t->unborn ? 0 : visit(p, t, userdata);
                if (t->want_stop) {
                        int q = resume_kept(p, t);
                        *held_max = MAX(*held_max, now_ns() - t->stopped_ns);
                        if (q < 0 && r >= 0)
                                r = q;
                }
                if (r < 0)
                        return r;
        }
        return waiting ? 1 : 0;
}

int proc_probe_all(struct proc *p, proc_visit_fn visit, void *userdata, uint64_t budget_ns,
                   uint64_t *ret_held_max_ns, struct errbuf *err)
{
        uint64_t deadline = now_ns() + p->stop_timeout_ns, held_max = 0;
        int r;

        r = ready_to_stop(p, err);
        if (r < 0)
                return r;
        while ((r = proc_wait_one(p, 0, 0, NULL)) > 0)
                ;
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < p->n_threads; i++)
                p->threads[i]->visited = false;
        /* In waves of two threads per CPU: interrupted all at once, the
         * threads that stop together wait in turn for the visits of the
         * others (at 16 busy threads on 2 CPUs, 170-300 µs held each
         * against 40-100 µs in waves of 4), which would make the probe
         * nearly a second window. The price is time in the tool. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t width = 2 * (size_t)(cpus > 0 ? cpus : 1);
        /* The probe is a prediction and a warm-up, not a check: it has a
         * budget. When busy threads outnumber the CPUs, each waits for its
         * turn to run into its stop (256 busy threads on 2 CPUs: ~0.4 s a
         * wave); after the budget the threads not probed yet are left to
         * the window, which checks every stack anyway. */
        uint64_t budget_end = now_ns() + budget_ns;
        for (;;) {
                r = probe_launch(p, width);
                if (r < 0)
                        goto finish;
                int q = probe_pass(p, visit, userdata, &held_max);
                if (q < 0) {
                        r = q;
                        break;
                }
                if (q == 0 && probe_launch(p, width) == 0) {
                        r = 0;
                        break;
                }
                uint64_t now = now_ns();

                if (proc_gone(p)) {
                        r = -ESRCH;
                        goto finish;
                }
                if (now >= budget_end) {
                        log_debug("probe: budget of %.1f ms spent; the rest is left to the window",
                                  (double)budget_ns / 1e6);
                        r = 0;
                        goto finish; /* not a failure */
                }
                if (now >= deadline) {
                        timeout_message(p, err);
                        r = -ETIMEDOUT;
                        goto finish;
                }
                /* Sleep no later than the budget's end. */
                r = proc_wait_one(p, MIN(deadline, budget_end) - now, 0, NULL);
                /* Reap every stop that is in, so that a thread's hold is
                 * counted from about when it stopped, not from after the
                 * visits of the others. */
                while (r > 0)
                        r = proc_wait_one(p, 0, 0, NULL);
                if (r < 0)
                        goto finish;
        }
finish:
        /* Threads not probed yet (a budget spent, a busy stack, an error)
         * go on: one that stops later for our interrupt is resumed by the
         * event handler (no want_stop). */
        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];

                if (!t->want_stop)
                        continue;
                t->want_stop = false;
                if (t->state == PROC_THREAD_STOPPED)
                        (void)resume_kept(p, t);
        }
        if (ret_held_max_ns)
                *ret_held_max_ns = held_max;
        if (r == 0)
                return 0;
        if (r == -ESRCH || proc_gone(p)) {
                gone_message(p, err);
                return -ESRCH;
        }
        return r;
}

static int resume_kept(struct proc *p, struct proc_thread *t)
{
        int r;

        if (t->state != PROC_THREAD_STOPPED)
                return 0;
        /* Before signal_seen is cleared: a signal delivered meanwhile may
         * have caused the EINTR, which must then stay. */
        fixup_if_due(p, t);
        if (t->regs_dirty) {
                r = proc_store_regs(t->tid, &t->regs);
                if (r < 0 && r != -ESRCH)
                        return r;
        }
        t->want_stop = false;
        t->signal_seen = false;
        return resume_raw(p, t, 0);
}

int proc_resume_all(struct proc *p, struct errbuf *err)
{
        int r = 0;

        if (!p->attached)
                return -ENOTCONN;
        p->stopping = false;
        for (size_t i = 0; i < p->n_threads; i++) {
                int q = resume_kept(p, p->threads[i]);
                if (q < 0 && r == 0) {
                        r = q;
                        errbuf_set(err, "cannot resume thread %d of pid %d: %s",
                                   p->threads[i]->tid, p->pid, strerror(-q));
                }
        }
        compact_threads(p);
        return r;
}

int proc_stop_thread(struct proc *p, struct proc_thread *t, struct errbuf *err)
{
        uint64_t deadline = now_ns() + p->stop_timeout_ns;
        int r;

        if (!p->attached)
                return -ENOTCONN;
        t->want_stop = true;
        if (t->state == PROC_THREAD_STOPPED)
                return 0;
        if (!t->interrupt_sent && !t->new_thread) {
                r = interrupt_thread(t);
                if (r < 0)
                        goto fail;
        }
        while (t->state == PROC_THREAD_RUNNING) {
                uint64_t now = now_ns();
                if (now >= deadline) {
                        errbuf_set(err, "thread %d of pid %d did not stop within %.1f s", t->tid,
                                   p->pid, (double)p->stop_timeout_ns / 1e9);
                        r = -ETIMEDOUT;
                        goto fail;
                }
                r = proc_wait_one(p, deadline - now, 0, NULL);
                if (r < 0)
                        goto fail;
        }
        if (t->state == PROC_THREAD_GONE) {
                errbuf_set(err, "thread %d of pid %d exited", t->tid, p->pid);
                return -ESRCH;
        }
        return 0;
fail:
        t->want_stop = false;
        return r;
}

int proc_resume_thread(struct proc *p, struct proc_thread *t, struct errbuf *err)
{
        int r;

        if (!p->attached)
                return -ENOTCONN;
        r = resume_kept(p, t);
        if (r < 0)
                errbuf_set(err, "cannot resume thread %d of pid %d: %s", t->tid, p->pid,
                           strerror(-r));
        return r;
}

int proc_regs(struct proc *p, struct proc_thread *t, const struct arch_regs **ret)
{
        int r;

        if (t->state != PROC_THREAD_STOPPED)
                return -EBUSY;
        fixup_if_due(p, t);
        if (!t->regs_valid) {
                r = proc_fetch_regs(t->tid, &t->regs);
                if (r < 0)
                        return r;
                t->regs_valid = true;
                if (!t->saved_valid) {
                        t->saved_regs = t->regs;
                        t->saved_valid = true;
                }
        }
        *ret = &t->regs;
        return 0;
}

int proc_set_regs(struct proc *p, struct proc_thread *t, const struct arch_regs *regs)
{
        const struct arch_regs *cur;
        int r;

        r = proc_regs(p, t, &cur);
        if (r < 0)
                return r;
        t->regs = *regs;
        t->regs_dirty = true;
        return 0;
}

/* After an execve, our records no longer match the process: the thread
 * that executed took the leader's tid, the others vanished. Whatever task
 * of the pid is still traced by us is stopped (it reports the exec, or an
 * interrupt) and let go, so nothing stays traced behind us. */
static void sweep_after_exec(struct proc *p)
{
        for (int round = 0; round < 3; round++) {
                _cleanup_free_ pid_t *tids = NULL;
                size_t n = 0;
                bool left = false;

                if (procfs_tasks(p->pid, &tids, &n) < 0)
                        return;
                for (size_t i = 0; i < n; i++) {
                        pid_t tracer = 0;
                        int status;

                        if (procfs_tracer_pid(p->pid, tids[i], &tracer) < 0 ||
                            tracer != getpid())
                                continue;
                        if (ptrace(PTRACE_DETACH, tids[i], 0, 0) == 0)
                                continue;
                        /* Not in a stop: make it stop, then let go. */
                        ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
                        uint64_t deadline = now_ns() + 1000000000ull;
                        for (;;) {
                                pid_t w = waitpid(tids[i], &status, __WALL | WNOHANG);
                                if (w != 0 || now_ns() > deadline)
                                        break;
                                struct pollfd pfd = { .fd = p->sigchld_fd, .events = POLLIN };
                                poll(&pfd, 1, 5);
                        }
                        if (ptrace(PTRACE_DETACH, tids[i], 0, 0) < 0)
                                left = true;
                }
                if (!left)
                        return;
        }
        log_debug("pid %d: could not let go of every thread after exec", p->pid);
}

/* A thread we trace that is exiting cannot be detached (it is in no
 * ptrace-stop); until we reap it, it stays a zombie traced by us, and an
 * execve of its process waits for it (de_thread). Reap it, waiting a
 * little for it to finish dying. */
static void reap_exiting(struct proc *p, pid_t tid)
{
        uint64_t deadline = now_ns() + 500000000ull;

        for (;;) {
                siginfo_t si;
                pid_t tracer = 0;

                memset(&si, 0, sizeof(si));
                if (waitid(P_PID, (id_t)tid, &si, WEXITED | WNOHANG | __WALL) < 0)
                        return; /* not ours (any more) */
                if (si.si_pid == tid)
                        return; /* reaped */
                if (procfs_tracer_pid(p->pid, tid, &tracer) < 0 || tracer != getpid())
                        return;
                if (ptrace(PTRACE_DETACH, tid, 0, 0) == 0)
                        return; /* it was in a stop after all */
                if (now_ns() > deadline) {
                        log_debug("thread %d: still dying, left to the kernel", tid);
                        return;
                }
                struct pollfd pfd = { .fd = p->sigchld_fd, .events = POLLIN };
                poll(&pfd, 1, 5);
        }
}

/* Let go of one thread that is stopped (or gone): registers we changed
 * first. Returns 0 or the first error. */
static int detach_thread(struct proc *p, struct proc_thread *t)
{
        int r = 0;

        if (t->state == PROC_THREAD_GONE)
                return 0;
        fixup_if_due(p, t);
        if (t->state == PROC_THREAD_STOPPED && t->regs_dirty) {
                int q = proc_store_regs(t->tid, &t->regs);
                if (q < 0 && q != -ESRCH)
                        r = q;
        }
        if (ptrace(PTRACE_DETACH, t->tid, 0, 0) < 0) {
                if (errno == ESRCH)
                        reap_exiting(p, t->tid);
                else if (r == 0)
                        r = -errno;
        }
        t->state = PROC_THREAD_GONE;
        return r;
}

/* Running threads are let go one by one (PTRACE_DETACH needs a stopped
 * thread): each is interrupted and detached as soon as it stops, so no
 * thread waits for the others, as it would in a stop of them all. New
 * threads born meanwhile are kept at their first stop and let go too. */
static int detach_rolling(struct proc *p)
{
        uint64_t deadline = now_ns() + p->stop_timeout_ns;
        int r = 0, q;

        p->stopping = true; /* keep every stop until we detach it */
        for (size_t i = 0; i < p->n_threads; i++) {
                struct proc_thread *t = p->threads[i];

                if (t->state == PROC_THREAD_RUNNING && !t->interrupt_sent && !t->new_thread) {
                        q = interrupt_thread(t);
                        if (q < 0 && r == 0)
                                r = q;
                }
        }
        for (;;) {
                for (size_t i = 0; i < p->n_threads; i++)
                        if (p->threads[i]->state == PROC_THREAD_STOPPED) {
                                q = detach_thread(p, p->threads[i]);
                                if (q < 0 && r == 0)
                                        r = q;
                        }
                if (!first_running(p) || proc_gone(p))
                        return r;
                uint64_t now = now_ns();
                if (now >= deadline) {
                        log_debug("detach: thread %d of pid %d did not stop within %.1f s",
                                  first_running(p)->tid, p->pid,
                                  (double)p->stop_timeout_ns / 1e9);
                        return r ? r : -ETIMEDOUT;
                }
                q = proc_wait_one(p, deadline - now, 0, NULL);
                if (q < 0)
                        return r ? r : q;
        }
}

int proc_detach(struct proc *p)
{
        int r = 0;

        if (!p || !p->attached)
                return 0;
        /* Detaching resumes every thread: like resuming, it is fast only if
         * the resumed threads cannot preempt us (see sched.c). */
        struct proc_sched_saved sched;
        proc_sched_raise(&sched);
        if (!proc_gone(p))
                r = detach_rolling(p);
        /* What is left: gone, exiting, or did not stop in time. */
        for (size_t i = 0; i < p->n_threads; i++) {
                int q = detach_thread(p, p->threads[i]);
                if (q < 0 && r == 0)
                        r = q;
        }
        if (proc_gone(p))
                sweep_after_exec(p);
        proc_sched_restore(&sched);
        p->attached = false;
        p->stopping = false;
        compact_threads(p);
        log_debug("detached from pid %d", p->pid);
        return r;
}

void proc_free(struct proc *p)
{
        if (!p)
                return;
        proc_detach(p);
        for (size_t i = 0; i < p->n_threads; i++)
                free(p->threads[i]);
        free(p->threads);
        safe_close(p->mem_fd);
        safe_close(p->sigchld_fd);
        if (p->mask_saved)
                pthread_sigmask(SIG_SETMASK, &p->saved_mask, NULL);
        free(p);
}
