/* Tests of src/proc/unwind.c against real processes.
 *
 * The victims come from tests/victims (victim-chain at -O0 with frame
 * pointers, victim-chain-o2 at -O2 without them, victim-n with N
 * threads); one more victim, whose stack pointer is garbage, is a forked
 * child of the test itself. Every test attaches, stops, unwinds, resumes
 * and symbolises with src/elf only after resuming, as the tool does, then
 * checks the frames by function name, innermost first.
 *
 * The fast_path_matches_libdw_* tests stop every victim many times and
 * unwind each thread twice, with the fast path and with libdw alone
 * (proc_unwinder_set_path), and require the same result; they print how
 * many stacks the fast path took and why it gave up on the others.
 * More forked victims serve them: threads inside signal handlers, threads
 * in the vdso, a thread put at a PLT stub.
 *
 * Per-thread unwind cost (first and warm) is printed as a TAP comment by
 * the n16_* tests; it is a figure, not a pass/fail bound. */
#include "tap.h"

#include "base/procfs.h"
#include "base/util.h"
#include "elf/elf.h"
#include "livepatch/link.h"
#include "proc/proc.h"
#include "proc/unwind.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#ifndef VICTIM_DIR
#define VICTIM_DIR "."
#endif

/* ---- Victims ------------------------------------------------------------ */

struct victim {
        pid_t pid;
        int in_fd;  /* its stdin */
        int out_fd; /* its stdout */
};

static const char *victim_dir(void)
{
        const char *d = getenv("LIVEUP_VICTIM_DIR");

        return d && *d ? d : VICTIM_DIR;
}

/* Read the victim's stdout until "ready\n" (10 s at most). */
static void wait_ready(struct victim *v)
{
        char buf[256];
        size_t len = 0;
        uint64_t deadline = now_ns() + 10ull * 1000000000ull;

        for (;;) {
                struct pollfd pfd = { .fd = v->out_fd, .events = POLLIN };
                int64_t left = (int64_t)(deadline - now_ns());
                ssize_t n;

                CHECK(left > 0);
                if (poll(&pfd, 1, (int)(left / 1000000) + 1) <= 0)
                        continue;
                n = read(v->out_fd, buf + len, sizeof(buf) - 1 - len);
                CHECK(n > 0);
                len += (size_t)n;
                buf[len] = 0;
                if (strstr(buf, "ready\n"))
                        return;
                CHECK(len < sizeof(buf) - 1);
        }
}

static void victim_start(const char *name, char *const args[], struct victim *ret)
{
        char path[4096];
        char *argv[8] = { path };
        int in[2], out[2];
        pid_t pid;

        snprintf(path, sizeof(path), "%s/%s", victim_dir(), name);
        if (access(path, X_OK) < 0) {
                char why[4200];

                snprintf(why, sizeof(why), "victim %s not built", path);
                tap_skip(why);
        }
        for (size_t i = 0; args && args[i] && i < 6; i++)
                argv[i + 1] = args[i];
        CHECK(pipe2(in, O_CLOEXEC) == 0);
        CHECK(pipe2(out, O_CLOEXEC) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                /* Dies with the test, even when a check fails first. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                execv(path, argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        *ret = (struct victim){ .pid = pid, .in_fd = in[1], .out_fd = out[0] };
        wait_ready(ret);
}

/* Ask the victim to quit ("quit" on stdin) and check that it exits 0:
 * it was left running and unharmed. */
static void victim_quit_ok(struct victim *v)
{
        int status = 0;

        CHECK(write(v->in_fd, "quit\n", 5) == 5);
        CHECK(waitpid(v->pid, &status, 0) == v->pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(v->in_fd);
        close(v->out_fd);
}

static void victim_kill(struct victim *v)
{
        kill(v->pid, SIGKILL);
        waitpid(v->pid, NULL, 0);
        close(v->in_fd);
        close(v->out_fd);
}

/* ---- Helpers ------------------------------------------------------------ */

static struct proc_thread *thread_named(struct proc *p, const char *name)
{
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                char buf[64];

                if (procfs_thread_name(proc_pid(p), t->tid, buf, sizeof(buf)) == 0 &&
                    strcmp(buf, name) == 0)
                        return t;
        }
        return NULL;
}

/* Symbolised frames of a stack: names[i] is the function of frame i, or
 * "??" (strings owned by ep). */
static void symbolise(struct elf_proc *ep, const struct proc_stack *s, const char **names,
                      const char **objects)
{
        for (size_t i = 0; i < s->n; i++) {
                const struct proc_frame *f = &s->frames[i];
                struct elf_location loc = {};

                names[i] = "??";
                objects[i] = "??";
                if (elf_proc_locate(ep, f->pc - (f->activation ? 0 : 1), &loc) < 0)
                        continue;
                if (loc.function)
                        names[i] = loc.function;
                if (loc.object)
                        objects[i] = loc.object;
        }
}

static void dump(const char *what, const struct proc_stack *s, const char **names,
                 const char **objects)
{
        printf("# %s (tid %d): %zu frames, error %d%s%s\n", what, (int)s->tid, s->n, s->error,
               s->error ? ": " : "", s->error ? s->reason : "");
        for (size_t i = 0; i < s->n; i++)
                printf("#   #%zu 0x%016llx %s %s%s\n", i, (unsigned long long)s->frames[i].pc,
                       names[i], objects[i], s->frames[i].activation ? " (activation)" : "");
}

/* Index of the first frame where want[0..nw) start, consecutively; -1
 * when not there. */
static long find_sequence(const char **names, size_t n, const char *const *want, size_t nw)
{
        for (size_t i = 0; i + nw <= n; i++) {
                size_t k = 0;

                while (k < nw && strcmp(names[i + k], want[k]) == 0)
                        k++;
                if (k == nw)
                        return (long)i;
        }
        return -1;
}

/* Frame by frame (struct proc_frame has padding: no memcmp). */
static bool same_stack(const struct proc_stack *a, const struct proc_stack *b)
{
        if (a->n != b->n || a->error != b->error)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (a->frames[i].pc != b->frames[i].pc ||
                    a->frames[i].activation != b->frames[i].activation)
                        return false;
        return true;
}

static bool contains(const char **names, size_t n, const char *want)
{
        return find_sequence(names, n, &want, 1) >= 0;
}

/* ---- Known call chains, at -O0 and at -O2 without frame pointers -------- */

static void check_chains(const char *victim_name)
{
        static const char *const busy_chain[] = { "chain_c", "chain_b", "chain_a", "busy_main" };
        static const char *const blocked_chain[] = { "chain_z", "chain_y", "chain_x",
                                                     "blocked_main" };
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        _cleanup_(elf_proc_freep) struct elf_proc *ep = NULL;
        struct proc_stack busy = {}, blocked = {};
        struct proc_thread *tb, *tk;
        struct errbuf err = {};
        const char *bn[256], *bo[256], *kn[256], *ko[256];
        struct victim v;
        long i;

        victim_start(victim_name, NULL, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        tb = thread_named(p, "chain-busy");
        tk = thread_named(p, "chain-blocked");
        CHECK(tb && tk);

        CHECK_OK(proc_stop_all(p, &err));
        CHECK_OK(proc_unwind_thread(u, tb, 0, &busy));
        CHECK_OK(proc_unwind_thread(u, tk, 0, &blocked));
        CHECK_OK(proc_resume_all(p, &err));

        CHECK_OK(elf_proc_new(v.pid, &ep, &err));
        CHECK(busy.n > 0 && busy.n <= 256 && blocked.n > 0 && blocked.n <= 256);
        symbolise(ep, &busy, bn, bo);
        symbolise(ep, &blocked, kn, ko);
        dump("chain-busy", &busy, bn, bo);
        dump("chain-blocked", &blocked, kn, ko);

        /* Busy: spinning in chain_c itself, the chain above it in order,
         * and the unwind reached the outermost frame (clone3). */
        CHECK_STREQ(bn[0], "chain_c");
        CHECK(busy.frames[0].activation);
        CHECK(find_sequence(bn, busy.n, busy_chain, ELEMENTSOF(busy_chain)) == 0);
        CHECK(busy.error == 0);
        CHECK(contains(bn, busy.n, "start_thread"));
        for (size_t j = 1; j < busy.n; j++)
                CHECK(!busy.frames[j].activation);

        /* Blocked: innermost frames in libc (read), then the chain. */
        CHECK(strstr(ko[0], "libc.so") != NULL);
        i = find_sequence(kn, blocked.n, blocked_chain, ELEMENTSOF(blocked_chain));
        CHECK(i >= 1);
        for (long j = 0; j < i; j++)
                CHECK(strstr(ko[j], "libc.so") != NULL);
        CHECK(blocked.error == 0);
        CHECK(contains(kn, blocked.n, "start_thread"));

        proc_stack_done(&busy);
        proc_stack_done(&blocked);
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_quit_ok(&v);
}

TEST(chains_o0_frame_pointers)
{
        check_chains("victim-chain");
}

TEST(chains_o2_no_frame_pointers)
{
        check_chains("victim-chain-o2");
}

/* ---- Every thread of a 16-thread victim --------------------------------- */

static void check_n16(const char *mode)
{
        enum { N = 16 };
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        _cleanup_(elf_proc_freep) struct elf_proc *ep = NULL;
        struct proc_stack stacks[N] = {};
        struct errbuf err = {};
        char *args[] = { "16", (char *)mode, NULL };
        uint64_t t0, cold_ns, warm_ns = UINT64_MAX;
        struct victim v;
        size_t n;

        victim_start("victim-n", args, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        n = proc_n_threads(p);
        CHECK(n == N);

        CHECK_OK(proc_stop_all(p, &err));
        /* Registers are fetched once per stop: fetch them before timing, so
         * the figure is the unwind alone. */
        for (size_t i = 0; i < n; i++) {
                const struct arch_regs *r;
                CHECK_OK(proc_regs(p, proc_thread_at(p, i), &r));
        }
        t0 = now_ns();
        for (size_t i = 0; i < n; i++)
                CHECK_OK(proc_unwind_thread(u, proc_thread_at(p, i), 0, &stacks[i]));
        cold_ns = now_ns() - t0;
        for (int rep = 0; rep < 5; rep++) {
                struct proc_stack again[N] = {};

                t0 = now_ns();
                for (size_t i = 0; i < n; i++)
                        CHECK_OK(proc_unwind_thread(u, proc_thread_at(p, i), 0, &again[i]));
                warm_ns = MIN(warm_ns, now_ns() - t0);
                for (size_t i = 0; i < n; i++) {
                        /* Same stop, same stack. */
                        CHECK(same_stack(&again[i], &stacks[i]));
                        proc_stack_done(&again[i]);
                }
        }
        CHECK_OK(proc_resume_all(p, &err));
        printf("# unwind of %zu %s threads: first %.1f µs/thread, warm %.1f µs/thread\n", n, mode,
                       cold_ns / 1000.0 / n, warm_ns / 1000.0 / n);

        CHECK_OK(elf_proc_new(v.pid, &ep, &err));
        for (size_t i = 0; i < n; i++) {
                const char *names[256], *objects[256];

                CHECK(stacks[i].n > 0 && stacks[i].n <= 256);
                symbolise(ep, &stacks[i], names, objects);
                /* Every thread runs thread_loop, except that the main
                 * thread prints "ready" just before it enters it, so it
                 * may still be in main's own code. */
                const char *want = stacks[i].tid == v.pid ? "main" : "thread_loop";

                if (stacks[i].error != 0 || !contains(names, stacks[i].n, want))
                        dump("victim-n thread", &stacks[i], names, objects);
                CHECK(stacks[i].error == 0);
                CHECK(contains(names, stacks[i].n, want));
                proc_stack_done(&stacks[i]);
        }
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_kill(&v);
}

/* Stacks read ahead in a window (proc_stop_all_visit with a preload
 * unwinder): each thread unwound from its chunk read with the others gives
 * the same stack as a second unwind in the same stop that reads its own. */
struct preload_visit {
        struct proc_unwinder *u;
        struct proc_stack stacks[16];
        size_t n;
};

static int preload_visit(struct proc *p, struct proc_thread *t, void *userdata)
{
        struct preload_visit *v = userdata;

        if (v->n >= 16)
                return -E2BIG;
        return proc_unwind_thread(v->u, t, 0, &v->stacks[v->n++]);
}

/* victim-n with 16 busy threads, attached, an unwinder with room to read
 * every stack ahead. */
static void attach_reserved(struct victim *v, struct proc **p, struct proc_unwinder **u)
{
        char *args[] = { "16", "busy", NULL };
        struct errbuf err = {};

        victim_start("victim-n", args, v);
        CHECK_OK(proc_attach(v->pid, NULL, p, &err));
        CHECK_OK(proc_unwinder_new(*p, u, &err));
        CHECK_OK(proc_unwinder_reserve(*u, proc_n_threads(*p)));
}

TEST(n16_busy_stacks_read_ahead_are_the_same)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct preload_visit pv = {};
        struct proc_unwind_stats st;
        struct errbuf err = {};
        struct victim v;

        attach_reserved(&v, &p, &u);
        pv.u = u;
        CHECK_OK(proc_stop_all_visit(p, preload_visit, &pv, u, &err));
        CHECK(pv.n == proc_n_threads(p));
        proc_unwinder_stats(u, &st);
        /* Every thread's unwind began from the chunk read ahead for it. */
        CHECK(st.preloaded == pv.n);
        for (size_t i = 0; i < pv.n; i++) {
                struct proc_stack again = {};
                struct proc_thread *t = proc_thread_by_tid(p, pv.stacks[i].tid);

                CHECK(t != NULL);
                CHECK_OK(proc_unwind_thread(u, t, 0, &again));
                CHECK(pv.stacks[i].n > 3 && pv.stacks[i].error == 0);
                CHECK(same_stack(&again, &pv.stacks[i]));
                proc_stack_done(&again);
                proc_stack_done(&pv.stacks[i]);
        }
        proc_unwinder_stats(u, &st);
        CHECK(st.preloaded == pv.n); /* a chunk is used once */
        CHECK_OK(proc_resume_all(p, &err));
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_kill(&v);
}

/* A window abandoned at its first visit (a busy stack) leaves chunks read
 * ahead for threads never visited: the next stop must not take them for
 * its stacks (each chunk belongs to one stop of its thread). */
static int busy_at_first(struct proc *p, struct proc_thread *t, void *userdata)
{
        return -EBUSY;
}

TEST(abandoned_window_leaves_no_stale_stack)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_unwind_stats st;
        struct errbuf err = {};
        struct victim v;

        attach_reserved(&v, &p, &u);
        CHECK_ERR(proc_stop_all_visit(p, busy_at_first, NULL, u, &err), EBUSY);
        /* Every thread runs again; stop them once more (no read-ahead). */
        CHECK_OK(proc_stop_all(p, &err));
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_stack s = {};

                CHECK_OK(proc_unwind_thread(u, proc_thread_at(p, i), 0, &s));
                CHECK(s.error == 0 && s.n > 3);
                proc_stack_done(&s);
        }
        proc_unwinder_stats(u, &st);
        CHECK(st.preloaded == 0);
        CHECK_OK(proc_resume_all(p, &err));
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_kill(&v);
}

TEST(n16_idle_every_thread_unwinds)
{
        check_n16("idle");
}

TEST(n16_busy_every_thread_unwinds)
{
        check_n16("busy");
}

/* ---- Limits, errors, refresh -------------------------------------------- */

TEST(max_frames_truncates_with_e2big)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_stack s = {};
        struct proc_thread *t;
        struct errbuf err = {};
        struct victim v;

        victim_start("victim-chain", NULL, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        t = thread_named(p, "chain-busy");
        CHECK(t);
        CHECK_OK(proc_stop_all(p, &err));
        CHECK_OK(proc_unwind_thread(u, t, 2, &s));
        CHECK_OK(proc_resume_all(p, &err));
        CHECK(s.n == 2);
        CHECK(s.error == -E2BIG);
        CHECK(s.reason[0] != 0);
        proc_stack_done(&s);

        /* A running thread cannot be unwound. */
        CHECK_ERR(proc_unwind_thread(u, t, 0, &s), EBUSY);

        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_quit_ok(&v);
}

/* The pcs an unwind met can warm another unwinder (a later run of the
 * tool, through the registry): only pcs met by unwinds of stopped threads
 * are given out, not pcs only warmed; the warmed unwinder unwinds the same
 * stack to the same frames. */
TEST(cached_pcs_warm_another_unwinder)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL, *w = NULL;
        struct proc_stack a = {}, b = {};
        struct proc_thread *t;
        struct errbuf err = {};
        uint64_t pcs[256], again[256];
        size_t n, m;
        struct victim v;

        victim_start("victim-chain-o2", NULL, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        CHECK(proc_unwinder_cached_pcs(u, pcs, ELEMENTSOF(pcs)) == 0);
        t = thread_named(p, "chain-blocked");
        CHECK(t);
        CHECK_OK(proc_stop_all(p, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &a));
        CHECK_OK(proc_resume_all(p, &err));
        CHECK(a.error == 0 && a.n > 2);
        n = proc_unwinder_cached_pcs(u, pcs, ELEMENTSOF(pcs));
        CHECK(n >= a.n - 1 && n <= a.n);
        /* Each frame's lookup pc (a return address minus one) is there. */
        for (size_t i = 0; i < a.n; i++) {
                uint64_t key = a.frames[i].pc - (a.frames[i].activation ? 0 : 1);
                bool found = false;
                for (size_t k = 0; k < n; k++)
                        found |= pcs[k] == key;
                CHECK(found);
        }
        CHECK(proc_unwinder_cached_pcs(u, pcs, 1) == 1);
        n = proc_unwinder_cached_pcs(u, pcs, ELEMENTSOF(pcs));

        CHECK_OK(proc_unwinder_new(p, &w, &err));
        proc_unwinder_warm_pcs(w, pcs, n);
        /* And a pc in no object costs only a lookup. */
        proc_unwinder_warm_pcs(w, (uint64_t[]){ 8 }, 1);
        CHECK(proc_unwinder_cached_pcs(w, again, ELEMENTSOF(again)) == 0);
        CHECK_OK(proc_stop_all(p, &err));
        CHECK_OK(proc_unwind_thread(w, t, 0, &b));
        CHECK_OK(proc_resume_all(p, &err));
        CHECK(b.error == 0 && b.n == a.n);
        for (size_t i = 0; i < a.n; i++)
                CHECK(b.frames[i].pc == a.frames[i].pc);
        m = proc_unwinder_cached_pcs(w, again, ELEMENTSOF(again));
        CHECK(m == n);
        proc_stack_done(&a);
        proc_stack_done(&b);
        u = (proc_unwinder_free(u), NULL);
        w = (proc_unwinder_free(w), NULL);
        CHECK_OK(proc_detach(p));
        victim_quit_ok(&v);
}

TEST(refresh_keeps_unwinding)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_stack a = {}, b = {};
        struct proc_thread *t;
        struct errbuf err = {};
        uint64_t mapped = 0;
        struct victim v;

        victim_start("victim-chain-o2", NULL, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        t = thread_named(p, "chain-blocked");
        CHECK(t);
        CHECK_OK(proc_stop_all(p, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &a));
        /* Change the maps (as a patch load does), refresh, unwind again:
         * the result is the same complete stack. */
        CHECK_OK(proc_mmap(p, 0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                           0, &mapped, &err));
        CHECK_OK(proc_unwinder_refresh(u, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &b));
        CHECK_OK(proc_munmap(p, mapped, 1 << 16, &err));
        CHECK_OK(proc_unwinder_refresh(u, &err));
        CHECK_OK(proc_resume_all(p, &err));

        CHECK(a.error == 0 && b.error == 0);
        CHECK(a.n > 3);
        CHECK(same_stack(&a, &b));
        proc_stack_done(&a);
        proc_stack_done(&b);
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_quit_ok(&v);
}

/* Victims that no compiler would produce, forked from the test: a second
 * thread that spins where an unwinder cannot follow it. */
enum odd_mode {
        ODD_GARBAGE_STACK, /* stack and frame pointers at unmapped memory */
        ODD_ANON_CODE,     /* running in anonymous memory (JIT, patch code) */
        ODD_ANON_CODE_FP,  /* the same, called, with a frame-pointer frame */
};

#define GARBAGE_SP 0x1000

static atomic_int odd_started;
static void *odd_code;
static uint64_t odd_pc; /* where the odd thread loops */

static void *odd_main(void *arg)
{
        enum odd_mode mode = (enum odd_mode)(intptr_t)arg;

        atomic_store(&odd_started, 1);
#if defined(__x86_64__)
        if (mode == ODD_GARBAGE_STACK)
                __asm__ volatile("mov %0, %%rsp\n\t"
                                 "mov %0, %%rbp\n\t"
                                 "1: jmp 1b\n\t"
                                 :
                                 : "i"(GARBAGE_SP)
                                 : "memory");
        else if (mode == ODD_ANON_CODE)
                __asm__ volatile("xor %%ebp, %%ebp\n\t"
                                 "jmp *%0\n\t"
                                 :
                                 : "r"(odd_code)
                                 : "memory");
        else
                __asm__ volatile("call *%0\n\t" : : "r"(odd_code) : "memory");
#endif
        return NULL;
}

/* Fork a victim whose second thread runs fn(arg) (and sets odd_started
 * when it has begun), attach, and stop it once that thread is where
 * in_place() says (it may be a few instructions short at first); up to
 * `tries` stops. */
static pid_t in_place_victim_start(void *(*fn)(void *), void *arg, int tries,
                                   bool (*in_place)(struct proc *, const struct arch_regs *),
                                   const char *what, struct proc **ret_p,
                                   struct proc_thread **ret_t)
{
        struct errbuf err = {};
        struct proc *p = NULL;
        int ready[2];
        char c;
        pid_t pid;

        CHECK(pipe2(ready, O_CLOEXEC) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                pthread_t th;

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (pthread_create(&th, NULL, fn, arg) != 0)
                        _exit(1);
                while (!atomic_load(&odd_started))
                        ;
                (void)!write(ready[1], "r", 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        CHECK(read(ready[0], &c, 1) == 1);
        close(ready[0]);

        CHECK_OK(proc_attach(pid, NULL, &p, &err));
        CHECK(proc_n_threads(p) == 2);
        for (int k = 0; k < tries; k++) {
                struct proc_thread *t = proc_thread_at(p, 0)->tid == pid ? proc_thread_at(p, 1)
                                                                          : proc_thread_at(p, 0);
                const struct arch_regs *r;

                CHECK_OK(proc_stop_all(p, &err));
                CHECK_OK(proc_regs(p, t, &r));
                if (in_place(p, r)) {
                        *ret_p = p;
                        *ret_t = t;
                        return pid;
                }
                CHECK_OK(proc_resume_all(p, &err));
        }
        fprintf(stderr, "# %s never got in place\n", what);
        CHECK(!"the victim's thread never got in place");
        return -1;
}

static enum odd_mode odd_place_mode;

static bool odd_in_place(struct proc *p, const struct arch_regs *r)
{
        return odd_place_mode == ODD_GARBAGE_STACK ? arch_regs_sp(r) == GARBAGE_SP
                                                   : arch_regs_pc(r) == odd_pc;
}

/* Fork the odd victim, attach, and stop it once its second thread is in
 * place (it may be a few instructions short of it at first). */
static pid_t odd_start(enum odd_mode mode, struct proc **ret_p, struct proc_thread **ret_t)
{
#if !defined(__x86_64__)
        tap_skip("the odd victims are x86-64 assembly");
#endif
        if (mode != ODD_GARBAGE_STACK) {
                /* jmp . */
                static const uint8_t loop[] = { 0xeb, 0xfe };
                /* push %rbp; mov %rsp,%rbp; jmp . */
                static const uint8_t fp_loop[] = { 0x55, 0x48, 0x89, 0xe5, 0xeb, 0xfe };

                odd_code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                CHECK(odd_code != MAP_FAILED);
                if (mode == ODD_ANON_CODE)
                        memcpy(odd_code, loop, sizeof(loop));
                else
                        memcpy(odd_code, fp_loop, sizeof(fp_loop));
                odd_pc = (uint64_t)(uintptr_t)odd_code + (mode == ODD_ANON_CODE ? 0 : 4);
        }
        odd_place_mode = mode;
        return in_place_victim_start(odd_main, (void *)(intptr_t)mode, 100, odd_in_place,
                                     "the odd thread", ret_p, ret_t);
}

static void odd_unwind(enum odd_mode mode, struct proc_stack *ret)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_thread *t = NULL;
        struct errbuf err = {};
        pid_t pid;

        pid = odd_start(mode, &p, &t);
        /* Set up while stopped: fine for a test, and the maps include the
         * code page. */
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, ret));
        CHECK_OK(proc_resume_all(p, &err));
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* The unwind must stop with a reason, never invent frames or pass for a
 * complete stack. (libdw itself reports success here: a failed read of
 * the return address looks to it like the end of the stack.) */
TEST(garbage_stack_stops_with_reason)
{
        struct proc_stack s = {};

        odd_unwind(ODD_GARBAGE_STACK, &s);
        printf("# garbage stack: %zu frames, error %d: %s\n", s.n, s.error, s.reason);
        CHECK(s.n >= 1 && s.n < 4);
        CHECK(s.error == -EFAULT);
        CHECK(s.reason[0] != 0);
        proc_stack_done(&s);
}

TEST(code_outside_objects_stops_with_reason)
{
        struct proc_stack s = {};

        odd_unwind(ODD_ANON_CODE, &s);
        printf("# anonymous code: %zu frames, error %d: %s\n", s.n, s.error, s.reason);
        CHECK(s.n >= 1);
        CHECK(s.frames[0].pc == odd_pc);
        CHECK(s.error == -ENOENT);
        CHECK(s.reason[0] != 0);
        proc_stack_done(&s);
}

/* libdw unwinds code without CFI by following the frame pointer, and
 * from the caller on it has CFI again and reaches clone3: libdw reports
 * a complete stack. A guess is not a reliable unwind: the stack must end
 * at the frame without CFI. */
TEST(frame_pointer_guess_is_not_complete)
{
        struct proc_stack s = {};

        odd_unwind(ODD_ANON_CODE_FP, &s);
        printf("# anonymous code with a frame pointer: %zu frames, error %d: %s\n", s.n,
               s.error, s.reason);
        CHECK(s.n == 1);
        CHECK(s.frames[0].pc == odd_pc);
        CHECK(s.error == -ENOENT);
        proc_stack_done(&s);
}

/* ---- Code regions: patch code in anonymous memory ------------------------ */

/* A patch, compiled with gcc as `liveup build` does, linked with lp_link
 * into an anonymous mapping of the test (the forked victim inherits it at
 * the same address): code that libdw knows nothing of, with an .eh_frame
 * that lp_link relocated for that address. patch_calls() calls back into
 * the test (host_spin), so its frame is a caller's; patch_loop() spins
 * itself; patch_nocfi is assembly without CFI; patch_sigframe calls
 * host_spin with CFI as plain as any, but marked as a signal frame (CIE
 * augmentation "S"), which changes how an unwinder treats its caller. */
static const char patch_src[] =
        "extern void host_spin(void);\n"
        "volatile int patch_counter;\n"
        "void patch_calls(void) { host_spin(); patch_counter++; }\n"
        "void patch_loop(void) { for (;;) patch_counter++; }\n"
        "__asm__(\".text\\n.globl patch_nocfi\\n.type patch_nocfi, @function\\n\"\n"
        "        \"patch_nocfi: jmp patch_nocfi\\n.size patch_nocfi, .-patch_nocfi\\n\");\n"
        "__asm__(\".text\\n.globl patch_sigframe\\n.type patch_sigframe, @function\\n\"\n"
        "        \"patch_sigframe:\\n.cfi_startproc\\n.cfi_signal_frame\\n\"\n"
        "        \"sub $8, %rsp\\n.cfi_def_cfa_offset 16\\ncall host_spin\\n\"\n"
        "        \"add $8, %rsp\\n.cfi_def_cfa_offset 8\\nret\\n.cfi_endproc\\n\"\n"
        "        \".size patch_sigframe, .-patch_sigframe\\n\");\n";

static atomic_int host_spinning;

void host_spin(void);
__attribute__((noipa)) void host_spin(void)
{
        atomic_store(&host_spinning, 1);
        for (;;)
                __asm__ volatile("" ::: "memory");
}

struct patch {
        struct lp_image *img;
        uint64_t base;
        uint64_t calls, calls_size, loop, loop_size, nocfi, sigframe;
};

static int patch_resolve(void *userdata, const char *name, uint64_t *ret, struct errbuf *err)
{
        if (strcmp(name, "host_spin") != 0) {
                errbuf_set(err, "symbol '%s' not found", name);
                return -ENOENT;
        }
        *ret = (uint64_t)(uintptr_t)host_spin;
        return 0;
}

static void patch_load(struct patch *ret)
{
        char dir[] = "/tmp/liveup-test-unwind.XXXXXX", src[64], obj[64], cmd[256];
        _cleanup_free_ char *o = NULL;
        struct errbuf err = {};
        size_t osize = 0, size;
        void *mem;
        FILE *f;

        CHECK(mkdtemp(dir));
        snprintf(src, sizeof(src), "%s/patch.c", dir);
        snprintf(obj, sizeof(obj), "%s/patch.o", dir);
        f = fopen(src, "we");
        CHECK(f);
        CHECK(fputs(patch_src, f) >= 0);
        CHECK(fclose(f) == 0);
        /* The flags of `liveup build --replace` that matter here. */
        snprintf(cmd, sizeof(cmd),
                 "gcc -c -O2 -fPIC -ffunction-sections -fdata-sections -fno-common "
                 "-fasynchronous-unwind-tables -o %s %s", obj, src);
        CHECK(system(cmd) == 0);
        CHECK(read_file_str(obj, &o, &osize) >= 0);
        unlink(src);
        unlink(obj);
        rmdir(dir);

        CHECK_OK(lp_link_size(o, osize, &size, NULL, NULL, &err));
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(mem != MAP_FAILED);
        *ret = (struct patch){ .base = (uint64_t)(uintptr_t)mem };
        CHECK_OK(lp_link(o, osize, ret->base, patch_resolve, NULL, &ret->img, &err));
        CHECK(ret->img->eh_frame_size > 0);
        memcpy(mem, ret->img->buf, ret->img->size);
        CHECK(mprotect(mem, ret->img->text_size, PROT_READ | PROT_EXEC) == 0);
        CHECK_OK(lp_image_lookup(ret->img, "patch_calls", &ret->calls, &ret->calls_size));
        CHECK_OK(lp_image_lookup(ret->img, "patch_loop", &ret->loop, &ret->loop_size));
        CHECK_OK(lp_image_lookup(ret->img, "patch_nocfi", &ret->nocfi, NULL));
        CHECK_OK(lp_image_lookup(ret->img, "patch_sigframe", &ret->sigframe, NULL));
}

static struct proc_code_region patch_region(const struct patch *pt, bool with_cfi)
{
        return (struct proc_code_region){
                .start = pt->base,
                .end = pt->base + pt->img->text_size,
                .eh_frame_addr = with_cfi ? pt->base + pt->img->eh_frame_off : 0,
                .eh_frame_size = with_cfi ? pt->img->eh_frame_size : 0,
                .name = "test-patch",
        };
}

static uint64_t patch_entry;

static void *patch_thread(void *arg)
{
        atomic_store(&odd_started, 1);
        ((void (*)(void))(uintptr_t)patch_entry)();
        return NULL;
}

/* Fork a victim whose second thread calls `entry` in the patch, attach,
 * and stop it once that thread is where in_place() says. */
static bool (*patch_in_place)(struct proc *, uint64_t pc);

static bool patch_in_place_regs(struct proc *p, const struct arch_regs *r)
{
        return patch_in_place(p, arch_regs_pc(r));
}

static pid_t patch_victim_start(uint64_t entry, bool (*in_place)(struct proc *, uint64_t pc),
                                struct proc **ret_p, struct proc_thread **ret_t)
{
        patch_entry = entry;
        patch_in_place = in_place;
        return in_place_victim_start(patch_thread, NULL, 1000, patch_in_place_regs,
                                     "the patch thread", ret_p, ret_t);
}

static struct patch the_patch;

static bool in_host_spin(struct proc *p, uint64_t pc)
{
        int v = 0;

        /* Set by host_spin() just before its loop: same address in the
         * forked victim. */
        CHECK_OK(proc_read(p, (uint64_t)(uintptr_t)&host_spinning, &v, sizeof(v)));
        return v == 1;
}

static bool in_patch_loop(struct proc *p, uint64_t pc)
{
        return pc >= the_patch.loop && pc < the_patch.loop + the_patch.loop_size;
}

static bool at_patch_nocfi(struct proc *p, uint64_t pc)
{
        return pc == the_patch.nocfi;
}

static void patch_victim_end(struct proc **p, struct proc_unwinder **u, pid_t pid)
{
        struct errbuf err = {};

        CHECK_OK(proc_resume_all(*p, &err));
        *u = (proc_unwinder_free(*u), NULL);
        CHECK_OK(proc_detach(*p));
        *p = (proc_free(*p), NULL);
        /* It ran on, unharmed, until now. */
        CHECK(waitpid(pid, NULL, WNOHANG) == 0);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static bool pc_in(const struct proc_frame *f, uint64_t start, uint64_t size)
{
        uint64_t pc = f->pc - (f->activation ? 0 : 1);

        return pc >= start && pc < start + size;
}

/* A thread whose stack passes through patch code (patch_calls, which
 * called host_spin): without the region the unwind stops there, in no
 * object file; with it the stack is complete, through the patch frame to
 * clone3; refreshing keeps the region; taking its CFI away, or the region
 * away, makes the stack incomplete again, and giving them back complete. */
TEST(code_region_makes_patch_frames_reliable)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        _cleanup_(elf_proc_freep) struct elf_proc *ep = NULL;
        struct proc_code_region with = {}, without = {};
        struct proc_stack a = {}, b = {}, c = {}, d = {}, e = {}, f = {}, g = {};
        struct proc_thread *t = NULL;
        struct errbuf err = {};
        const char *names[256], *objects[256];
        uint64_t t0, first_ns, warm_ns;
        pid_t pid;

#if !defined(__x86_64__)
        tap_skip("the patch is built for x86-64");
#endif
        patch_load(&the_patch);
        with = patch_region(&the_patch, true);
        without = patch_region(&the_patch, false);
        pid = patch_victim_start(the_patch.calls, in_host_spin, &p, &t);
        /* Set up while stopped: fine for a test. */
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &a));

        CHECK_OK(proc_unwinder_set_code(u, &with, 1, &err));
        t0 = now_ns();
        CHECK_OK(proc_unwind_thread(u, t, 0, &b));
        first_ns = now_ns() - t0;
        t0 = now_ns();
        CHECK_OK(proc_unwind_thread(u, t, 0, &g));
        warm_ns = now_ns() - t0;
        CHECK_OK(proc_unwinder_refresh(u, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &c));
        CHECK_OK(proc_unwinder_set_code(u, &without, 1, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &d));
        CHECK_OK(proc_unwinder_set_code(u, &with, 1, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &e));
        CHECK_OK(proc_unwinder_set_code(u, NULL, 0, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &f));
        patch_victim_end(&p, &u, pid);

        CHECK_OK(elf_proc_new(getpid(), &ep, &err));
        symbolise(ep, &b, names, objects);
        dump("through patch code, region known", &b, names, objects);
        printf("# unwind through the region: first %.1f µs, then %.1f µs\n", first_ns / 1000.0,
               warm_ns / 1000.0);
        printf("# region unknown: %zu frames, error %d: %s\n", a.n, a.error, a.reason);
        printf("# region without CFI: %zu frames, error %d: %s\n", d.n, d.error, d.reason);

        /* Unknown: host_spin, then the return address into the patch,
         * where the unwind must stop. */
        CHECK(a.n == 2);
        CHECK(a.error == -ENOENT);
        CHECK(strstr(a.reason, "is in no object file") != NULL);
        CHECK(pc_in(&a.frames[1], the_patch.calls, the_patch.calls_size));

        /* Known, with its CFI: complete, through the patch frame. */
        CHECK(b.error == 0);
        CHECK(b.n > 3);
        CHECK_STREQ(names[0], "host_spin");
        CHECK(b.frames[0].activation);
        CHECK(pc_in(&b.frames[1], the_patch.calls, the_patch.calls_size));
        CHECK(!b.frames[1].activation);
        CHECK_STREQ(names[2], "patch_thread");
        CHECK(contains(names, b.n, "start_thread"));
        CHECK(same_stack(&b, &c));
        CHECK(same_stack(&b, &e));
        CHECK(same_stack(&b, &g));

        /* Known without CFI: no unwind info, naming the region. */
        CHECK(d.n == 2);
        CHECK(d.error == -ENOENT);
        CHECK(strstr(d.reason, "no unwind info for pc") != NULL);
        CHECK(strstr(d.reason, "test-patch") != NULL);
        /* Forgotten: as at first. */
        CHECK(same_stack(&a, &f));
        CHECK(strcmp(a.reason, f.reason) == 0);

        proc_stack_done(&a);
        proc_stack_done(&b);
        proc_stack_done(&c);
        proc_stack_done(&d);
        proc_stack_done(&e);
        proc_stack_done(&f);
        proc_stack_done(&g);
}

/* The innermost frame in patch code: complete with the region. */
TEST(code_region_innermost_frame)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_code_region with;
        struct proc_stack a = {}, b = {};
        struct proc_thread *t = NULL;
        struct errbuf err = {};
        pid_t pid;

#if !defined(__x86_64__)
        tap_skip("the patch is built for x86-64");
#endif
        patch_load(&the_patch);
        with = patch_region(&the_patch, true);
        pid = patch_victim_start(the_patch.loop, in_patch_loop, &p, &t);
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &a));
        CHECK_OK(proc_unwinder_set_code(u, &with, 1, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &b));
        patch_victim_end(&p, &u, pid);

        printf("# in patch code, region unknown: %zu frames, error %d: %s\n", a.n, a.error,
               a.reason);
        CHECK(a.n == 1);
        CHECK(a.error == -ENOENT);
        CHECK(b.error == 0);
        CHECK(b.n > 2);
        CHECK(b.frames[0].activation);
        CHECK(pc_in(&b.frames[0], the_patch.loop, the_patch.loop_size));
        proc_stack_done(&a);
        proc_stack_done(&b);
}

/* A pc of the region that its .eh_frame does not cover (assembly without
 * CFI) has no unwind info: the stack ends there, incomplete, even though
 * the region is known and has CFI for its other functions. */
TEST(code_region_pc_without_fde_stays_unreliable)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_code_region with;
        struct proc_stack s = {};
        struct proc_thread *t = NULL;
        struct errbuf err = {};
        pid_t pid;

#if !defined(__x86_64__)
        tap_skip("the patch is built for x86-64");
#endif
        patch_load(&the_patch);
        with = patch_region(&the_patch, true);
        pid = patch_victim_start(the_patch.nocfi, at_patch_nocfi, &p, &t);
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        CHECK_OK(proc_unwinder_set_code(u, &with, 1, &err));
        CHECK_OK(proc_unwind_thread(u, t, 0, &s));
        patch_victim_end(&p, &u, pid);

        printf("# pc without FDE in a known region: %zu frames, error %d: %s\n", s.n, s.error,
               s.reason);
        CHECK(s.n == 1);
        CHECK(s.frames[0].pc == the_patch.nocfi);
        CHECK(s.error == -ENOENT);
        CHECK(strstr(s.reason, "no unwind info for pc") != NULL);
        proc_stack_done(&s);
}

TEST(code_region_refusals)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_code_region r[2] = {
                { .start = 0x10000, .end = 0x20000, .name = "one" },
                { .start = 0x18000, .end = 0x28000, .name = "two" },
        };
        struct errbuf err = {};
        struct victim v;

        victim_start("victim-chain-o2", NULL, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        CHECK_ERR(proc_unwinder_set_code(u, r, 2, &err), EINVAL);
        CHECK(strstr(err.msg, "code regions one and two") != NULL);
        r[1].start = r[1].end;
        CHECK_ERR(proc_unwinder_set_code(u, &r[1], 1, &err), EINVAL);
        CHECK(strstr(err.msg, "is empty") != NULL);
        r[1] = (struct proc_code_region){ .start = 0x30000, .end = 0x31000, .eh_frame_addr = 1,
                                          .eh_frame_size = UINT64_MAX };
        CHECK_ERR(proc_unwinder_set_code(u, &r[1], 1, &err), EINVAL);
        /* An .eh_frame that is not mapped: accepted, the region simply has
         * no unwind info. */
        r[1].eh_frame_addr = 0x1000;
        r[1].eh_frame_size = 64;
        CHECK_OK(proc_unwinder_set_code(u, r, 2, &err));
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_quit_ok(&v);
}

/* ---- The fast path finds what libdw finds --------------------------------- */

/* Every stopped thread of p is unwound with the fast path (falling back to
 * libdw where it gives up) and with libdw alone, with no frame limit and
 * with limits that cut the stack, and the two results must be the same:
 * frames, activation flags, error and reason. The stats of u then tell
 * how many stacks the fast path took. */
struct equiv {
        const char *what;
        size_t stops, threads, mismatches;
        size_t max_frames_seen;
        struct proc_unwind_stats before;
};

static void equiv_begin(struct equiv *q, const char *what, struct proc_unwinder *u)
{
        *q = (struct equiv){ .what = what };
        proc_unwinder_stats(u, &q->before);
}

static void dump_pcs(const char *what, const struct proc_stack *s)
{
        printf("#   %s: %zu frames, error %d%s%s\n", what, s->n, s->error, s->error ? ": " : "",
               s->error ? s->reason : "");
        for (size_t i = 0; i < s->n; i++)
                printf("#     #%zu 0x%016llx%s\n", i, (unsigned long long)s->frames[i].pc,
                       s->frames[i].activation ? " (activation)" : "");
}

static void equiv_one(struct equiv *q, struct proc_unwinder *u, struct proc_thread *t,
                      size_t max_frames, struct proc_stack *ret_fast)
{
        struct proc_stack a = {}, b = {};
        int ra, rb;

        proc_unwinder_set_path(u, PROC_UNWIND_AUTO);
        ra = proc_unwind_thread(u, t, max_frames, &a);
        proc_unwinder_set_path(u, PROC_UNWIND_LIBDW);
        rb = proc_unwind_thread(u, t, max_frames, &b);
        proc_unwinder_set_path(u, PROC_UNWIND_AUTO);
        CHECK(ra == rb);
        if (ra < 0)
                return;
        if (!same_stack(&a, &b) || strcmp(a.reason, b.reason) != 0) {
                /* The first few in full. */
                if (q->mismatches < 3) {
                        printf("# %s: thread %d, max_frames %zu: the fast path and libdw "
                               "differ\n",
                               q->what, (int)t->tid, max_frames);
                        dump_pcs("fast path", &a);
                        dump_pcs("libdw", &b);
                }
                q->mismatches++;
        }
        proc_stack_done(&b);
        if (ret_fast)
                *ret_fast = a;
        else
                proc_stack_done(&a);
}

/* Compare every stopped thread of p, in one stop. */
static void equiv_stop(struct equiv *q, struct proc *p, struct proc_unwinder *u)
{
        q->stops++;
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                struct proc_stack s = {};

                if (t->state != PROC_THREAD_STOPPED)
                        continue;
                q->threads++;
                equiv_one(q, u, t, 0, &s);
                q->max_frames_seen = MAX(q->max_frames_seen, s.n);
                /* Limits: the innermost frame alone, and one frame short
                 * of the whole stack (-E2BIG unless it ended early). */
                equiv_one(q, u, t, 1, NULL);
                if (s.n > 2)
                        equiv_one(q, u, t, s.n - 1, NULL);
                proc_stack_done(&s);
        }
}

/* Stop p `stops` times, letting it run about a millisecond in between
 * (serving its events), and compare at every stop. */
static void equiv_stops(struct equiv *q, struct proc *p, struct proc_unwinder *u,
                        unsigned stops)
{
        struct errbuf err = {};

        for (unsigned i = 0; i < stops; i++) {
                CHECK_OK(proc_stop_all(p, &err));
                equiv_stop(q, p, u);
                CHECK_OK(proc_resume_all(p, &err));
                /* Varying run times, so pcs land everywhere. */
                CHECK(proc_wait_events(p, 200000ull + (i % 7) * 150000ull) >= 0);
        }
}

/* Print the counts; the share of stacks the fast path took alone, in %. */
static unsigned equiv_end(struct equiv *q, struct proc_unwinder *u)
{
        struct proc_unwind_stats s;
        uint64_t fast, gave_up, unwinds;

        proc_unwinder_stats(u, &s);
        fast = s.fast_threads - q->before.fast_threads;
        gave_up = (s.gave_up_rule - q->before.gave_up_rule) +
                  (s.gave_up_read - q->before.gave_up_read) +
                  (s.gave_up_other - q->before.gave_up_other);
        unwinds = fast + gave_up; /* the fast path's attempts */
        printf("# %s: %zu stops, %zu threads, stacks up to %zu frames: fast path %" PRIu64
               " of %" PRIu64 " unwinds (%" PRIu64 " frames), gave up %" PRIu64
               " (rule %" PRIu64 ", read %" PRIu64 ", other %" PRIu64 "); %zu differ\n",
               q->what, q->stops, q->threads, q->max_frames_seen, fast, unwinds,
               s.fast_frames - q->before.fast_frames, gave_up,
               s.gave_up_rule - q->before.gave_up_rule,
               s.gave_up_read - q->before.gave_up_read,
               s.gave_up_other - q->before.gave_up_other, q->mismatches);
        CHECK(q->mismatches == 0);
        /* Every unwind with the fast path on is counted once. */
        CHECK(unwinds > 0);
        return (unsigned)(fast * 100 / unwinds);
}

/* A victim from tests/victims, stopped `stops` times; returns the fast
 * path's share in %. */
static unsigned equiv_victim(const char *what, const char *name, char *const args[],
                             unsigned stops)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct errbuf err = {};
        struct equiv q;
        struct victim v;
        unsigned share;

        victim_start(name, args, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        equiv_begin(&q, what, u);
        equiv_stops(&q, p, u, stops);
        share = equiv_end(&q, u);
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        victim_kill(&v);
        return share;
}

TEST(fast_path_matches_libdw_chains)
{
        /* Nearly every stack here is plain compiled code: the fast path
         * must take most of them (the main thread may sit in a PLT stub
         * or the vdso now and then). */
        CHECK(equiv_victim("victim-chain", "victim-chain", NULL, 200) >= 80);
        CHECK(equiv_victim("victim-chain-o2", "victim-chain-o2", NULL, 200) >= 80);
}

TEST(fast_path_matches_libdw_n16)
{
        char *busy[] = { "16", "busy", NULL }, *idle[] = { "16", "idle", NULL };

        CHECK(equiv_victim("victim-n 16 busy", "victim-n", busy, 200) >= 80);
        /* Idle threads sit in clock_nanosleep, or are on their way in or
         * out through libc: whatever the share, the results must match. */
        (void)equiv_victim("victim-n 16 idle", "victim-n", idle, 200);
}

TEST(fast_path_matches_libdw_threads)
{
        char *args[] = { "--busy", "3", "--blocked", "5", "--churn", "2", NULL };

        /* Blocked in read, pthread_cond_wait, futex, nanosleep and poll;
         * threads being born and dying (a new thread may stop at the
         * return of clone, without CFI). */
        (void)equiv_victim("victim-threads", "victim-threads", args, 200);
}

/* A forked victim with two threads inside signal handlers: one spins in
 * its handler, the other blocks in read() in its handler; both were
 * interrupted in a busy loop. Their stacks pass through __restore_rt
 * (signal frame, CFA expression). */
static atomic_int sig_in_handler;
static int sig_pipe[2];

static void sig_handler(int sig)
{
        char c;

        atomic_fetch_add(&sig_in_handler, 1);
        if (sig == SIGUSR1)
                for (;;)
                        __asm__ volatile("" ::: "memory");
        (void)!read(sig_pipe[0], &c, 1);
        for (;;)
                pause();
}

static void *sig_thread(void *arg)
{
        atomic_store(&odd_started, 1);
        for (;;)
                __asm__ volatile("" ::: "memory");
        return NULL;
}

TEST(fast_path_matches_libdw_signal_handlers)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct errbuf err = {};
        struct equiv q;
        int ready[2];
        size_t through_handler = 0;
        char c;
        pid_t pid;

        CHECK(pipe2(ready, O_CLOEXEC) == 0);
        CHECK(pipe2(sig_pipe, O_CLOEXEC) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                struct sigaction sa = { .sa_handler = sig_handler };
                pthread_t a, b;

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                sigaction(SIGUSR1, &sa, NULL);
                sigaction(SIGUSR2, &sa, NULL);
                if (pthread_create(&a, NULL, sig_thread, NULL) != 0 ||
                    pthread_create(&b, NULL, sig_thread, NULL) != 0)
                        _exit(1);
                pthread_kill(a, SIGUSR1);
                pthread_kill(b, SIGUSR2);
                while (atomic_load(&sig_in_handler) < 2)
                        ;
                (void)!write(ready[1], "r", 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        CHECK(read(ready[0], &c, 1) == 1);
        close(ready[0]);

        CHECK_OK(proc_attach(pid, NULL, &p, &err));
        CHECK(proc_n_threads(p) == 3);
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        equiv_begin(&q, "threads in signal handlers", u);
        equiv_stops(&q, p, u, 100);

        /* The handlers' stacks go on past the signal frame: the frame of
         * the interrupted pc is an activation, not the innermost. */
        CHECK_OK(proc_stop_all(p, &err));
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_stack s = {};
                bool inner_activation = false;

                CHECK_OK(proc_unwind_thread(u, proc_thread_at(p, i), 0, &s));
                for (size_t k = 1; k < s.n; k++)
                        inner_activation |= s.frames[k].activation;
                if (inner_activation) {
                        through_handler++;
                        dump_pcs("through a signal frame", &s);
                }
                proc_stack_done(&s);
        }
        CHECK_OK(proc_resume_all(p, &err));
        (void)equiv_end(&q, u);
        CHECK(through_handler == 2);

        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
}

/* A forked victim whose threads loop on clock_gettime(): through the
 * executable's PLT stub (its CFI is an expression), libc, and the vdso
 * (an object file libdw reads from memory). */
__attribute__((noipa)) static void vdso_loop(void)
{
        struct timespec ts;

        atomic_store(&odd_started, 1);
        for (;;)
                clock_gettime(CLOCK_MONOTONIC, &ts);
}

static void *vdso_thread(void *arg)
{
        vdso_loop();
        return NULL;
}

TEST(fast_path_matches_libdw_vdso_plt)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        _cleanup_(elf_proc_freep) struct elf_proc *ep = NULL;
        struct errbuf err = {};
        struct equiv q;
        uint64_t pcs[600];
        char *places[32];
        size_t n_pcs = 0, n_places = 0, counts[32] = {};
        int ready[2];
        char c;
        pid_t pid;

        CHECK(pipe2(ready, O_CLOEXEC) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                pthread_t a, b;

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (pthread_create(&a, NULL, vdso_thread, NULL) != 0 ||
                    pthread_create(&b, NULL, vdso_thread, NULL) != 0)
                        _exit(1);
                while (!atomic_load(&odd_started))
                        ;
                (void)!write(ready[1], "r", 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        CHECK(read(ready[0], &c, 1) == 1);
        close(ready[0]);

        CHECK_OK(proc_attach(pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        equiv_begin(&q, "threads calling clock_gettime", u);
        equiv_stops(&q, p, u, 300);
        (void)equiv_end(&q, u);

        /* Where the stops landed, to see what the comparison covered. */
        CHECK_OK(elf_proc_new(pid, &ep, &err));
        for (int rep = 0; rep < 300; rep++) {
                CHECK_OK(proc_stop_all(p, &err));
                for (size_t i = 0; i < proc_n_threads(p) && n_pcs < ELEMENTSOF(pcs); i++) {
                        const struct arch_regs *r;

                        CHECK_OK(proc_regs(p, proc_thread_at(p, i), &r));
                        if (proc_thread_at(p, i)->tid != pid)
                                pcs[n_pcs++] = arch_regs_pc(r);
                }
                CHECK_OK(proc_resume_all(p, &err));
                CHECK(proc_wait_events(p, 200000ull + (rep % 7) * 150000ull) >= 0);
        }
        for (size_t i = 0; i < n_pcs; i++) {
                struct elf_location loc = {};
                char where[256];
                size_t k;

                snprintf(where, sizeof(where), "??");
                if (elf_proc_locate(ep, pcs[i], &loc) == 0)
                        snprintf(where, sizeof(where), "%s %s",
                                 loc.object ? strrchr(loc.object, '/') ? strrchr(loc.object, '/') + 1
                                                                       : loc.object
                                            : "??",
                                 loc.function ? loc.function : "??");
                for (k = 0; k < n_places && strcmp(places[k], where) != 0; k++)
                        ;
                if (k == n_places && n_places < ELEMENTSOF(places))
                        places[n_places++] = strdup(where);
                if (k < n_places)
                        counts[k]++;
        }
        for (size_t k = 0; k < n_places; k++) {
                printf("# innermost pcs in %s: %zu\n", places[k], counts[k]);
                free(places[k]);
        }

        /* A stop lands on a one-instruction PLT stub too rarely: put a
         * thread there, as if it had just called clock_gettime's stub from
         * vdso_loop (whose first call is that), compare, and put it back. */
        {
                const uint8_t *code = (const uint8_t *)(uintptr_t)vdso_loop;
                uint64_t args[6] = {}, push_addr = 0, push_value = 0, saved_word = 0;
                struct proc_unwind_stats before, after;
                struct arch_regs saved, at_plt;
                const struct arch_regs *r;
                struct proc_thread *t = NULL;
                struct arch_insn insn = {};
                struct proc_stack s = {};
                size_t off = 0;

                while (off < 256) {
                        CHECK_OK(arch_decode(code + off, 16, (uint64_t)(uintptr_t)code + off,
                                             &insn));
                        if (insn.flags & ARCH_INSN_CALL)
                                break;
                        off += insn.len;
                }
                CHECK(insn.flags & ARCH_INSN_CALL);
                CHECK(insn.target != 0);

                CHECK_OK(proc_stop_all(p, &err));
                for (size_t i = 0; i < proc_n_threads(p) && !t; i++)
                        if (proc_thread_at(p, i)->tid != pid)
                                t = proc_thread_at(p, i);
                CHECK_OK(proc_regs(p, t, &r));
                saved = at_plt = *r;
                arch_regs_setup_call(&at_plt, insn.target, args, insn.addr + insn.len,
                                     &push_addr, &push_value);
                CHECK(push_addr != 0);
                CHECK_OK(proc_read(p, push_addr, &saved_word, sizeof(saved_word)));
                CHECK_OK(proc_write(p, push_addr, &push_value, sizeof(push_value)));
                CHECK_OK(proc_set_regs(p, t, &at_plt));

                equiv_begin(&q, "a thread at a PLT stub", u);
                proc_unwinder_stats(u, &before);
                equiv_one(&q, u, t, 0, &s);
                proc_unwinder_stats(u, &after);
                dump_pcs("at the PLT stub", &s);
                q.max_frames_seen = s.n;
                CHECK(s.n >= 1 && s.frames[0].pc == insn.target);
                /* The stub's CFI is an expression: libdw's. */
                CHECK(after.gave_up_rule == before.gave_up_rule + 1);
                proc_stack_done(&s);
                q.stops++;
                q.threads++;
                (void)equiv_end(&q, u);

                CHECK_OK(proc_write(p, push_addr, &saved_word, sizeof(saved_word)));
                CHECK_OK(proc_set_regs(p, t, &saved));
                CHECK_OK(proc_resume_all(p, &err));
        }
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* The odd victims: garbage stack pointer, code in no object, a frame
 * pointer frame there. */
TEST(fast_path_matches_libdw_odd)
{
        for (enum odd_mode mode = ODD_GARBAGE_STACK; mode <= ODD_ANON_CODE_FP; mode++) {
                static const char *const names[] = { "garbage stack", "anonymous code",
                                                     "anonymous code, frame pointer" };
                _cleanup_(proc_freep) struct proc *p = NULL;
                _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
                struct proc_thread *t = NULL;
                struct errbuf err = {};
                struct equiv q;
                pid_t pid;

                pid = odd_start(mode, &p, &t);
                CHECK_OK(proc_unwinder_new(p, &u, &err));
                equiv_begin(&q, names[mode], u);
                equiv_stop(&q, p, u);
                (void)equiv_end(&q, u);
                CHECK_OK(proc_resume_all(p, &err));
                u = (proc_unwinder_free(u), NULL);
                CHECK_OK(proc_detach(p));
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

/* Frames in patch code (code regions): a thread that called out of the
 * patch, one spinning inside it, one at a pc without FDE, each with the
 * region unknown, known without CFI, known with CFI. */
TEST(fast_path_matches_libdw_code_regions)
{
        struct {
                const char *what;
                bool (*in_place)(struct proc *, uint64_t);
        } victims[4];
        uint64_t entries[4];

#if !defined(__x86_64__)
        tap_skip("the patch is built for x86-64");
#endif
        patch_load(&the_patch);
        entries[0] = the_patch.calls;
        entries[1] = the_patch.loop;
        entries[2] = the_patch.nocfi;
        victims[0].what = "called from patch code";
        victims[0].in_place = in_host_spin;
        victims[1].what = "spinning in patch code";
        victims[1].in_place = in_patch_loop;
        victims[2].what = "at a patch pc without FDE";
        victims[2].in_place = at_patch_nocfi;
        entries[3] = the_patch.sigframe;
        victims[3].what = "called from a patch signal frame";
        victims[3].in_place = in_host_spin;
        for (size_t k = 0; k < ELEMENTSOF(victims); k++) {
                _cleanup_(proc_freep) struct proc *p = NULL;
                _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
                struct proc_code_region regions[2] = { patch_region(&the_patch, true),
                                                       patch_region(&the_patch, false) };
                struct proc_thread *t = NULL;
                struct errbuf err = {};
                struct equiv q;
                pid_t pid;
                char what[128];

                pid = patch_victim_start(entries[k], victims[k].in_place, &p, &t);
                CHECK_OK(proc_unwinder_new(p, &u, &err));
                CHECK_OK(proc_resume_all(p, &err));
                /* Region unknown, known with CFI, known without, with. */
                for (int round = 0; round < 4; round++) {
                        static const char *const how[] = { "region unknown", "with CFI",
                                                           "without CFI", "with CFI again" };

                        if (round == 0)
                                CHECK_OK(proc_unwinder_set_code(u, NULL, 0, &err));
                        else
                                CHECK_OK(proc_unwinder_set_code(u, &regions[round == 2], 1,
                                                                &err));
                        snprintf(what, sizeof(what), "%s, %s", victims[k].what, how[round]);
                        equiv_begin(&q, what, u);
                        /* The nocfi victim stays in place: it loops on one
                         * instruction. The others move within their loop. */
                        equiv_stops(&q, p, u, 30);
                        (void)equiv_end(&q, u);
                }
                CHECK_OK(proc_stop_all(p, &err));
                patch_victim_end(&p, &u, pid);
        }
}

/* ---- The victim keeps running after all this ---------------------------- */

static long thread_utime(pid_t pid, pid_t tid)
{
        char path[96];
        _cleanup_free_ char *buf = NULL;
        const char *s;
        long utime = -1;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
        if (read_file_str(path, &buf, NULL) < 0)
                return -1;
        s = strrchr(buf, ')');
        /* After "pid (comm)": state is field 3, utime field 14. */
        if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld", &utime) != 1)
                return -1;
        return utime;
}

TEST(victim_runs_on_after_unwinding)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_thread *tb;
        struct errbuf err = {};
        struct victim v;
        pid_t busy_tid;
        long before, after = -1;

        victim_start("victim-chain", NULL, &v);
        CHECK_OK(proc_attach(v.pid, NULL, &p, &err));
        CHECK_OK(proc_unwinder_new(p, &u, &err));
        tb = thread_named(p, "chain-busy");
        CHECK(tb);
        busy_tid = tb->tid;
        for (int rep = 0; rep < 20; rep++) {
                CHECK_OK(proc_stop_all(p, &err));
                for (size_t i = 0; i < proc_n_threads(p); i++) {
                        struct proc_stack s = {};

                        CHECK_OK(proc_unwind_thread(u, proc_thread_at(p, i), 0, &s));
                        CHECK(s.error == 0);
                        proc_stack_done(&s);
                }
                CHECK_OK(proc_resume_all(p, &err));
        }
        u = (proc_unwinder_free(u), NULL);
        CHECK_OK(proc_detach(p));
        p = (proc_free(p), NULL);

        /* The busy thread keeps spinning: its user time grows (250 Hz
         * ticks here; allow 2 s). */
        before = thread_utime(v.pid, busy_tid);
        CHECK(before >= 0);
        for (uint64_t end = now_ns() + 2000000000ull; now_ns() < end;) {
                struct timespec ts = { .tv_nsec = 10000000 };

                after = thread_utime(v.pid, busy_tid);
                if (after > before)
                        break;
                nanosleep(&ts, NULL);
        }
        CHECK(after > before);
        /* And the main thread still answers. */
        victim_quit_ok(&v);
}

TAP_MAIN()
