/* bench-apply: what applying a live patch costs a running process, next
 * to the bare ptrace floor measured in the same run, and what a call to a
 * patched function costs next to a direct call.
 *
 *   bench-apply [--quick] [--json] [--reps N] [--threads LIST]
 *               [--same-session] [--victim-dir DIR] [--liveup PATH]
 *
 * Setup: a one-function patch for victim-n (tests/victims) is built with
 * the real `liveup build --replace`, from a fix written to a temporary
 * folder. It replaces victim_count_threads(), which no thread of victim-n
 * ever runs after start-up: every thread of a busy victim-n spends its
 * life in patchme() ten frames deep, so patching patchme() itself would
 * measure retries, not the stop window. The patch's body is the same as
 * the original's.
 *
 * Each victim runs in a session of its own (setsid), as a service started
 * by systemd does. With autogroup scheduling (a group per session, on by
 * default) or a cgroup per service, the CPU is then shared between the
 * victim as a whole and the shell's commands: at 16 busy threads,
 * starting a static program that does nothing took ~5 ms so, against
 * ~50 ms in the victim's own session, where it competes with each of its
 * threads. --same-session measures that case.
 *
 * For every cell (a fresh busy victim-n with 1, 16, 64, 256 threads):
 * - baseline: the bare stop-all loop of bench-stop (copied from
 *   bench/stop.c): PTRACE_SEIZE every thread; per repetition, at
 *   SCHED_FIFO, PTRACE_INTERRUPT all, waitpid until all report
 *   PTRACE_EVENT_STOP, PTRACE_GETREGS all, PTRACE_CONT all. The window
 *   runs from the first INTERRUPT to the return of the last CONT. Then
 *   every thread is detached (liveup must attach next).
 * - apply: per repetition, the real CLI is spawned, `liveup apply --json
 *   PID FILE`, and timed from fork() to the return of waitpid() (end to
 *   end: exec, dynamic linking, reading the patch, attaching, mapping,
 *   linking, the stop window, detaching). The bench itself waits at
 *   SCHED_FIFO (the child is reset to SCHED_OTHER at fork), so that its
 *   own wake-ups among the busy victims are not counted as the CLI's
 *   time; the CLI runs at nice 0 as from a shell, then again at nice -20
 *   and under SCHED_FIFO (as `chrt -f 1 liveup apply` would). Two start
 *   floors are measured beside it the same way: `liveup --version` (the
 *   CLI starting and nothing else) and bench-nop, a static program that
 *   does nothing (starting any process at all). Its JSON gives held_max_us
 *   (the longest stop window: the longest time any thread was held),
 *   held_total_us (all its stop windows: the whole time the threads were
 *   stopped), probe_held_max_us (the longest any one thread was held
 *   alone by the probe before the window), attempts, and total_us
 *   (attach to detach, inside the tool).
 *   Then `liveup revert --json PID` (its held_max_us is reported too).
 * Repetitions are 20 ms apart; the first of every series is discarded;
 * medians and p90s (nearest rank) are over the rest.
 *
 * Call cost: bench-apply-target calls callee() (6 bytes, noipa) in a
 * dependent chain, 2e7 times per measurement, and reports ns per call:
 * first as built, then with a patch that replaces callee() by the same
 * body (the call now goes through the jump at its entry), then reverted.
 * Each figure is the median of 7 measurements.
 *
 * The goals of the issue are printed beside the figures: threads held no
 * more than 1.5 times the bare baseline; apply, end to end, within 5 ms
 * at 16 threads. The bench reports what it measures; it never fails on a
 * goal. */
#include "common.h"
#include "base/procfs.h"
#include "base/util.h"

#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>

#ifndef VICTIM_DIR
#define VICTIM_DIR "."
#endif
#ifndef LIVEUP_PATH
#define LIVEUP_PATH "liveup"
#endif
#ifndef BENCH_DIR
#define BENCH_DIR "."
#endif

#define PACE_NS (20ull * 1000 * 1000)
#define READY_TIMEOUT_MS 60000
#define GOAL_HELD_RATIO 1.5
#define GOAL_APPLY_MS 5.0
#define GOAL_APPLY_THREADS 16
#define CALLS_PER_MEASURE 20000000ul
#define CALL_MEASURES 7

/* The fix for victim-n: victim_count_threads() as in
 * tests/victims/victim-common.c. */
static const char fix_count_threads[] =
        "#include <dirent.h>\n"
        "unsigned long victim_count_threads(void);\n"
        "unsigned long victim_count_threads(void)\n"
        "{\n"
        "        unsigned long n = 0;\n"
        "        struct dirent *de;\n"
        "        DIR *d;\n"
        "\n"
        "        d = opendir(\"/proc/self/task\");\n"
        "        if (!d)\n"
        "                return 0;\n"
        "        while ((de = readdir(d)))\n"
        "                if (de->d_name[0] != '.')\n"
        "                        n++;\n"
        "        closedir(d);\n"
        "        return n;\n"
        "}\n";

/* The fix for bench-apply-target: callee() with the same body. */
static const char fix_callee[] = "unsigned long callee(unsigned long x);\n"
                                 "unsigned long callee(unsigned long x)\n"
                                 "{\n"
                                 "        return x * 3 + 1;\n"
                                 "}\n";

/* How bench-apply runs a CLI: as from a shell at nice 0, at nice -20, or
 * at SCHED_FIFO priority 1. */
enum launch { AT_NICE0, AT_NICE_M20, AT_FIFO };

struct cell {
        unsigned threads;
        struct stats base_window;
        struct stats held_max, held_total, wall, tool_total, revert_held;
        struct stats prepare, switch_w; /* apply's two kinds of window */
        struct stats probe;             /* longest hold of one thread in a probe */
        double first_prepare_us;        /* the first apply: registry and arena created */
        struct stats wall_nice, tool_total_nice; /* the CLI at nice -20 */
        struct stats wall_fifo;                  /* the CLI at SCHED_FIFO */
        struct stats start_floor; /* `liveup --version`, fork to exit */
        struct stats nop_floor;   /* bench-nop (static, does nothing) */
        double attempts_avg;
        unsigned attempts_max;
        unsigned applied, refused;
        char base_error[256];
        char apply_error[512];
        char nice_error[512];
        char fifo_error[512];
};

struct call_cost {
        struct stats direct, patched, reverted;
        char error[512];
};

struct options {
        unsigned reps;
        bool json;
        const char *victim_dir;
        const char *liveup;
        unsigned threads[16];
        size_t n_threads;
        bool same_session; /* victims in the bench's session, not their own */
};

static char tmpdir[256];

struct child {
        pid_t pid;
        int in;  /* its stdin, or -1 */
        int out; /* its stdout */
};

/* Start argv[0] with stdin and stdout on pipes and wait (bounded) for
 * "ready" on its stdout. With `own_session` it runs in a session of its
 * own (setsid), as a service started by systemd does: with autogroup
 * scheduling (or a cgroup per service) its busy threads then share one
 * scheduling group, and a command started from a shell competes with that
 * group, not with each of its threads. */
static int child_start(char *const argv[], bool own_session, struct child *ret)
{
        int in[2], out[2], r = 0;
        char line[64];
        size_t len = 0;
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                close(in[0]);
                close(in[1]);
                return r;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(in[0]);
                close(in[1]);
                close(out[0]);
                close(out[1]);
                return r;
        }
        if (pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                if (own_session)
                        (void)setsid();
                execv(argv[0], argv);
                fprintf(stderr, "bench-apply: cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);

        while (len < sizeof(line) - 1) {
                struct pollfd pfd = { .fd = out[0], .events = POLLIN };
                ssize_t k;

                r = poll(&pfd, 1, READY_TIMEOUT_MS);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        r = r < 0 ? -errno : -ETIMEDOUT;
                        break;
                }
                k = read(out[0], line + len, 1); /* byte by byte: leave what follows */
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = -ECHILD;
                        break;
                }
                len += (size_t)k;
                line[len] = 0;
                if (strstr(line, "ready\n")) {
                        r = 0;
                        break;
                }
        }
        if (r < 0 || len >= sizeof(line) - 1) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                close(in[1]);
                close(out[0]);
                return r < 0 ? r : -EPROTO;
        }
        *ret = (struct child){ .pid = pid, .in = in[1], .out = out[0] };
        return 0;
}

static void child_stop(struct child *c)
{
        if (c->pid <= 0)
                return;
        kill(c->pid, SIGKILL);
        while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (c->in >= 0)
                close(c->in);
        close(c->out);
        c->pid = 0;
}

/* Send a command, read one line back (bounded). */
static int child_ask(struct child *c, const char *cmd, char *line, size_t size)
{
        size_t len = 0;

        if (write(c->in, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
                return -EIO;
        while (len < size - 1) {
                struct pollfd pfd = { .fd = c->out, .events = POLLIN };
                ssize_t k;
                int r = poll(&pfd, 1, READY_TIMEOUT_MS);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -ETIMEDOUT;
                k = read(c->out, line + len, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -ECHILD;
                if (line[len] == '\n') {
                        line[len] = 0;
                        return 0;
                }
                len++;
        }
        return -EPROTO;
}

/* Run a command to completion, launched as `how` says; its stdout (up to
 * size - 1 bytes) in out, the first line of its stderr in err, the wall
 * time from fork() to the return of waitpid() in *ret_us. We wait at
 * SCHED_FIFO (reset in the child at fork): with busy victims on every
 * CPU, a waiting parent at nice 0 is itself woken late, by up to tens of
 * milliseconds, which is not the command's time. Returns its exit
 * status, or -errno (-EPERM: that priority is not allowed). */
static int run_cmd(char *const argv[], enum launch how, char *out, size_t size, char *err,
                   size_t err_size, double *ret_us)
{
        int po[2], pe[2], status, r;
        size_t len = 0, elen = 0;
        uint64_t t0, t1;
        bool raised;
        pid_t pid;

        if (pipe2(po, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(pe, O_CLOEXEC) < 0) {
                close(po[0]);
                close(po[1]);
                return -errno;
        }
        raised = fifo_raise();
        t0 = now_ns();
        pid = fork();
        if (pid < 0) {
                r = -errno;
                fifo_lower(raised);
                close(po[0]);
                close(po[1]);
                close(pe[0]);
                close(pe[1]);
                return r;
        }
        if (pid == 0) {
                struct sched_param sp = { .sched_priority = 1 };

                dup2(po[1], STDOUT_FILENO);
                dup2(pe[1], STDERR_FILENO);
                if (how == AT_NICE_M20 && setpriority(PRIO_PROCESS, 0, -20) < 0)
                        _exit(126);
                if (how == AT_FIFO && sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
                        _exit(126);
                execv(argv[0], argv);
                fprintf(stderr, "cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        close(po[1]);
        close(pe[1]);
        for (bool o_open = true, e_open = true; o_open || e_open;) {
                struct pollfd pfd[2] = { { .fd = o_open ? po[0] : -1, .events = POLLIN },
                                         { .fd = e_open ? pe[0] : -1, .events = POLLIN } };
                char scratch[512];

                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[0].revents) {
                        ssize_t k = len < size - 1 ? read(po[0], out + len, size - 1 - len)
                                                   : read(po[0], scratch, sizeof(scratch));
                        if (k <= 0)
                                o_open = false;
                        else if (len < size - 1)
                                len += (size_t)k;
                }
                if (pfd[1].revents) {
                        ssize_t k = elen < err_size - 1
                                            ? read(pe[0], err + elen, err_size - 1 - elen)
                                            : read(pe[0], scratch, sizeof(scratch));
                        if (k <= 0)
                                e_open = false;
                        else if (elen < err_size - 1)
                                elen += (size_t)k;
                }
        }
        close(po[0]);
        close(pe[0]);
        while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
                ;
        t1 = now_ns();
        fifo_lower(raised);
        if (r < 0)
                return -errno;
        out[len] = 0;
        err[elen] = 0;
        err[strcspn(err, "\n")] = 0;
        if (ret_us)
                *ret_us = us_since(t0, t1);
        if (how != AT_NICE0 && WIFEXITED(status) && WEXITSTATUS(status) == 126)
                return -EPERM;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- building the patches ------------------------------------------------ */

static int write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t n = strlen(text);
        int r = 0;

        if (fd < 0)
                return -errno;
        if (write(fd, text, n) != (ssize_t)n)
                r = -EIO;
        close(fd);
        return r;
}

/* `liveup build --replace DIR/NAME.c --target TARGET -o DIR/NAME.lpo`. */
static int build_patch(const struct options *o, const char *name, const char *source,
                       const char *target, char *ret_path, size_t size, char *err,
                       size_t err_size)
{
        char src[512], out[4096], e[512];
        int r;

        snprintf(src, sizeof(src), "%s/%s.c", tmpdir, name);
        snprintf(ret_path, size, "%s/%s.lpo", tmpdir, name);
        r = write_file(src, source);
        if (r < 0) {
                snprintf(err, err_size, "cannot write %.300s: %s", src, strerror(-r));
                return r;
        }
        char *argv[] = { (char *)o->liveup, "build", "--replace", src, "--target",
                         (char *)target, "-o", ret_path, NULL };
        r = run_cmd(argv, AT_NICE0, out, sizeof(out), e, sizeof(e), NULL);
        if (r != 0) {
                snprintf(err, err_size, "liveup build for %.200s: %.250s", target,
                         r < 0 ? strerror(-r) : e);
                return r < 0 ? r : -EIO;
        }
        return 0;
}

/* ---- baseline: raw ptrace (as bench/stop.c) ------------------------------- */

static void run_baseline(pid_t pid, unsigned reps, struct cell *c)
{
        _cleanup_free_ pid_t *tids = NULL;
        struct series window = {};
        size_t n = 0, n_seized = 0;
        int r;

        r = procfs_tasks(pid, &tids, &n);
        if (r < 0) {
                snprintf(c->base_error, sizeof(c->base_error), "listing threads: %s",
                         strerror(-r));
                return;
        }
        if (series_init(&window, reps) < 0) {
                snprintf(c->base_error, sizeof(c->base_error), "out of memory");
                return;
        }
        for (; n_seized < n; n_seized++)
                if (ptrace(PTRACE_SEIZE, tids[n_seized], 0, 0) < 0) {
                        snprintf(c->base_error, sizeof(c->base_error), "seize %d: %s",
                                 tids[n_seized], strerror(errno));
                        goto out_detach;
                }

        for (unsigned rep = 0; rep < reps; rep++) {
                struct user_regs_struct regs;
                uint64_t t0, t1;
                bool raised;

                pace();
                raised = fifo_raise();
                t0 = now_ns();
                for (size_t i = 0; i < n; i++)
                        ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
                r = wait_all_stopped(tids, n, c->base_error, sizeof(c->base_error));
                if (r < 0) {
                        fifo_lower(raised);
                        goto out_detach;
                }
                for (size_t i = 0; i < n; i++)
                        ptrace(PTRACE_GETREGS, tids[i], 0, &regs);
                for (size_t i = 0; i < n; i++)
                        ptrace(PTRACE_CONT, tids[i], 0, 0);
                t1 = now_ns();
                fifo_lower(raised);
                window.v[window.n++] = us_since(t0, t1);
        }
        c->base_window = stats_of(&window, 1);

out_detach:
        /* PTRACE_DETACH needs a stopped tracee. */
        for (size_t i = 0; i < n_seized; i++)
                ptrace(PTRACE_INTERRUPT, tids[i], 0, 0);
        if (n_seized == n) {
                char ignored[64];
                wait_all_stopped(tids, n, ignored, sizeof(ignored));
        }
        for (size_t i = 0; i < n_seized; i++)
                ptrace(PTRACE_DETACH, tids[i], 0, 0);
        series_done(&window);
}

/* ---- liveup apply / revert, end to end ----------------------------------- */

static int64_t json_int(struct json_object *o, const char *key)
{
        struct json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v))
                return -1;
        return json_object_get_int64(v);
}

/* The first element of `array` in the document `text`. */
static struct json_object *first_of(struct json_object *doc, const char *array)
{
        struct json_object *a;

        if (!doc || !json_object_object_get_ex(doc, array, &a) ||
            !json_object_is_type(a, json_type_array) || json_object_array_length(a) < 1)
                return NULL;
        return json_object_array_get_idx(a, 0);
}

struct sample {
        double wall_us, held_max_us, held_total_us, total_us, revert_held_us;
        double prepare_us, switch_us, probe_us;
        unsigned attempts;
};

/* One `liveup apply --json` then `liveup revert --json`, the CLI launched
 * as `how` says. Returns 0 and fills the sample; 1 when apply was refused
 * (exit 1); -errno when the series cannot go on. */
static int apply_once(const struct options *o, pid_t pid, const char *lpo, enum launch how,
                      struct sample *ret, char *error, size_t error_size)
{
        char pidbuf[16], out[8192], err[512];
        struct json_object *doc, *p;
        struct sample smp = {};
        int r;

        snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
        char *apply_argv[] = { (char *)o->liveup, "apply", "--json", pidbuf, (char *)lpo, NULL };
        char *revert_argv[] = { (char *)o->liveup, "revert", "--json", pidbuf, NULL };

        pace();
        r = run_cmd(apply_argv, how, out, sizeof(out), err, sizeof(err), &smp.wall_us);
        doc = json_tokener_parse(out);
        p = first_of(doc, "processes");
        if (r != 0 || !p) {
                snprintf(error, error_size, "apply exit %d: %.400s", r,
                         r == -EPERM ? "priority refused" : err[0] ? err : "no JSON");
                json_object_put(doc);
                return r == 1 && p ? 1 : -EIO;
        }
        smp.held_max_us = (double)json_int(p, "held_max_us");
        smp.held_total_us = (double)json_int(p, "held_total_us");
        smp.prepare_us = (double)json_int(p, "prepare_us");
        smp.switch_us = (double)json_int(p, "switch_us");
        smp.probe_us = (double)json_int(p, "probe_held_max_us");
        smp.total_us = (double)json_int(p, "total_us");
        smp.attempts = (unsigned)json_int(p, "attempts");
        json_object_put(doc);

        pace();
        r = run_cmd(revert_argv, how, out, sizeof(out), err, sizeof(err), NULL);
        doc = json_tokener_parse(out);
        p = first_of(doc, "reverted");
        if (r != 0 || !p) {
                snprintf(error, error_size, "revert exit %d: %.400s", r,
                         err[0] ? err : "no JSON");
                json_object_put(doc);
                return -EIO; /* the next apply would be refused */
        }
        smp.revert_held_us = (double)json_int(p, "held_max_us");
        json_object_put(doc);
        *ret = smp;
        return 0;
}

/* The wall time of `argv` run at nice 0, added to `s` when it exits 0. */
static void time_start(const char *const argv[], struct series *s)
{
        char out[64], err[64];
        double us = 0;

        pace();
        if (run_cmd((char *const *)argv, AT_NICE0, out, sizeof(out), err, sizeof(err), &us) == 0)
                s->v[s->n++] = us;
}

static void run_apply(const struct options *o, pid_t pid, const char *lpo, struct cell *c)
{
        struct series held_max = {}, held_total = {}, wall = {}, total = {}, revert_held = {},
                      wall_nice = {}, total_nice = {}, floor = {}, prepare = {}, switch_w = {},
                      wall_fifo = {}, nop = {}, probe = {};
        double attempts_sum = 0;
        unsigned attempts_n = 0;
        bool nice_ok = true, fifo_ok_cli = true;

        if (series_init(&held_max, o->reps) < 0 || series_init(&held_total, o->reps) < 0 ||
            series_init(&wall, o->reps) < 0 || series_init(&total, o->reps) < 0 ||
            series_init(&revert_held, o->reps) < 0 || series_init(&wall_nice, o->reps) < 0 ||
            series_init(&total_nice, o->reps) < 0 || series_init(&floor, o->reps) < 0 ||
            series_init(&prepare, o->reps) < 0 || series_init(&switch_w, o->reps) < 0 ||
            series_init(&wall_fifo, o->reps) < 0 || series_init(&nop, o->reps) < 0 ||
            series_init(&probe, o->reps) < 0) {
                snprintf(c->apply_error, sizeof(c->apply_error), "out of memory");
                goto out;
        }
        for (unsigned rep = 0; rep < o->reps; rep++) {
                struct sample smp;
                int r;

                r = apply_once(o, pid, lpo, AT_NICE0, &smp, c->apply_error,
                               sizeof(c->apply_error));
                if (r < 0)
                        goto out;
                if (r > 0) {
                        c->refused++;
                        continue;
                }
                c->applied++;
                wall.v[wall.n++] = smp.wall_us;
                held_max.v[held_max.n++] = smp.held_max_us;
                held_total.v[held_total.n++] = smp.held_total_us;
                prepare.v[prepare.n++] = smp.prepare_us;
                switch_w.v[switch_w.n++] = smp.switch_us;
                probe.v[probe.n++] = smp.probe_us;
                if (rep == 0)
                        c->first_prepare_us = smp.prepare_us;
                total.v[total.n++] = smp.total_us;
                revert_held.v[revert_held.n++] = smp.revert_held_us;
                if (rep > 0) {
                        attempts_sum += smp.attempts;
                        attempts_n++;
                        c->attempts_max = MAX(c->attempts_max, smp.attempts);
                }

                /* The floors beside the same busy victim: the CLI
                 * starting (its libraries, nothing else), and any program
                 * starting at all. */
                time_start((const char *const[]){ o->liveup, "--version", NULL }, &floor);
                time_start((const char *const[]){ BENCH_DIR "/bench-nop", NULL }, &nop);

                /* The same apply with the CLI at nice -20, then at
                 * SCHED_FIFO: how much of the end to end time is waiting
                 * for a CPU. */
                if (nice_ok) {
                        r = apply_once(o, pid, lpo, AT_NICE_M20, &smp, c->nice_error,
                                       sizeof(c->nice_error));
                        if (r < 0)
                                nice_ok = false;
                        else if (r == 0) {
                                wall_nice.v[wall_nice.n++] = smp.wall_us;
                                total_nice.v[total_nice.n++] = smp.total_us;
                        }
                }
                if (fifo_ok_cli) {
                        r = apply_once(o, pid, lpo, AT_FIFO, &smp, c->fifo_error,
                                       sizeof(c->fifo_error));
                        if (r < 0)
                                fifo_ok_cli = false;
                        else if (r == 0)
                                wall_fifo.v[wall_fifo.n++] = smp.wall_us;
                }
        }
out:
        c->held_max = stats_of(&held_max, 1);
        c->held_total = stats_of(&held_total, 1);
        c->wall = stats_of(&wall, 1);
        c->tool_total = stats_of(&total, 1);
        c->revert_held = stats_of(&revert_held, 1);
        c->wall_nice = stats_of(&wall_nice, 1);
        c->tool_total_nice = stats_of(&total_nice, 1);
        c->start_floor = stats_of(&floor, 1);
        c->nop_floor = stats_of(&nop, 1);
        c->wall_fifo = stats_of(&wall_fifo, 1);
        c->prepare = stats_of(&prepare, 1);
        c->switch_w = stats_of(&switch_w, 1);
        c->probe = stats_of(&probe, 1);
        c->attempts_avg = attempts_n ? attempts_sum / attempts_n : 0;
        series_done(&held_max);
        series_done(&held_total);
        series_done(&wall);
        series_done(&total);
        series_done(&revert_held);
        series_done(&wall_nice);
        series_done(&total_nice);
        series_done(&floor);
        series_done(&nop);
        series_done(&wall_fifo);
        series_done(&prepare);
        series_done(&switch_w);
        series_done(&probe);
}

/* ---- call cost ------------------------------------------------------------ */

static int measure_calls(struct child *t, struct stats *ret, char *err, size_t err_size)
{
        struct series s = {};
        char cmd[64], line[128];
        int r;

        if (series_init(&s, CALL_MEASURES + 1) < 0)
                return -ENOMEM;
        snprintf(cmd, sizeof(cmd), "measure %lu\n", CALLS_PER_MEASURE);
        for (unsigned i = 0; i < CALL_MEASURES + 1; i++) {
                r = child_ask(t, cmd, line, sizeof(line));
                if (r < 0 || strncmp(line, "ns=", 3) != 0) {
                        snprintf(err, err_size, "bench-apply-target: %s",
                                 r < 0 ? strerror(-r) : line);
                        series_done(&s);
                        return r < 0 ? r : -EPROTO;
                }
                s.v[s.n++] = strtod(line + 3, NULL);
        }
        *ret = stats_of(&s, 1);
        series_done(&s);
        return 0;
}

static void run_call_cost(const struct options *o, struct call_cost *cc)
{
        char target[512], lpo[512], pidbuf[16], out[8192], err[512];
        struct child t = { .in = -1 };
        int r;

        snprintf(target, sizeof(target), "%s/bench-apply-target", BENCH_DIR);
        r = build_patch(o, "callee", fix_callee, target, lpo, sizeof(lpo), cc->error,
                        sizeof(cc->error));
        if (r < 0)
                return;
        char *argv[] = { target, NULL };
        r = child_start(argv, !o->same_session, &t);
        if (r < 0) {
                snprintf(cc->error, sizeof(cc->error), "cannot start %.300s: %s", target,
                         strerror(-r));
                return;
        }
        snprintf(pidbuf, sizeof(pidbuf), "%d", t.pid);
        if (measure_calls(&t, &cc->direct, cc->error, sizeof(cc->error)) < 0)
                goto out;
        char *apply_argv[] = { (char *)o->liveup, "apply", pidbuf, lpo, NULL };
        r = run_cmd(apply_argv, AT_NICE0, out, sizeof(out), err, sizeof(err), NULL);
        if (r != 0) {
                snprintf(cc->error, sizeof(cc->error), "apply exit %d: %.400s", r, err);
                goto out;
        }
        if (measure_calls(&t, &cc->patched, cc->error, sizeof(cc->error)) < 0)
                goto out;
        char *revert_argv[] = { (char *)o->liveup, "revert", pidbuf, NULL };
        r = run_cmd(revert_argv, AT_NICE0, out, sizeof(out), err, sizeof(err), NULL);
        if (r != 0) {
                snprintf(cc->error, sizeof(cc->error), "revert exit %d: %.400s", r, err);
                goto out;
        }
        (void)measure_calls(&t, &cc->reverted, cc->error, sizeof(cc->error));
out:
        child_stop(&t);
}

/* ---- output --------------------------------------------------------------- */

static void fmt_ms(char *buf, size_t size, const struct stats *s)
{
        if (s->valid)
                snprintf(buf, size, "%.1f / %.1f", s->median / 1000, s->p90 / 1000);
        else
                snprintf(buf, size, "n/a");
}

static double ratio_of(const struct stats *a, const struct stats *b)
{
        if (!a->valid || !b->valid || b->median <= 0)
                return NAN;
        return a->median / b->median;
}

static void print_table_header(const struct options *o)
{
        printf("bench-apply: a one-function live patch into busy victim-n, median / p90 over "
               "%u repetitions\n",
               o->reps - 1);
        printf("victims: %s\n", o->same_session
                                         ? "in the bench's session (--same-session): a command "
                                           "competes with each of their threads"
                                         : "each in a session of its own, as a service is "
                                           "(--same-session to share the bench's)");
        if (fifo_ok)
                printf("baseline tracer: SCHED_FIFO priority 1 during each window\n");
        else
                printf("baseline tracer: normal priority (SCHED_FIFO refused: %s)\n", fifo_error);
        printf("\nstop windows (µs):\n%7s  %13s  %13s  %5s  %-4s  %13s  %11s  %13s  %9s  %13s  "
               "%8s  %13s\n",
               "threads", "baseline", "held", "ratio", "≤1.5", "switch", "probe", "prepare",
               "1st prep", "all stops", "attempts", "revert");
}

static void fmt_ratio(char *buf, size_t size, const struct stats *a, const struct stats *b)
{
        double q = ratio_of(a, b);

        if (isnan(q))
                snprintf(buf, size, "n/a");
        else
                snprintf(buf, size, "%.2f", q);
}

static void print_table_row(const struct cell *c)
{
        char base[32], held[32], sw[32], prep[32], first[32], total[32], rev[32], probe[32],
                ratio[16], att[16] = "n/a";
        double q = ratio_of(&c->held_max, &c->base_window);

        fmt_stat(base, sizeof(base), &c->base_window);
        fmt_stat(held, sizeof(held), &c->held_max);
        fmt_stat(sw, sizeof(sw), &c->switch_w);
        fmt_stat(prep, sizeof(prep), &c->prepare);
        fmt_stat(total, sizeof(total), &c->held_total);
        fmt_stat(rev, sizeof(rev), &c->revert_held);
        fmt_ratio(ratio, sizeof(ratio), &c->held_max, &c->base_window);
        fmt_stat(probe, sizeof(probe), &c->probe);
        snprintf(first, sizeof(first), "%.0f", c->first_prepare_us);
        if (c->applied > 1)
                snprintf(att, sizeof(att), "%.1f", c->attempts_avg);
        printf("%7u  %13s  %13s  %5s  %-4s  %13s  %11s  %13s  %9s  %13s  %8s  %13s\n",
               c->threads, base, held, ratio,
               isnan(q) ? "" : q <= GOAL_HELD_RATIO ? "yes" : "no", sw, probe, prep, first,
               total, att, rev);
        fflush(stdout);
}

static void print_time_table(const struct cell *cells, size_t n)
{
        printf("\nend to end (ms):\n%7s  %13s  %-4s  %13s  %13s  %-4s  %13s  %13s  %13s\n",
               "threads", "apply", "≤5ms", "apply at -20", "apply at FIFO", "≤5ms", "in tool",
               "liveup start", "any start");
        for (size_t i = 0; i < n; i++) {
                const struct cell *c = &cells[i];
                char wall[32], tool[32], wall_nice[32], wall_fifo[32], start[32], nop[32];
                const char *goal = "", *goal_fifo = "";

                fmt_ms(wall, sizeof(wall), &c->wall);
                fmt_ms(tool, sizeof(tool), &c->tool_total);
                fmt_ms(wall_nice, sizeof(wall_nice), &c->wall_nice);
                fmt_ms(wall_fifo, sizeof(wall_fifo), &c->wall_fifo);
                fmt_ms(start, sizeof(start), &c->start_floor);
                fmt_ms(nop, sizeof(nop), &c->nop_floor);
                if (c->threads == GOAL_APPLY_THREADS && c->wall.valid)
                        goal = c->wall.median / 1000 <= GOAL_APPLY_MS ? "yes" : "no";
                if (c->threads == GOAL_APPLY_THREADS && c->wall_fifo.valid)
                        goal_fifo = c->wall_fifo.median / 1000 <= GOAL_APPLY_MS ? "yes" : "no";
                printf("%7u  %13s  %-4s  %13s  %13s  %-4s  %13s  %13s  %13s\n", c->threads, wall,
                       goal, wall_nice, wall_fifo, goal_fifo, tool, start, nop);
        }
}

static void print_call_cost(const struct call_cost *cc)
{
        printf("\ncall cost (bench-apply-target, callee() in a dependent chain, %lu calls per "
               "measurement, median of %u):\n",
               CALLS_PER_MEASURE, CALL_MEASURES);
        if (cc->direct.valid)
                printf("  direct call             %6.2f ns/call\n", cc->direct.median);
        if (cc->patched.valid)
                printf("  patched (same body)     %6.2f ns/call  (%+.2f ns: the jump at the "
                       "entry)\n",
                       cc->patched.median, cc->patched.median - cc->direct.median);
        if (cc->reverted.valid)
                printf("  reverted                %6.2f ns/call\n", cc->reverted.median);
        if (cc->error[0])
                printf("  error: %s\n", cc->error);
}

static void print_table_notes(const struct cell *cells, size_t n)
{
        bool any = false;

        for (size_t i = 0; i < n; i++) {
                const struct cell *c = &cells[i];

                if (c->base_error[0] || c->apply_error[0] || c->refused || c->nice_error[0] ||
                    c->fifo_error[0]) {
                        if (!any)
                                printf("\n");
                        any = true;
                }
                if (c->base_error[0])
                        printf("%u threads, baseline: %s\n", c->threads, c->base_error);
                if (c->refused || c->apply_error[0])
                        printf("%u threads, apply: %u of %u refused%s%s\n", c->threads,
                               c->refused, c->applied + c->refused,
                               c->apply_error[0] ? "; last error: " : "", c->apply_error);
                if (c->nice_error[0])
                        printf("%u threads, apply at nice -20: %s\n", c->threads, c->nice_error);
                if (c->fifo_error[0])
                        printf("%u threads, apply at SCHED_FIFO: %s\n", c->threads,
                               c->fifo_error);
        }
        printf("\nbaseline = bare PTRACE_INTERRUPT/waitpid/GETREGS/CONT of every thread;\n"
               "held = apply's held_max_us, the longest stop window (the longest any thread "
               "was held);\n"
               "ratio = held / baseline (medians), goal ≤ %.1f;\n"
               "switch = the window of the stop check: stopping every thread, unwinding every "
               "stack,\n"
               "  writing the jump and the registry, detaching;\n"
               "probe = apply's probe_held_max_us: before the window, every thread is stopped "
               "alone,\n"
               "  its stack checked and resumed; the longest any one thread was held so;\n"
               "prepare = the preparation window: every thread stopped while one runs the "
               "remote\n"
               "  syscalls; only the first patch near the object has one (mmap of the "
               "arena's code and\n"
               "  data parts, and the registry's memfd_create, ftruncate, mmap, close), "
               "later ones are\n"
               "  carved from the arena with no syscall (0 here);\n"
               "1st prep = the preparation of the first apply into the process (the one that "
               "creates the\n"
               "  registry and the arena; left out of the medians, like every series' first "
               "run);\n"
               "all stops = apply's held_total_us, every stop window of the apply together;\n"
               "attempts = stop-check windows per apply (mean);\n"
               "revert = revert's held_max_us (an image in an arena is not unmapped: its "
               "space is freed\n"
               "  by a registry write);\n"
               "apply = `liveup apply` end to end, fork to exit, the CLI at nice 0 as from a "
               "shell,\n"
               "  goal ≤ %.0f ms at %d threads (the bench waits at SCHED_FIFO, so that its own "
               "wake-up\n"
               "  among the busy victims is not counted);\n"
               "apply at -20 / at FIFO = the same, the CLI at nice -20 / at SCHED_FIFO "
               "priority 1\n"
               "  (`chrt -f 1 liveup apply ...`), the victims at nice 0;\n"
               "in tool = apply's total_us, attach to detach (the CLI at nice 0);\n"
               "liveup start = `liveup --version` end to end at nice 0 beside the same victim: "
               "starting\n"
               "  the CLI (fork, exec, dynamic linking) and nothing else;\n"
               "any start = bench-nop, a static program that does nothing, the same way: the "
               "floor of\n"
               "  starting any process beside these busy threads.\n",
               GOAL_HELD_RATIO, GOAL_APPLY_MS, GOAL_APPLY_THREADS);
}

static void json_number(double v)
{
        if (isnan(v))
                printf("null");
        else
                printf("%.3f", v);
}

static void print_json(const struct options *o, const struct cell *cells, size_t n,
                       const struct call_cost *cc)
{
        printf("{\"bench\": \"apply\", \"unit\": \"us\", \"reps\": %u, \"sched_fifo\": %s, "
               "\"victim_session\": \"%s\", ",
               o->reps - 1, fifo_ok ? "true" : "false", o->same_session ? "bench" : "own");
        printf("\"goals\": {\"held_ratio_max\": %.1f, \"apply_ms_max\": %.1f, "
               "\"apply_ms_threads\": %d}, \"cells\": [",
               GOAL_HELD_RATIO, GOAL_APPLY_MS, GOAL_APPLY_THREADS);
        for (size_t i = 0; i < n; i++) {
                const struct cell *c = &cells[i];

                printf("%s\n  {\"threads\": %u, ", i ? "," : "", c->threads);
                json_stat("baseline_window", &c->base_window, true);
                json_stat("held_max", &c->held_max, true);
                json_stat("held_total", &c->held_total, true);
                json_stat("switch", &c->switch_w, true);
                json_stat("probe_held_max", &c->probe, true);
                json_stat("prepare", &c->prepare, true);
                printf("\"first_prepare_us\": %.0f, ", c->first_prepare_us);
                json_stat("apply_wall", &c->wall, true);
                json_stat("apply_in_tool", &c->tool_total, true);
                json_stat("start_floor", &c->start_floor, true);
                json_stat("start_nop", &c->nop_floor, true);
                json_stat("apply_wall_fifo", &c->wall_fifo, true);
                json_stat("apply_wall_nice_minus_20", &c->wall_nice, true);
                json_stat("apply_in_tool_nice_minus_20", &c->tool_total_nice, true);
                json_stat("revert_held_max", &c->revert_held, true);
                printf("\"held_ratio\": ");
                json_number(ratio_of(&c->held_max, &c->base_window));
                printf(", \"attempts_avg\": %.2f, \"attempts_max\": %u, \"applied\": %u, "
                       "\"refused\": %u, \"baseline_error\": ",
                       c->attempts_avg, c->attempts_max, c->applied, c->refused);
                json_error(c->base_error);
                printf(", \"apply_error\": ");
                json_error(c->apply_error);
                printf(", \"nice_error\": ");
                json_error(c->nice_error);
                printf(", \"fifo_error\": ");
                json_error(c->fifo_error);
                printf("}");
        }
        printf("\n], \"call_cost_ns\": {");
        json_stat("direct", &cc->direct, true);
        json_stat("patched", &cc->patched, true);
        json_stat("reverted", &cc->reverted, true);
        printf("\"error\": ");
        json_error(cc->error);
        printf("}}\n");
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
        fprintf(f, "usage: bench-apply [--quick] [--json] [--reps N] [--threads N,N,...]\n"
                   "                   [--same-session] [--victim-dir DIR] [--liveup PATH]\n"
                   "  --quick         5 repetitions per cell instead of 21 (the first is\n"
                   "                  always discarded)\n"
                   "  --json          one JSON document on stdout instead of the table\n"
                   "  --threads LIST  thread counts (default 1,16,64,256)\n"
                   "  --same-session  run the victims in the bench's session (by default\n"
                   "                  each has its own, as a service does); with autogroup\n"
                   "                  scheduling the commands then compete with each busy\n"
                   "                  thread, not with the victim as a whole\n"
                   "  --victim-dir    where victim-n is (default $LIVEUP_VICTIM_DIR, or\n"
                   "                  the build's tests/victims)\n"
                   "  --liveup PATH   the liveup binary (default $LIVEUP, or the build's)\n");
}

static void remove_tmpdir(void)
{
        static const char *const names[] = { "count.c", "count.lpo", "callee.c",
                                              "callee.lpo" };
        char path[512];

        if (!tmpdir[0])
                return;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
                unlink(path);
        }
        rmdir(tmpdir);
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "quick", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { "reps", required_argument, NULL, 'r' },
                { "threads", required_argument, NULL, 't' },
                { "same-session", no_argument, NULL, 's' },
                { "victim-dir", required_argument, NULL, 'd' },
                { "liveup", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct options o = {
                .reps = 21,
                .threads = { 1, 16, 64, 256 },
                .n_threads = 4,
        };
        _cleanup_free_ struct cell *cells = NULL;
        struct call_cost cc = {};
        char victim[512], lpo[512], err[512];
        const char *env;
        int opt, r;

        env = getenv("LIVEUP_VICTIM_DIR");
        o.victim_dir = env && *env ? env : VICTIM_DIR;
        env = getenv("LIVEUP");
        o.liveup = env && *env ? env : LIVEUP_PATH;

        while ((opt = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (opt) {
                case 'q':
                        o.reps = 5;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'r':
                        if (parse_reps(optarg, &o.reps) < 0) {
                                fprintf(stderr, "bench-apply: bad --reps '%s' (2..100000)\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 't':
                        if (parse_thread_list(optarg, o.threads, ELEMENTSOF(o.threads),
                                              &o.n_threads) < 0) {
                                fprintf(stderr, "bench-apply: bad --threads '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        o.same_session = true;
                        break;
                case 'd':
                        o.victim_dir = optarg;
                        break;
                case 'l':
                        o.liveup = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }

        snprintf(tmpdir, sizeof(tmpdir), "%s/bench-apply.XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(tmpdir)) {
                fprintf(stderr, "bench-apply: cannot make %s: %m\n", tmpdir);
                return 1;
        }
        atexit(remove_tmpdir);
        snprintf(victim, sizeof(victim), "%s/victim-n", o.victim_dir);
        r = build_patch(&o, "count", fix_count_threads, victim, lpo, sizeof(lpo), err,
                        sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bench-apply: %s\n", err);
                return 1;
        }

        cells = calloc(o.n_threads, sizeof(*cells));
        if (!cells)
                return 1;
        if (!o.json) {
                /* The header names the scheduling class; find out first. */
                bool raised = fifo_raise();
                fifo_lower(raised);
                print_table_header(&o);
        }
        for (size_t i = 0; i < o.n_threads; i++) {
                struct cell *c = &cells[i];
                struct child v = { .in = -1 };
                char nbuf[16];

                c->threads = o.threads[i];
                snprintf(nbuf, sizeof(nbuf), "%u", c->threads);
                char *vargv[] = { victim, nbuf, "busy", NULL };
                r = child_start(vargv, !o.same_session, &v);
                if (r < 0) {
                        fprintf(stderr, "bench-apply: cannot start %s %u busy: %s\n", victim,
                                c->threads, strerror(-r));
                        return 1;
                }
                run_baseline(v.pid, o.reps, c);
                run_apply(&o, v.pid, lpo, c);
                child_stop(&v);
                if (!o.json)
                        print_table_row(c);
        }
        run_call_cost(&o, &cc);

        if (o.json)
                print_json(&o, cells, o.n_threads, &cc);
        else {
                print_time_table(cells, o.n_threads);
                print_call_cost(&cc);
                print_table_notes(cells, o.n_threads);
        }
        return 0;
}
