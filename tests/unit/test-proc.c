/* Tests of src/proc against real processes: a forked child of the test
 * runs real threads (busy, blocked in read/futex/nanosleep/poll/epoll/
 * sigtimedwait, creating threads, taking signals) and counts in shared
 * memory everything the tool could disturb: progress, EINTRs, signals.
 * The tests attach, stop, inject and detach, and check both the effect and
 * that nothing else changed. */
#include "tap.h"

#include "arch/arch.h"
#include "base/procfs.h"
#include "proc/proc.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>

/* ---- The victim ----------------------------------------------------------- */

struct shared {
        atomic_long progress;
        atomic_long eintr;
        atomic_long sigusr1;
        atomic_long sigrt;
        atomic_long created;
        atomic_long value_ones, value_twos;
        atomic_int ready;
        atomic_int blocked_ready;
        atomic_long read_done;
        atomic_int vforked, vfork_done;
        int pipe_r, pipe_w;
        char eintr_where[64];
};

static struct shared *sh;

static void note_eintr(const char *where)
{
        atomic_fetch_add(&sh->eintr, 1);
        snprintf(sh->eintr_where, sizeof(sh->eintr_where), "%s", where);
}

__attribute__((noinline)) int victim_value(void);
__attribute__((noinline)) int victim_value_alt(void);
__attribute__((noinline)) long victim_add3(long a, long b, long c);

static volatile int value_base = 1;

__attribute__((noinline)) int victim_value(void)
{
        /* Long enough for a jump at the entry. */
        int v = value_base;
        __asm__ volatile("" : "+r"(v));
        return v * 1 + 0;
}

__attribute__((noinline)) int victim_value_alt(void)
{
        int v = value_base + 1;
        __asm__ volatile("" : "+r"(v));
        return v;
}

__attribute__((noinline)) long victim_add3(long a, long b, long c)
{
        __asm__ volatile("" ::: "memory");
        return a + b + c;
}

static void block_usr(void)
{
        sigset_t s;

        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        sigaddset(&s, SIGRTMIN + 1);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void *busy_thread(void *arg)
{
        block_usr();
        atomic_fetch_add(&sh->ready, 1);
        for (;;) {
                int v = victim_value();
                if (v == 1)
                        atomic_fetch_add(&sh->value_ones, 1);
                else
                        atomic_fetch_add(&sh->value_twos, 1);
                atomic_fetch_add(&sh->progress, 1);
        }
        return NULL;
}

static void *read_thread(void *arg)
{
        char c;

        block_usr();
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;) {
                ssize_t n = read(sh->pipe_r, &c, 1);
                if (n < 0 && errno == EINTR)
                        note_eintr("read");
                else if (n == 1)
                        atomic_fetch_add(&sh->read_done, 1);
                else if (n == 0)
                        return NULL;
        }
}

static void *futex_thread(void *arg)
{
        pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_cond_t c = PTHREAD_COND_INITIALIZER;

        block_usr();
        pthread_mutex_lock(&m);
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;)
                pthread_cond_wait(&c, &m); /* never signalled; EINTR-free API */
        return NULL;
}

static void *futex_raw_thread(void *arg)
{
        int word = 0;

        block_usr();
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;) {
                struct timespec ts = { 3600, 0 };
                long r = syscall(SYS_futex, &word, 0 /* FUTEX_WAIT */, 0, &ts, NULL, 0);
                if (r < 0 && errno == EINTR)
                        note_eintr("futex");
        }
        return NULL;
}

static void *sleep_thread(void *arg)
{
        block_usr();
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;) {
                struct timespec ts = { 3600, 0 };
                if (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        note_eintr("nanosleep");
        }
        return NULL;
}

static void *poll_thread(void *arg)
{
        int fds[2];

        block_usr();
        if (pipe(fds) < 0)
                return NULL;
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;) {
                struct pollfd p = { .fd = fds[0], .events = POLLIN };
                if (poll(&p, 1, 3600 * 1000) < 0 && errno == EINTR)
                        note_eintr("poll");
        }
        return NULL;
}

static void *epoll_thread(void *arg)
{
        int fds[2], ep;
        struct epoll_event ev = { .events = EPOLLIN }, out;

        block_usr();
        if (pipe(fds) < 0)
                return NULL;
        ep = epoll_create1(0);
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;)
                if (epoll_wait(ep, &out, 1, -1) < 0 && errno == EINTR)
                        note_eintr("epoll_wait");
        return NULL;
}

static void *sigwait_thread(void *arg)
{
        sigset_t s;

        sigemptyset(&s);
        sigaddset(&s, SIGUSR2); /* never sent */
        pthread_sigmask(SIG_BLOCK, &s, NULL);
        block_usr();
        atomic_fetch_add(&sh->blocked_ready, 1);
        for (;;) {
                struct timespec ts = { 3600, 0 };
                if (sigtimedwait(&s, NULL, &ts) < 0 && errno == EINTR)
                        note_eintr("sigtimedwait");
        }
        return NULL;
}

static void *nop_thread(void *arg)
{
        atomic_fetch_add(&sh->created, 1);
        return NULL;
}

static void *churn_thread(void *arg)
{
        block_usr();
        atomic_fetch_add(&sh->ready, 1);
        for (;;) {
                pthread_t t;
                if (pthread_create(&t, NULL, nop_thread, NULL) == 0)
                        pthread_join(t, NULL);
        }
        return NULL;
}

static void on_usr1(int sig)
{
        atomic_fetch_add(&sh->sigusr1, 1);
}

static void on_rt(int sig)
{
        atomic_fetch_add(&sh->sigrt, 1);
}

enum {
        V_BUSY = 1 << 0,
        V_BLOCKED = 1 << 1,
        V_CHURN = 1 << 2,
        /* Not a child of the test (started through a child that exits):
         * then the tracer thread has no children of its own, and statuses
         * are taken with one blocking waitpid (stop_blocking in attach.c). */
        V_ORPHAN = 1 << 3,
        /* A thread that vfork()s a child which sleeps 2 s: until then it
         * cannot stop (a vfork parent waits uninterruptibly). */
        V_VFORK = 1 << 4,
};

static void *vfork_thread(void *arg)
{
        pid_t c = vfork();

        if (c == 0) {
                struct timespec ts = { 2, 0 };

                atomic_store(&sh->vforked, 1);
                syscall(SYS_nanosleep, &ts, NULL);
                _exit(0);
        }
        waitpid(c, NULL, 0);
        atomic_store(&sh->vfork_done, 1);
        for (;;)
                pause();
        return NULL;
}

static int n_blocked_kinds = 7;

/* Threads of pid now inside a syscall: the first field of
 * /proc/PID/task/TID/syscall is the syscall number ("running" or -1
 * otherwise). */
static size_t threads_in_syscall(pid_t pid)
{
        pid_t *tids = NULL;
        size_t n = 0, in = 0;

        if (procfs_tasks(pid, &tids, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char path[96];
                _cleanup_free_ char *text = NULL;
                snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tids[i]);
                if (read_file_str(path, &text, NULL) == 0 && atol(text) >= 0 &&
                    strncmp(text, "running", 7) != 0)
                        in++;
        }
        free(tids);
        return in;
}

/* Bounded (5 s) wait until at least `want` threads of pid are in a syscall. */
static bool wait_in_syscall(pid_t pid, size_t want)
{
        for (int i = 0; i < 5000; i++) {
                if (threads_in_syscall(pid) >= want)
                        return true;
                usleep(1000);
        }
        return false;
}

/* Fork a victim; returns its pid once every thread is in place. The main
 * thread takes the SIGUSR1s (handler without SA_RESTART, in pause()). */
static pid_t start_victim(int flags, int n_busy)
{
        pid_t pid;

        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(sh != MAP_FAILED);
        int fds[2];
        CHECK(pipe(fds) == 0);
        sh->pipe_r = fds[0];
        sh->pipe_w = fds[1];

        int pidp[2];
        CHECK(pipe(pidp) == 0);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0 && (flags & V_ORPHAN)) {
                pid_t g = fork();
                if (g != 0) {
                        (void)!write(pidp[1], &g, sizeof(g));
                        _exit(0);
                }
        }
        if (pid == 0) {
                pthread_t t;
                struct sigaction sa = { .sa_handler = on_usr1 };

                if (!(flags & V_ORPHAN))
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                sigaction(SIGUSR1, &sa, NULL);
                sa.sa_handler = on_rt;
                sigaction(SIGRTMIN + 1, &sa, NULL);
                for (int i = 0; i < n_busy; i++)
                        pthread_create(&t, NULL, busy_thread, NULL);
                if (flags & V_BLOCKED) {
                        pthread_create(&t, NULL, read_thread, NULL);
                        pthread_create(&t, NULL, futex_thread, NULL);
                        pthread_create(&t, NULL, futex_raw_thread, NULL);
                        pthread_create(&t, NULL, sleep_thread, NULL);
                        pthread_create(&t, NULL, poll_thread, NULL);
                        pthread_create(&t, NULL, epoll_thread, NULL);
                        pthread_create(&t, NULL, sigwait_thread, NULL);
                }
                if (flags & V_CHURN)
                        pthread_create(&t, NULL, churn_thread, NULL);
                if (flags & V_VFORK)
                        pthread_create(&t, NULL, vfork_thread, NULL);
                for (;;)
                        pause(); /* EINTR here is the handler's, expected */
        }
        if (flags & V_ORPHAN) {
                pid_t middle = pid;
                CHECK(read(pidp[0], &pid, sizeof(pid)) == sizeof(pid));
                CHECK(waitpid(middle, NULL, 0) == middle);
        }
        close(pidp[0]);
        close(pidp[1]);
        for (int i = 0; i < 10000 && (flags & V_VFORK) && !atomic_load(&sh->vforked); i++)
                usleep(1000);
        CHECK(!(flags & V_VFORK) || atomic_load(&sh->vforked));
        int want = n_busy + ((flags & V_CHURN) ? 1 : 0);
        int want_blocked = (flags & V_BLOCKED) ? n_blocked_kinds : 0;
        for (int i = 0; i < 10000; i++) {
                if (atomic_load(&sh->ready) >= want &&
                    atomic_load(&sh->blocked_ready) >= want_blocked)
                        break;
                usleep(1000);
        }
        CHECK(atomic_load(&sh->ready) >= want);
        /* The blocked threads (and main, in pause) announce themselves just
         * before their syscall: wait until they are really in it. */
        CHECK(wait_in_syscall(pid, (size_t)want_blocked + 1));
        return pid;
}

static void stop_victim(pid_t pid)
{
        kill(pid, SIGKILL);
        if (waitpid(pid, NULL, 0) < 0) {
                /* An orphan: its new parent reaps it. */
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/stat", pid);
                for (int i = 0; i < 5000 && access(path, F_OK) == 0; i++)
                        usleep(1000);
        }
}

static long wait_progress(long from)
{
        for (int i = 0; i < 5000; i++) {
                long p = atomic_load(&sh->progress);
                if (p > from)
                        return p;
                usleep(1000);
        }
        return atomic_load(&sh->progress);
}

static size_t count_tasks(pid_t pid)
{
        pid_t *tids = NULL;
        size_t n = 0;

        if (procfs_tasks(pid, &tids, &n) < 0)
                return 0;
        free(tids);
        return n;
}

/* The thread blocked in read() all along (and borrowed by our injections)
 * still does its job: one byte in, one read done. */
static void check_reader_works(void)
{
        long before = atomic_load(&sh->read_done);

        CHECK(write(sh->pipe_w, "x", 1) == 1);
        for (int i = 0; i < 5000 && atomic_load(&sh->read_done) == before; i++)
                usleep(1000);
        CHECK(atomic_load(&sh->read_done) == before + 1);
}

/* ---- Tests ---------------------------------------------------------------- */

TEST(attach_sees_every_thread)
{
        pid_t pid = start_victim(V_BLOCKED, 3);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        CHECK(proc_n_threads(p) == count_tasks(pid));
        CHECK(proc_n_threads(p) == (size_t)(1 + 3 + n_blocked_kinds));
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                pid_t tracer = 0;
                CHECK_OK(procfs_tracer_pid(pid, proc_thread_at(p, i)->tid, &tracer));
                CHECK(tracer == getpid());
        }
        CHECK_OK(proc_detach(p));
        pid_t tracer = -1;
        CHECK_OK(procfs_tracer_pid(pid, pid, &tracer));
        CHECK(tracer == 0);
        long pr = atomic_load(&sh->progress);
        CHECK(wait_progress(pr) > pr);
        stop_victim(pid);
}

static void check_stop_all(int flags)
{
        pid_t pid = start_victim(V_BLOCKED | flags, 4);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        /* The way of waiting this test is for. */
        CHECK(proc_reaps_direct(p) == !!(flags & V_ORPHAN));
        CHECK_OK(proc_stop_all(p, &e));
        long before = atomic_load(&sh->progress);
        usleep(20000);
        CHECK(atomic_load(&sh->progress) == before); /* nothing runs */
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                const struct arch_regs *r;
                char st = 0;
                CHECK(t->state == PROC_THREAD_STOPPED);
                CHECK_OK(procfs_thread_state(pid, t->tid, &st));
                CHECK(st == 't');
                CHECK_OK(proc_regs(p, t, &r));
                CHECK(arch_regs_pc(r) != 0);
                CHECK(arch_regs_sp(r) != 0);
        }
        CHECK_OK(proc_resume_all(p, &e));
        CHECK(wait_progress(before) > before);
        CHECK_OK(proc_detach(p));
        CHECK(atomic_load(&sh->eintr) == 0);
        stop_victim(pid);
}

TEST(stop_all_stops_every_thread)
{
        check_stop_all(0);
}

/* The same when the target is not a child of the tool, as with the CLI:
 * the stop takes statuses in one blocking wait each. */
TEST(stop_all_stops_every_thread_of_a_non_child)
{
        check_stop_all(V_ORPHAN);
}

/* A thread that cannot stop (a vfork parent) ends the stop at the
 * timeout with a message naming it, and the others run on; once it can,
 * everything detaches. Both ways of waiting: the target a child of the
 * tool or not. */
static void check_stop_timeout(int flags)
{
        pid_t pid = start_victim(V_VFORK | flags, 2);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct proc_attach_opts opts = { .timeout = 0.3 };
        struct errbuf e = {};
        char want[64];

        CHECK_OK(proc_attach(pid, &opts, &p, &e));
        CHECK(proc_reaps_direct(p) == !!(flags & V_ORPHAN));
        uint64_t t0 = now_ns();
        CHECK_ERR(proc_stop_all(p, &e), ETIMEDOUT);
        uint64_t took = now_ns() - t0;
        CHECK(took >= 250 * 1000000ull && took < 1500 * 1000000ull);
        snprintf(want, sizeof(want), "did not stop within 0.3 s");
        CHECK(strstr(e.msg, want) != NULL);
        printf("# %s (%.0f ms)\n", e.msg, took / 1e6);
        /* The others were let go. */
        long before = atomic_load(&sh->progress);
        CHECK(wait_progress(before) > before);
        /* Its interrupt is still pending: when the vfork child is gone it
         * stops for it, and goes on when the event is served. */
        for (int i = 0; i < 5000 && !atomic_load(&sh->vfork_done); i++)
                CHECK_OK(proc_wait_events(p, 1000000));
        CHECK(atomic_load(&sh->vfork_done));
        CHECK_OK(proc_detach(p));
        CHECK(atomic_load(&sh->eintr) == 0);
        stop_victim(pid);
}

TEST(stop_times_out_on_a_thread_that_cannot_stop)
{
        check_stop_timeout(0);
}

TEST(stop_times_out_on_a_thread_that_cannot_stop_non_child)
{
        check_stop_timeout(V_ORPHAN);
}

struct probe_seen {
        pid_t tids[64];
        size_t n;
        size_t stop_after; /* return -EBUSY at this visit (0: never) */
        bool all_in_stop;
};

static int probe_visit(struct proc *p, struct proc_thread *t, void *userdata)
{
        struct probe_seen *s = userdata;
        char st = 0;

        if (procfs_thread_state(proc_pid(p), t->tid, &st) < 0 || st != 't')
                s->all_in_stop = false;
        if (s->n < ELEMENTSOF(s->tids))
                s->tids[s->n] = t->tid;
        s->n++;
        return s->stop_after && s->n == s->stop_after ? -EBUSY : 0;
}

/* proc_probe_all(): every thread visited once, in a stop of its own, and
 * running again afterwards with nothing noticed (no EINTR); a visit that
 * returns < 0 ends the probe with that value, and the threads still on
 * their way are let go as their stops are served. */
TEST(probe_visits_each_thread_once_and_lets_it_go)
{
        pid_t pid = start_victim(V_BUSY | V_BLOCKED, 3);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct probe_seen seen = { .all_in_stop = true };
        struct errbuf e = {};
        uint64_t held = 0;

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        size_t n = proc_n_threads(p);
        CHECK_OK(proc_probe_all(p, probe_visit, &seen, 10ull * 1000000000, &held, &e));
        CHECK(seen.n == n);
        CHECK(seen.all_in_stop);
        CHECK(held > 0);
        for (size_t i = 0; i < seen.n && i < ELEMENTSOF(seen.tids); i++) {
                CHECK(proc_thread_by_tid(p, seen.tids[i]) != NULL);
                for (size_t k = 0; k < i; k++)
                        CHECK(seen.tids[k] != seen.tids[i]);
        }
        for (size_t i = 0; i < n; i++)
                CHECK(proc_thread_at(p, i)->state == PROC_THREAD_RUNNING);
        long before = atomic_load(&sh->progress);
        CHECK(wait_progress(before) > before);

        /* Ended by the second visit. */
        struct probe_seen two = { .stop_after = 2, .all_in_stop = true };
        CHECK_ERR(proc_probe_all(p, probe_visit, &two, 10ull * 1000000000, &held, &e), EBUSY);
        CHECK(two.n == 2);
        CHECK_OK(proc_wait_events(p, 100 * 1000000ull));
        for (size_t i = 0; i < proc_n_threads(p); i++)
                CHECK(proc_thread_at(p, i)->state == PROC_THREAD_RUNNING);
        before = atomic_load(&sh->progress);
        CHECK(wait_progress(before) > before);
        CHECK_OK(proc_detach(p));
        CHECK(atomic_load(&sh->eintr) == 0);
        check_reader_works();
        stop_victim(pid);
}

/* The heart of "without disturbing it": 1000 attach/stop/resume/detach
 * cycles while signals arrive; afterwards no EINTR in any blocked thread,
 * every signal delivered exactly once, every thread still working. */
TEST(attach_detach_1000_times_unnoticed)
{
        pid_t pid = start_victim(V_BLOCKED, 2);
        long sent_rt = 0, sent_usr1 = 0;
        size_t threads_before = count_tasks(pid);

        for (int i = 0; i < 1000; i++) {
                _cleanup_(proc_freep) struct proc *p = NULL;
                struct errbuf e = {};

                /* SIGUSR1 is a standard signal: two pending ones merge. So
                 * send one only when the last was counted, and send it while
                 * we are attached, so that it goes through a
                 * signal-delivery-stop. Realtime signals queue: send them
                 * at any time, several at once. */
                bool usr1 = i % 4 == 0;
                if (i % 10 == 0) {
                        kill(pid, SIGRTMIN + 1);
                        sent_rt++;
                }
                CHECK_OK(proc_attach(pid, NULL, &p, &e));
                if (i % 3 == 0) {
                        kill(pid, SIGRTMIN + 1);
                        kill(pid, SIGRTMIN + 1);
                        sent_rt += 2;
                }
                if (usr1) {
                        kill(pid, SIGUSR1);
                        sent_usr1++;
                }
                CHECK_OK(proc_stop_all(p, &e));
                CHECK_OK(proc_resume_all(p, &e));
                if (i % 2 == 0) {
                        CHECK_OK(proc_stop_all(p, &e));
                        CHECK_OK(proc_resume_all(p, &e));
                }
                CHECK_OK(proc_detach(p));
                /* Let that SIGUSR1 be handled before the next one is sent
                 * (it must arrive: one lost would hang here and fail). */
                for (int k = 0; usr1 && k < 50000 && atomic_load(&sh->sigusr1) < sent_usr1; k++)
                        usleep(100);
                if (usr1)
                        CHECK(atomic_load(&sh->sigusr1) == sent_usr1);
        }
        /* Signals are asynchronous: wait until they are all counted. */
        for (int i = 0; i < 5000 && (atomic_load(&sh->sigrt) < sent_rt ||
                                     atomic_load(&sh->sigusr1) < sent_usr1);
             i++)
                usleep(1000);
        if (atomic_load(&sh->eintr) != 0)
                fprintf(stderr, "spurious EINTR in %s\n", sh->eintr_where);
        CHECK(atomic_load(&sh->eintr) == 0);
        fprintf(stderr, "sent %ld realtime signals, received %ld; sent %ld SIGUSR1, received %ld\n",
                sent_rt, atomic_load(&sh->sigrt), sent_usr1, atomic_load(&sh->sigusr1));
        CHECK(atomic_load(&sh->sigrt) == sent_rt);
        CHECK(atomic_load(&sh->sigusr1) == sent_usr1);
        CHECK(sent_usr1 == 250);
        CHECK(count_tasks(pid) == threads_before);
        long pr = atomic_load(&sh->progress);
        CHECK(wait_progress(pr) > pr);
        /* The blocked reader still works. */
        check_reader_works();
        stop_victim(pid);
}

TEST(stop_and_resume_one_thread)
{
        pid_t pid = start_victim(V_BLOCKED, 3);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};
        char st = 0;

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                const struct arch_regs *r;

                CHECK_OK(proc_stop_thread(p, t, &e));
                CHECK(t->state == PROC_THREAD_STOPPED);
                CHECK_OK(proc_regs(p, t, &r));
                /* Only this one is stopped: the others go on. */
                for (size_t j = 0; j < proc_n_threads(p); j++) {
                        struct proc_thread *o = proc_thread_at(p, j);
                        CHECK_OK(procfs_thread_state(pid, o->tid, &st));
                        CHECK((st == 't') == (o == t));
                }
                /* The others make progress (wait on it, bounded, serving
                 * the events of the running threads meanwhile). */
                long pr = atomic_load(&sh->progress);
                for (int k = 0; k < 500 && atomic_load(&sh->progress) == pr; k++)
                        CHECK_OK(proc_wait_events(p, 10000000));
                CHECK(atomic_load(&sh->progress) > pr);
                CHECK_OK(procfs_thread_state(pid, t->tid, &st));
                CHECK(st == 't');
                CHECK_OK(proc_resume_thread(p, t, &e));
                CHECK(t->state == PROC_THREAD_RUNNING);
        }
        CHECK_OK(proc_detach(p));
        check_reader_works();
        CHECK(atomic_load(&sh->eintr) == 0);
        stop_victim(pid);
}

TEST(threads_created_while_attached_are_caught)
{
        pid_t pid = start_victim(V_CHURN, 1);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        for (int round = 0; round < 200; round++) {
                pid_t *tids = NULL;
                size_t n = 0;

                CHECK_OK(proc_stop_all(p, &e));
                /* Every task that exists now must be one of ours, stopped. */
                CHECK_OK(procfs_tasks(pid, &tids, &n));
                for (size_t i = 0; i < n; i++) {
                        struct proc_thread *t = proc_thread_by_tid(p, tids[i]);
                        char st = 0;
                        if (!t) {
                                fprintf(stderr, "round %d: thread %d unseen\n", round, tids[i]);
                                CHECK(t != NULL);
                        }
                        if (procfs_thread_state(pid, tids[i], &st) == 0 && st != 't' &&
                            st != 'Z' && st != 'X') {
                                fprintf(stderr, "round %d: thread %d in state %c\n", round,
                                        tids[i], st);
                                CHECK(0);
                        }
                }
                free(tids);
                CHECK_OK(proc_resume_all(p, &e));
                CHECK_OK(proc_wait_events(p, 1000000));
        }
        long created = atomic_load(&sh->created);
        CHECK_OK(proc_detach(p));
        /* Still creating threads after detach. */
        for (int i = 0; i < 5000 && atomic_load(&sh->created) == created; i++)
                usleep(1000);
        CHECK(atomic_load(&sh->created) > created);
        stop_victim(pid);
}

TEST(group_stopped_process_stays_stopped)
{
        pid_t pid = start_victim(V_BLOCKED, 2);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};
        int status;
        char st = 0;

        kill(pid, SIGSTOP);
        CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status));

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        CHECK(proc_was_group_stopped(p));
        CHECK_OK(proc_stop_all(p, &e));
        uint64_t r;
        CHECK_ERR(proc_syscall(p, NULL, SYS_getpid, (uint64_t[6]){ 0 }, &r, &e), EAGAIN);
        CHECK_OK(proc_resume_all(p, &e));
        CHECK_OK(proc_detach(p));

        long before = atomic_load(&sh->progress);
        usleep(30000);
        CHECK(atomic_load(&sh->progress) == before);
        pid_t *tids = NULL;
        size_t n = 0;
        CHECK_OK(procfs_tasks(pid, &tids, &n));
        for (size_t i = 0; i < n; i++) {
                CHECK_OK(procfs_thread_state(pid, tids[i], &st));
                /* The kernel puts a detached thread back into the group
                 * stop asynchronously: wait for it (bounded). */
                for (int k = 0; k < 500 && st != 'T'; k++) {
                        usleep(1000);
                        CHECK_OK(procfs_thread_state(pid, tids[i], &st));
                }
                if (st != 'T') {
                        pid_t tr = -1;
                        procfs_tracer_pid(pid, tids[i], &tr);
                        fprintf(stderr, "thread %d state %c tracer %d\n", tids[i], st, tr);
                }
                CHECK(st == 'T');
        }
        free(tids);
        kill(pid, SIGCONT);
        CHECK(wait_progress(before) > before);
        /* No EINTR check here: SIGSTOP/SIGCONT alone make epoll_wait and
         * sigtimedwait fail with EINTR (signal(7)), with or without us. */
        stop_victim(pid);
}

TEST(refuses_process_already_traced)
{
        pid_t pid = start_victim(0, 1);
        int sync[2];
        pid_t tracer;
        char c;

        CHECK(pipe(sync) == 0);
        tracer = fork();
        CHECK(tracer >= 0);
        if (tracer == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0)
                        _exit(1);
                CHECK(write(sync[1], "x", 1) == 1);
                pause();
                _exit(0);
        }
        CHECK(read(sync[0], &c, 1) == 1);

        struct proc *p = NULL;
        struct errbuf e = {};
        CHECK_ERR(proc_attach(pid, NULL, &p, &e), EBUSY);
        CHECK(p == NULL);
        CHECK(strstr(e.msg, "already traced by pid") != NULL);
        fprintf(stderr, "message: %s\n", e.msg);
        kill(tracer, SIGKILL);
        waitpid(tracer, NULL, 0);
        long pr = atomic_load(&sh->progress);
        CHECK(wait_progress(pr) > pr);
        stop_victim(pid);
}

TEST(refuses_missing_process)
{
        struct proc *p = NULL;
        struct errbuf e = {};
        pid_t pid = fork();

        if (pid == 0)
                _exit(0);
        waitpid(pid, NULL, 0); /* a pid that surely does not exist now */
        CHECK_ERR(proc_attach(pid, NULL, &p, &e), ESRCH);
        CHECK(strstr(e.msg, "no such process") != NULL);
        CHECK_ERR(proc_attach(getpid(), NULL, &p, &e), EINVAL);
}

TEST(refuses_without_permission)
{
        pid_t pid = start_victim(0, 1);
        pid_t child;
        int status;

        if (getuid() != 0)
                tap_skip("needs root to drop to another user");
        child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                struct proc *p = NULL;
                struct errbuf e = {};
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(3);
                int r = proc_attach(pid, NULL, &p, &e);
                fprintf(stderr, "message: %s\n", e.msg);
                _exit(r == -EPERM && strstr(e.msg, "permission denied") ? 0 : 1);
        }
        CHECK(waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        pid_t tracer = -1;
        CHECK_OK(procfs_tracer_pid(pid, pid, &tracer));
        CHECK(tracer == 0);
        stop_victim(pid);
}

static void *exit_soon_thread(void *arg)
{
        for (;;)
                sched_yield();
        return NULL;
}

/* Targets that exit (or exec) at random points of our work give a clean
 * error or success, never a hang or a crash, and leave nothing traced. */
TEST(target_exits_or_execs_midway)
{
        for (int round = 0; round < 60; round++) {
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        pthread_t t;
                        for (int i = 0; i < 8; i++)
                                pthread_create(&t, NULL, exit_soon_thread, NULL);
                        usleep((useconds_t)(500 + (round * 137) % 3000));
                        if (round % 2)
                                execl("/bin/true", "true", (char *)NULL);
                        _exit(0);
                }
                for (int k = 0; k < 50; k++) {
                        struct proc *p = NULL;
                        struct errbuf e = {};
                        int r = proc_attach(pid, NULL, &p, &e);
                        if (r < 0) {
                                if (r != -ESRCH && r != -EINVAL)
                                        fprintf(stderr, "attach: %d %s\n", r, e.msg);
                                CHECK(r == -ESRCH || r == -EINVAL);
                                break;
                        }
                        r = proc_stop_all(p, &e);
                        CHECK(r == 0 || r == -ESRCH);
                        if (r == 0) {
                                uint64_t v;
                                r = proc_syscall(p, NULL, SYS_getpid, (uint64_t[6]){ 0 }, &v,
                                                 &e);
                                CHECK(r == 0 || r == -ESRCH);
                                if (r == 0 && v != (uint64_t)pid)
                                        fprintf(stderr, "getpid gave %ld (round %d)\n", (long)v, round);
                                if (r == 0)
                                        CHECK(v == (uint64_t)pid);
                                r = proc_resume_all(p, &e);
                        }
                        proc_free(p);
                }
                /* The victim is our child: when it exited while attached,
                 * its exit status went to us as its tracer (ECHILD here). */
                int status;
                pid_t w = waitpid(pid, &status, 0);
                CHECK(w == pid || (w < 0 && errno == ECHILD));
                if (w == pid)
                        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                CHECK(kill(pid, 0) < 0 && errno == ESRCH);
        }
}

/* Killed from outside in the middle of a stop window: clean errors, and
 * nothing left traced or stuck. */
TEST(target_killed_while_stopped)
{
        for (int round = 0; round < 20; round++) {
                pid_t pid = start_victim(V_BLOCKED, 2);
                _cleanup_(proc_freep) struct proc *p = NULL;
                struct errbuf e = {};
                uint64_t v;
                int r;

                CHECK_OK(proc_attach(pid, NULL, &p, &e));
                CHECK_OK(proc_stop_all(p, &e));
                if (round % 2)
                        CHECK_OK(proc_syscall(p, NULL, SYS_getpid, (uint64_t[6]){ 0 }, &v, &e));
                kill(pid, SIGKILL);
                r = proc_syscall(p, NULL, SYS_getpid, (uint64_t[6]){ 0 }, &v, &e);
                if (r != 0 && r != -ESRCH)
                        fprintf(stderr, "syscall after kill: %s (%s)\n", strerror(-r), e.msg);
                CHECK(r == 0 || r == -ESRCH);
                r = proc_resume_all(p, &e);
                CHECK(r == 0 || r == -ESRCH);
                r = proc_stop_all(p, &e);
                CHECK(r == 0 || r == -ESRCH);
                proc_free(TAKE_PTR(p));
                pid_t w = waitpid(pid, NULL, 0);
                CHECK(w == pid || (w < 0 && errno == ECHILD));
                CHECK(kill(pid, 0) < 0 && errno == ESRCH);
                munmap(sh, sizeof(*sh));
        }
}

TEST(remote_syscalls_and_memory)
{
        pid_t pid = start_victim(V_BLOCKED, 2);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};
        uint64_t v, addr;
        char buf[64];

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        CHECK_OK(proc_stop_all(p, &e));
        CHECK_OK(proc_syscall(p, NULL, SYS_getpid, (uint64_t[6]){ 0 }, &v, &e));
        CHECK(v == (uint64_t)pid);

        /* Inject into every thread, including those blocked in syscalls. */
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                CHECK_OK(proc_syscall(p, t, SYS_gettid, (uint64_t[6]){ 0 }, &v, &e));
                CHECK(v == (uint64_t)t->tid);
        }

        CHECK_OK(proc_mmap(p, 0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                           0, &addr, &e));
        CHECK(addr != 0);
        CHECK_OK(proc_write(p, addr + 100, "hello, target", 14));
        CHECK_OK(proc_read(p, addr + 100, buf, 14));
        CHECK_STREQ(buf, "hello, target");
        /* It is really there: the maps show it. */
        struct procfs_maps m = {};
        CHECK_OK(procfs_maps_read(pid, &m));
        CHECK(procfs_maps_find(&m, addr) != NULL);
        procfs_maps_done(&m);
        CHECK_OK(proc_munmap(p, addr, 8192, &e));
        CHECK_OK(procfs_maps_read(pid, &m));
        const struct procfs_map *hit = procfs_maps_find(&m, addr);
        CHECK(hit == NULL || hit->start > addr || hit->end <= addr);
        procfs_maps_done(&m);
        CHECK_ERR(proc_read(p, addr, buf, 8), EFAULT);

        /* A failing syscall reports its errno, the thread survives. */
        CHECK_ERR(proc_mmap(p, 1, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                            0, &addr, &e),
                  EINVAL);

        CHECK_OK(proc_resume_all(p, &e));
        CHECK_OK(proc_detach(p));

        /* The threads we borrowed still do their job, without EINTR. */
        check_reader_works();
        CHECK(atomic_load(&sh->eintr) == 0);
        long pr = atomic_load(&sh->progress);
        CHECK(wait_progress(pr) > pr);
        stop_victim(pid);
}

TEST(remote_call)
{
        pid_t pid = start_victim(V_BLOCKED, 1);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};
        uint64_t v;

        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        CHECK_OK(proc_stop_all(p, &e));
        /* The child is a fork of us: same addresses. */
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                struct proc_thread *t = proc_thread_at(p, i);
                const struct arch_regs *before;
                struct arch_regs saved;
                CHECK_OK(proc_regs(p, t, &before));
                saved = *before;
                CHECK_OK(proc_call(p, t, (uint64_t)(uintptr_t)victim_add3,
                                   (uint64_t[6]){ 40, 1, 1 }, 0, &v, &e));
                CHECK(v == 42);
                const struct arch_regs *after;
                CHECK_OK(proc_regs(p, t, &after));
                CHECK(arch_regs_sp(after) == arch_regs_sp(&saved));
        }
        /* A libc function that makes syscalls of its own. */
        CHECK_OK(proc_call(p, NULL, (uint64_t)(uintptr_t)getpid, (uint64_t[6]){ 0 }, 0, &v, &e));
        CHECK(v == (uint64_t)pid);
        CHECK_OK(proc_resume_all(p, &e));
        CHECK_OK(proc_detach(p));
        check_reader_works();
        CHECK(atomic_load(&sh->eintr) == 0);
        stop_victim(pid);
}

/* Write a jump over a function's entry in a running victim: its behaviour
 * changes; restore the bytes: it changes back. */
TEST(jump_over_entry_changes_behaviour)
{
        pid_t pid = start_victim(0, 3);
        _cleanup_(proc_freep) struct proc *p = NULL;
        struct errbuf e = {};
        uint64_t from = (uint64_t)(uintptr_t)victim_value;
        uint64_t to = (uint64_t)(uintptr_t)victim_value_alt;
        uint8_t jump[16], orig[16], check[16];
        int len;

        len = arch_encode_jump(from, to, jump, sizeof(jump));
        CHECK(len > 0);
        CHECK_OK(proc_attach(pid, NULL, &p, &e));
        CHECK_OK(proc_read(p, from, orig, (size_t)len));
        CHECK_OK(proc_stop_all(p, &e));
        /* No thread may be inside the bytes we replace. */
        for (size_t i = 0; i < proc_n_threads(p); i++) {
                const struct arch_regs *r;
                CHECK_OK(proc_regs(p, proc_thread_at(p, i), &r));
                if (arch_regs_pc(r) > from && arch_regs_pc(r) < from + (uint64_t)len)
                        tap_skip("a thread is inside the entry; rerun");
        }
        CHECK_OK(proc_write(p, from, jump, (size_t)len));
        CHECK_OK(proc_read(p, from, check, (size_t)len));
        CHECK(memcmp(check, jump, (size_t)len) == 0);
        CHECK_OK(proc_resume_all(p, &e));
        long twos = atomic_load(&sh->value_twos);
        for (int i = 0; i < 5000 && atomic_load(&sh->value_twos) == twos; i++)
                usleep(1000);
        CHECK(atomic_load(&sh->value_twos) > twos);

        CHECK_OK(proc_stop_all(p, &e));
        CHECK_OK(proc_write(p, from, orig, (size_t)len));
        CHECK_OK(proc_resume_all(p, &e));
        CHECK_OK(proc_detach(p));
        long ones = atomic_load(&sh->value_ones);
        for (int i = 0; i < 5000 && atomic_load(&sh->value_ones) == ones; i++)
                usleep(1000);
        CHECK(atomic_load(&sh->value_ones) > ones);
        twos = atomic_load(&sh->value_twos);
        usleep(20000);
        CHECK(atomic_load(&sh->value_twos) == twos);
        stop_victim(pid);
}

TEST(sched_raise_and_restore)
{
        struct proc_sched_saved s;
        bool raised = proc_sched_raise(&s);

        if (getuid() == 0)
                CHECK(raised);
        if (raised)
                CHECK((sched_getscheduler(0) & ~SCHED_RESET_ON_FORK) == SCHED_FIFO);
        proc_sched_restore(&s);
        CHECK(sched_getscheduler(0) == SCHED_OTHER);
}

TAP_MAIN()
