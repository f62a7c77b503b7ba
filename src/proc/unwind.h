/* Unwinding the stacks of a stopped process with libdw (CFI from
 * .eh_frame/.debug_frame), fast enough to run inside a stop window.
 *
 * Setup (proc_unwinder_new) reports every mapped object to libdw and is
 * slow the first time (opening files, ~1 ms): do it before stopping the
 * threads. Unwinding reads registers already fetched by src/proc (no
 * extra ptrace call) and memory through proc_read(); it never symbolises
 * (that costs ~360 µs per thread: do it after resuming, with src/elf).
 *
 * After mapping or unmapping memory in the target, call
 * proc_unwinder_refresh() before unwinding again.
 *
 * Code that is in no file mapping (a live patch's image, a JIT's code) is
 * unknown to the unwinder, so a stack through it ends there, incomplete,
 * unless the caller describes it with proc_unwinder_set_code(): its range
 * and where its .eh_frame is in the target. */
#pragma once

#include "proc/proc.h"

struct proc_frame {
        uint64_t pc;
        /* true when pc is exact (innermost frame, or a signal frame's
         * interrupted pc); false when pc is a return address, i.e. the
         * call instruction is just before it (look up pc - 1). */
        bool activation;
};

struct proc_stack {
        pid_t tid;
        struct proc_frame *frames;
        size_t n;
        /* 0 when the unwinder reached the outermost frame (its end was
         * recognised). Otherwise -errno and a reason: the stack could not
         * be unwound reliably past frames[n-1] (no CFI for a pc, unreadable
         * memory, depth limit). A consistency check treats such a stack as
         * unsafe. */
        int error;
        char reason[128];
};

void proc_stack_done(struct proc_stack *s);

struct proc_unwinder;

int proc_unwinder_new(struct proc *p, struct proc_unwinder **ret, struct errbuf *err);
int proc_unwinder_refresh(struct proc_unwinder *u, struct errbuf *err);
void proc_unwinder_free(struct proc_unwinder *u);

/* Code in the target that is not a file mapping, and the call frame
 * information that describes it. */
struct proc_code_region {
        uint64_t start, end; /* the code, [start, end) */
        /* Its .eh_frame (as a linker lays it out, FDE addresses relative
         * to where it is), anywhere in the target; 0/0 when there is
         * none, and then a pc in [start, end) has no unwind info. */
        uint64_t eh_frame_addr, eh_frame_size;
        const char *name; /* for messages and debugging; copied */
};

/* Replace the code regions the unwinder knows of besides the mapped
 * objects by regions[0..n), and refresh (as proc_unwinder_refresh()).
 * Regions must not overlap each other or a file mapping. Their .eh_frame
 * bytes are read from the target now and on every refresh (which keeps
 * the regions): call this, like a refresh, while the threads run, never
 * inside a stop window. An .eh_frame that cannot be read leaves its
 * region without unwind info (the unwind stops there, as it would
 * without the region). -EINVAL for a malformed region (err says which). */
int proc_unwinder_set_code(struct proc_unwinder *u, const struct proc_code_region *regions,
                           size_t n, struct errbuf *err);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct proc_unwinder *, proc_unwinder_free);

/* For tests and debugging only: which way proc_unwind_thread() goes. */
enum proc_unwind_path {
        PROC_UNWIND_AUTO,  /* the fast path, libdw for a stack it gives up on */
        PROC_UNWIND_LIBDW, /* libdw for every stack (LIVEUP_UNWIND=libdw) */
};

void proc_unwinder_set_path(struct proc_unwinder *u, enum proc_unwind_path path);

/* What the unwinder did since proc_unwinder_new(), for tests and
 * benchmarks. */
struct proc_unwind_stats {
        uint64_t fast_threads, fast_frames;   /* stacks the fast path unwound */
        uint64_t libdw_threads, libdw_frames; /* stacks libdw unwound */
        /* Stacks the fast path gave up on (counted in libdw_threads too):
         * a frame whose CFI it does not model, a failed read, anything
         * else (a register the caller's rules need is unknown, pc 0). */
        uint64_t gave_up_rule, gave_up_read, gave_up_other;
        /* Unwinds that started from a stack chunk read ahead in a window
         * (proc_stop_all_visit with `preload`). */
        uint64_t preloaded;
};

void proc_unwinder_stats(const struct proc_unwinder *u, struct proc_unwind_stats *ret);

/* Warm the unwinder's caches for a stack a later stop will likely show:
 * unwind from `regs` (a thread's registers at an earlier stop,
 * proc_thread.last_regs) against the memory as it is now, though the
 * thread runs. The result is thrown away; what stays is the CFI looked up
 * for each pc met, which depends on the pc alone, so a stale or torn
 * stack costs only wasted lookups. Call it outside stop windows: that is
 * its point (a fresh unwinder's first stack cost ~100 µs of CFI lookups
 * inside the window, the others ~10 µs each). */
void proc_unwinder_warm(struct proc_unwinder *u, const struct arch_regs *regs);

/* The same from pcs alone: look up the CFI of each of `pcs` (lookup pcs,
 * as proc_unwinder_cached_pcs() gives them: a return address minus one)
 * now, outside a stop window. For a caller that has no registers to
 * unwind from, but the pcs an earlier unwinder met, e.g. in an earlier
 * run of the tool (they are only a hint: a pc that is in no object, or
 * whose object changed, costs a wasted lookup). */
void proc_unwinder_warm_pcs(struct proc_unwinder *u, const uint64_t *pcs, size_t n);

/* Up to `max` lookup pcs that unwinds of stopped threads
 * (proc_unwind_thread()) met since the last refresh, in ret[]; returns
 * how many. Pcs only warmed are left out, so hints do not outlive the
 * stacks they came from. */
size_t proc_unwinder_cached_pcs(const struct proc_unwinder *u, uint64_t *ret, size_t max);

/* Room for reading ahead the stacks of `n` threads (4 KiB each) in a
 * stop window (proc_stop_all_visit() with this unwinder as `preload`),
 * made and touched now: call it before the window, never inside one.
 * Reading the stacks of the threads that stopped together in one
 * process_vm_readv saves ~1.5 µs a thread here. */
int proc_unwinder_reserve(struct proc_unwinder *u, size_t n);

/* Unwind stopped thread `t` (at most `max_frames`, 0: 256). Frames go to
 * *ret (owned by the caller: proc_stack_done()). Returns 0 even when the
 * unwind stopped early (see ret->error); < 0 only when nothing could be
 * read (thread not stopped, -ESRCH). */
int proc_unwind_thread(struct proc_unwinder *u, struct proc_thread *t, size_t max_frames,
                       struct proc_stack *ret);
