/* State shared by the files of src/proc (attach.c, memory.c, remote.c,
 * unwind.c). Not for use outside src/proc. */
#pragma once

#include "proc/proc.h"

#include <signal.h>

struct proc {
        pid_t pid;
        int mem_fd;         /* /proc/PID/mem, O_RDWR */
        int sigchld_fd;     /* signalfd for SIGCHLD */
        sigset_t saved_mask;
        bool mask_saved;
        bool attached;
        bool exited;        /* every thread gone */
        bool execed;        /* PTRACE_EVENT_EXEC seen */
        bool stopping;      /* inside stop_all: keep new threads stopped */
        bool was_group_stopped;
        bool reap_direct;   /* the tracer thread has no children: see reap_pending() */
        bool defer_fixup;   /* stopping in one blocking wait: see stop_blocking() */

        struct proc_thread **threads; /* pointers stay valid as it grows */
        size_t n_threads, cap_threads;

        uint64_t syscall_insn; /* address of a syscall instruction, 0 unknown */
        unsigned n_injected;   /* remote syscalls and calls started */
        uint64_t stop_timeout_ns; /* how long stopping may take */
};

/* Wait for the next event of a thread of `p` and handle it, for at most
 * `timeout_ns` (0: only what is pending). Returns 1 when an event was
 * handled, 0 on timeout, < 0 on error. If `for_tid` is non-zero, a stop of
 * that thread in a state the generic handler does not know (syscall
 * stops) is not resumed: *ret_status gets it and 2 is returned. */
int proc_wait_one(struct proc *p, uint64_t timeout_ns, pid_t for_tid, int *ret_status);

/* Read the top of the stack (from sp to the end of its page) of every
 * stopped thread not visited yet (proc_stop_all_visit) in one
 * process_vm_readv, up to the room of
 * proc_unwinder_reserve(), for the next proc_unwind_thread() of each. A
 * stack that cannot be read so is read when unwound. */
struct proc_unwinder;
void proc_unwinder_preload(struct proc_unwinder *u);

/* Fetch/store registers of a stopped thread with PTRACE_GETREGSET/SETREGSET. */
int proc_fetch_regs(pid_t tid, struct arch_regs *ret);
int proc_store_regs(pid_t tid, const struct arch_regs *regs);

struct proc_thread *proc_add_thread(struct proc *p, pid_t tid);
