/* `liveup stacks PID`: every thread's id, name, state and stack, exactly
 * as the stop-mode consistency check sees them (DESIGN.md: stop every
 * thread, unwind every stack with CFI, return addresses included).
 *
 * Order of work, chosen to keep the target stopped as briefly as
 * possible:
 *   1. thread names and states from /proc, before attaching (the state as
 *      the user sees it, "sleeping", not our ptrace-stop);
 *   2. attach, read the liveup registry if the process has one, set up the
 *      unwinder (opens every mapped object: slow, done while the threads
 *      run) with the code of every live patch, so that stacks through a
 *      replacement function are followed as the stop check follows them;
 *   3. the stop window, under SCHED_FIFO: stop all, unwind each thread
 *      (registers + stack reads only), resume all;
 *   4. detach, then symbolise with src/elf (~30x the cost of unwinding).
 * The window printed ("held stopped") is step 3 from the first stop
 * request to the return of the last resume: an upper bound.
 *
 * Terminal signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are held blocked
 * from attach to detach, so an interrupted run still detaches cleanly and
 * then dies of the signal. Nothing is printed on stdout before the target
 * is detached; with --json stdout carries one JSON document and nothing
 * else. */
#include "cli/cli.h"

#include "base/log.h"
#include "base/procfs.h"
#include "base/util.h"
#include "elf/elf.h"
#include "livepatch/registry.h"
#include "livepatch/unwinder.h"
#include "proc/proc.h"
#include "proc/unwind.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>

#define MAX_FRAMES_LIMIT 65536u

struct stacks_opts {
        bool json;
        size_t max_frames; /* 0: the unwinder's default */
        double timeout;    /* 0: proc's default */
};

struct thread_info {
        pid_t tid;
        char name[64];
        char state;       /* /proc state letter, 0 when unknown */
        bool gone;        /* exited before its state could be read */
        int unwind_r;     /* < 0: the thread could not be unwound at all */
        bool unborn;      /* created during the stop, has not run yet */
        struct proc_stack stack;
};

struct snapshot {
        pid_t pid;
        char command[64];
        uint64_t held_ns;
        struct thread_info *threads;
        size_t n;
        /* The live patches, to name frames in their code; NULL: none. */
        struct lp_registry *reg;
};

static void snapshot_done(struct snapshot *s)
{
        for (size_t i = 0; i < s->n; i++)
                proc_stack_done(&s->threads[i].stack);
        free(s->threads);
        s->threads = NULL;
        s->n = 0;
        free(s->reg);
        s->reg = NULL;
}

void verb_stacks_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup stacks PID [--json] [--max-frames N] [--timeout SECS]\n"
                "\n"
                "Stop every thread of process PID briefly, unwind each stack as the\n"
                "consistency check of 'apply' sees it, resume, and print the thread ids,\n"
                "names, states and frames (function+offset, object).\n"
                "\n"
                "Options:\n"
                "      --json          one JSON document on stdout\n"
                "      --max-frames N  keep at most N frames per thread (default 256)\n"
                "      --timeout SECS  how long to wait for the threads to settle when\n"
                "                      attaching (default 10)\n"
                "  -v, --verbose       debug messages on stderr\n"
                "  -h, --help          show this help\n"
                "\n"
                "Exit status: 0 success, 1 could not attach or stop (the process is left\n"
                "as it was), 2 bad usage. See liveup-stacks(1).\n");
}

/* ---- Before attaching: names and states as the user sees them ------------ */

struct task_seen {
        pid_t tid;
        char name[64];
        char state;
};

static int read_tasks(pid_t pid, struct task_seen **ret, size_t *ret_n)
{
        _cleanup_free_ pid_t *tids = NULL;
        _cleanup_free_ struct task_seen *seen = NULL;
        size_t n = 0;
        int r;

        r = procfs_tasks(pid, &tids, &n);
        if (r < 0)
                return r;
        seen = calloc(MAX(n, (size_t)1), sizeof(*seen));
        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                seen[i].tid = tids[i];
                if (procfs_thread_name(pid, tids[i], seen[i].name, sizeof(seen[i].name)) < 0)
                        seen[i].name[0] = 0;
                if (procfs_thread_state(pid, tids[i], &seen[i].state) < 0)
                        seen[i].state = 0;
        }
        *ret = TAKE_PTR(seen);
        *ret_n = n;
        return 0;
}

static const struct task_seen *find_seen(const struct task_seen *seen, size_t n, pid_t tid)
{
        for (size_t i = 0; i < n; i++)
                if (seen[i].tid == tid)
                        return &seen[i];
        return NULL;
}

/* ---- The stop window ---------------------------------------------------- */

/* src/proc and the unwinder put whole messages ("cannot attach to pid
 * 42: ...") in the errbuf; without one, say what failed ourselves. */
static void log_failure(const struct errbuf *err, int r, const char *what, pid_t pid)
{
        if (err->msg[0])
                log_error("%s", err->msg);
        else
                log_error("%s pid %d: %s", what, (int)pid, cli_strerror(r));
}

/* Stop, unwind every thread, resume. On failure the threads are resumed
 * (when they were stopped) and the error is logged here, once. */
static int unwind_all(struct proc *p, struct proc_unwinder *u, const struct stacks_opts *o,
                      struct snapshot *snap)
{
        struct proc_sched_saved sched = {};
        struct errbuf err = {};
        uint64_t t0, t_stopped, t_unwound, t1;
        size_t n;
        int r;

        if (!proc_sched_raise(&sched))
                log_debug("cannot raise to SCHED_FIFO: the stop window will be longer");

        t0 = now_ns();
        r = proc_stop_all(p, &err);
        if (r < 0) {
                /* proc_stop_all may have stopped some threads. */
                struct errbuf ignored = {};

                (void)proc_resume_all(p, &ignored);
                proc_sched_restore(&sched);
                log_failure(&err, r, "cannot stop", snap->pid);
                return r;
        }

        t_stopped = now_ns();
        n = proc_n_threads(p);
        snap->threads = calloc(MAX(n, (size_t)1), sizeof(*snap->threads));
        if (snap->threads) {
                for (size_t i = 0; i < n; i++) {
                        struct proc_thread *t = proc_thread_at(p, i);
                        struct thread_info *ti = &snap->threads[snap->n];

                        if (!t || t->state == PROC_THREAD_GONE)
                                continue;
                        ti->tid = t->tid;
                        ti->unborn = t->unborn;
                        ti->unwind_r = proc_unwind_thread(u, t, o->max_frames, &ti->stack);
                        snap->n++;
                }
        }

        t_unwound = now_ns();
        r = proc_resume_all(p, &err);
        t1 = now_ns();
        proc_sched_restore(&sched);
        log_debug("stop window of pid %d: stop %" PRIu64 " µs, unwind %" PRIu64
                  " µs (%zu threads), resume %" PRIu64 " µs", (int)snap->pid,
                  (t_stopped - t0) / 1000, (t_unwound - t_stopped) / 1000, snap->n,
                  (t1 - t_unwound) / 1000);

        if (!snap->threads) {
                log_error("cannot unwind pid %d: %s", (int)snap->pid, cli_strerror(-ENOMEM));
                return -ENOMEM;
        }
        if (r < 0) {
                log_failure(&err, r, "cannot resume", snap->pid);
                return r;
        }
        snap->held_ns = t1 - t0;
        return 0;
}

/* Attach, unwind, detach. Returns an exit status; logs its own error. */
static int take_snapshot(pid_t pid, const struct stacks_opts *o, struct snapshot *snap)
{
        _cleanup_(proc_freep) struct proc *p = NULL;
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        struct proc_attach_opts ao = { .timeout = o->timeout };
        struct errbuf err = {};
        sigset_t saved;
        bool bad_input = false;
        int r, q;

        cli_hold_signals(&saved);

        r = proc_attach(pid, &ao, &p, &err);
        if (r < 0) {
                log_failure(&err, r, "cannot attach to", pid);
                /* -EINVAL: the pid names a thread, or liveup itself. */
                bad_input = r == -EINVAL;
                goto out;
        }

        /* Best effort: without the registry, stacks through patch code end
         * there, as incomplete. */
        snap->reg = calloc(1, sizeof(*snap->reg));
        if (snap->reg) {
                struct errbuf rerr = {};

                q = lp_registry_load(p, snap->reg, &rerr);
                if (q < 0)
                        log_debug("ignoring the liveup registry of pid %d: %s", (int)pid,
                                  errbuf_or_strerror(&rerr, q));
                if (q < 0 || !snap->reg->addr)
                        snap->reg = (free(snap->reg), NULL);
        }

        r = lp_unwinder_new(p, snap->reg, &u, &err);
        if (r < 0) {
                /* Most often the process exited or exec'd meanwhile: say
                 * that rather than what it did to reading its maps. */
                (void)proc_wait_events(p, 0);
                if (proc_gone(p) || kill(pid, 0) < 0)
                        log_error("pid %d %s during the operation", (int)pid,
                                  proc_gone_reason(p) ? proc_gone_reason(p) : "exited");
                else
                        log_failure(&err, r, "cannot unwind", pid);
                goto out_detach;
        }

        r = unwind_all(p, u, o, snap);

out_detach:
        /* The unwinder reads through p: free it first. */
        u = (proc_unwinder_free(u), NULL);
        q = proc_detach(p);
        if (q < 0 && r >= 0) {
                /* One line per failure: only when nothing failed before. */
                log_error("cannot detach from pid %d cleanly: %s", (int)pid, cli_strerror(q));
                r = q;
        }
        p = (proc_free(p), NULL);
out:
        cli_release_signals(&saved);
        if (bad_input)
                return EXIT_USAGE;
        return r < 0 ? EXIT_REFUSED : EXIT_OK;
}

/* ---- After detaching: names, states, symbols, output -------------------- */

static int cmp_thread(const void *a, const void *b)
{
        const struct thread_info *x = a, *y = b;

        return (x->tid > y->tid) - (x->tid < y->tid);
}

static void fill_names(struct snapshot *snap, const struct task_seen *seen, size_t n_seen)
{
        /* Leader first, then by thread id. */
        qsort(snap->threads, snap->n, sizeof(*snap->threads), cmp_thread);
        for (size_t i = 1; i < snap->n; i++)
                if (snap->threads[i].tid == snap->pid) {
                        struct thread_info leader = snap->threads[i];

                        memmove(&snap->threads[1], &snap->threads[0], i * sizeof(leader));
                        snap->threads[0] = leader;
                        break;
                }

        for (size_t i = 0; i < snap->n; i++) {
                struct thread_info *t = &snap->threads[i];
                const struct task_seen *s = find_seen(seen, n_seen, t->tid);

                if (s) {
                        snprintf(t->name, sizeof(t->name), "%s", s->name);
                        t->state = s->state;
                        continue;
                }
                /* Born after we looked: read what there is now (a
                 * short-lived thread may be gone already). */
                if (procfs_thread_name(snap->pid, t->tid, t->name, sizeof(t->name)) < 0)
                        t->name[0] = 0;
                if (procfs_thread_state(snap->pid, t->tid, &t->state) == -ESRCH)
                        t->gone = true;
        }
}

struct frame_sym {
        bool have_object;
        const char *patch; /* id of the live patch whose code it is */
        char patch_object[112];
        const char *object;
        uint64_t object_offset;
        const char *function;
        uint64_t offset;
};

/* The live patch whose code holds addr, or NULL. */
static const struct lp_reg_patch *patch_at(const struct lp_registry *reg, uint64_t addr)
{
        for (uint32_t i = 0; reg && i < reg->hdr.n_patches; i++) {
                const struct lp_reg_patch *pt = &reg->patches[i];

                if (addr >= pt->base && addr - pt->base < pt->text_size)
                        return pt;
        }
        return NULL;
}

/* Symbolise one frame. A return address (not an activation) points after
 * the call, possibly past the end of the calling function: look up pc - 1
 * and report offsets of pc itself (as gdb and perf do). A frame in a live
 * patch's code (anonymous memory) is named by the patch: object "[patch
 * ID]", offset from the patch image's start. */
static void locate_frame(struct elf_proc *ep, const struct lp_registry *reg,
                         const struct proc_frame *f, struct frame_sym *ret)
{
        struct elf_location loc = {};
        uint64_t adj = f->activation ? 0 : 1;
        const struct lp_reg_patch *pt;

        *ret = (struct frame_sym){};
        if (f->pc < adj)
                return;
        if ((!ep || elf_proc_locate(ep, f->pc - adj, &loc) < 0 || !loc.object) &&
            (pt = patch_at(reg, f->pc - adj))) {
                ret->patch = pt->id;
                snprintf(ret->patch_object, sizeof(ret->patch_object), "[patch %s]", pt->id);
                ret->have_object = true;
                ret->object = ret->patch_object;
                ret->object_offset = f->pc - pt->base;
                return;
        }
        if (!ep || !loc.object)
                return;
        ret->have_object = true;
        ret->object = loc.object;
        ret->object_offset = loc.object_offset + adj;
        if (loc.function) {
                ret->function = loc.function;
                ret->offset = loc.function_offset + adj;
        }
}

static const char *state_name(const struct thread_info *t)
{
        if (t->state)
                return procfs_state_name(t->state);
        return t->gone ? "exited" : "unknown";
}

static const char *unwind_failure(const struct thread_info *t)
{
        if (t->unwind_r == -ESRCH)
                return "thread exited";
        return cli_strerror(t->unwind_r);
}

static void print_text(const struct snapshot *snap, struct elf_proc *ep)
{
        printf("pid %d (%s): %zu thread%s, held stopped %" PRIu64 " µs\n", (int)snap->pid,
               snap->command, snap->n, snap->n == 1 ? "" : "s", (snap->held_ns + 500) / 1000);
        for (size_t i = 0; i < snap->n; i++) {
                const struct thread_info *t = &snap->threads[i];

                if (i > 0)
                        putchar('\n');
                printf("thread %d \"%s\" %s\n", (int)t->tid, t->name, state_name(t));
                if (t->unwind_r < 0) {
                        printf("  (not unwound: %s)\n", unwind_failure(t));
                        continue;
                }
                for (size_t j = 0; j < t->stack.n; j++) {
                        const struct proc_frame *f = &t->stack.frames[j];
                        struct frame_sym sym;
                        char fn[512];

                        locate_frame(ep, snap->reg, f, &sym);
                        if (sym.function)
                                snprintf(fn, sizeof(fn), "%s+0x%" PRIx64, sym.function, sym.offset);
                        else if (sym.have_object)
                                snprintf(fn, sizeof(fn), "?? (+0x%" PRIx64 ")", sym.object_offset);
                        else
                                snprintf(fn, sizeof(fn), "??");
                        printf("  #%-2zu 0x%016" PRIx64 "  %s  %s\n", j, f->pc, fn,
                               sym.have_object ? sym.object : "[unknown]");
                }
                if (t->unborn)
                        printf("  (new thread, created while stopping; has not run yet)\n");
                else if (t->stack.error != 0)
                        printf("  (unwind stopped: %s)\n", t->stack.reason);
        }
}

static struct json_object *json_hex(uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
        return json_object_new_string(buf);
}

static struct json_object *json_str_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static int print_json(const struct snapshot *snap, struct elf_proc *ep)
{
        struct json_object *root, *threads;
        const char *text;

        root = json_object_new_object();
        threads = json_object_new_array();
        if (!root || !threads) {
                json_object_put(root);
                json_object_put(threads);
                return -ENOMEM;
        }
        json_object_object_add(root, "pid", json_object_new_int(snap->pid));
        json_object_object_add(root, "command", json_object_new_string(snap->command));
        json_object_object_add(root, "held_us",
                               json_object_new_uint64((snap->held_ns + 500) / 1000));
        json_object_object_add(root, "threads", threads);

        for (size_t i = 0; i < snap->n; i++) {
                const struct thread_info *t = &snap->threads[i];
                struct json_object *jt = json_object_new_object();
                struct json_object *frames = json_object_new_array();
                bool complete = t->unwind_r >= 0 && t->stack.error == 0;

                if (!jt || !frames) {
                        json_object_put(jt);
                        json_object_put(frames);
                        json_object_put(root);
                        return -ENOMEM;
                }
                json_object_object_add(jt, "tid", json_object_new_int(t->tid));
                json_object_object_add(jt, "name", json_object_new_string(t->name));
                json_object_object_add(jt, "state", json_object_new_string(state_name(t)));
                for (size_t j = 0; t->unwind_r >= 0 && j < t->stack.n; j++) {
                        const struct proc_frame *f = &t->stack.frames[j];
                        struct json_object *jf = json_object_new_object();
                        struct frame_sym sym;

                        if (!jf) {
                                json_object_put(jt);
                                json_object_put(frames);
                                json_object_put(root);
                                return -ENOMEM;
                        }
                        locate_frame(ep, snap->reg, f, &sym);
                        json_object_object_add(jf, "pc", json_hex(f->pc));
                        json_object_object_add(jf, "function", json_str_or_null(sym.function));
                        json_object_object_add(jf, "offset", sym.function ?
                                               json_object_new_uint64(sym.offset) : NULL);
                        json_object_object_add(jf, "object", json_str_or_null(sym.object));
                        json_object_object_add(jf, "object_offset", sym.have_object ?
                                               json_object_new_uint64(sym.object_offset) : NULL);
                        json_object_object_add(jf, "patch", json_str_or_null(sym.patch));
                        json_object_array_add(frames, jf);
                }
                json_object_object_add(jt, "frames", frames);
                json_object_object_add(jt, "complete", json_object_new_boolean(complete));
                json_object_object_add(jt, "new_thread", json_object_new_boolean(t->unborn));
                json_object_object_add(jt, "unwind_error",
                                       complete ? NULL
                                       : t->unwind_r < 0 ? json_object_new_string(unwind_failure(t))
                                                         : json_object_new_string(t->stack.reason));
                json_object_array_add(threads, jt);
        }

        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text)
                puts(text);
        json_object_put(root);
        return text ? 0 : -ENOMEM;
}

/* ---- The verb ------------------------------------------------------------ */

static int parse_max_frames(const char *s, size_t *ret)
{
        char *end;
        unsigned long v;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v == 0 || v > MAX_FRAMES_LIMIT)
                return -EINVAL;
        *ret = v;
        return 0;
}

int verb_stacks(int argc, char **argv)
{
        enum { OPT_JSON = 0x100, OPT_MAX_FRAMES, OPT_TIMEOUT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "verbose", no_argument, NULL, 'v' },
                { "json", no_argument, NULL, OPT_JSON },
                { "max-frames", required_argument, NULL, OPT_MAX_FRAMES },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                {},
        };
        _cleanup_free_ struct task_seen *seen = NULL;
        _cleanup_(elf_proc_freep) struct elf_proc *ep = NULL;
        struct stacks_opts o = {};
        struct snapshot snap = {};
        struct errbuf err = {};
        size_t n_seen = 0;
        const char *arg;
        pid_t pid;
        int c, r, status;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hv", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        verb_stacks_usage(stdout);
                        return EXIT_OK;
                case 'v':
                        log_set_level(LOG_LEVEL_DEBUG);
                        break;
                case OPT_JSON:
                        o.json = true;
                        break;
                case OPT_MAX_FRAMES:
                        if (parse_max_frames(optarg, &o.max_frames) < 0) {
                                log_error("stacks: invalid frame count '%s' (1 to %u)", optarg,
                                          MAX_FRAMES_LIMIT);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_TIMEOUT:
                        if (cli_parse_timeout("stacks", optarg, &o.timeout) != 0)
                                return EXIT_USAGE;
                        break;
                default:
                        return cli_bad_option("stacks", c, argv);
                }
        }
        r = cli_one_operand("stacks", "PID", argc, argv, &arg);
        if (r)
                return r;
        if (parse_pid(arg, &pid) < 0) {
                log_error("invalid pid '%s': not a positive number", arg);
                return EXIT_USAGE;
        }

        /* Best effort: failures show up as unknown names and states, and a
         * process that does not exist is reported by proc_attach(). */
        if (read_tasks(pid, &seen, &n_seen) < 0)
                n_seen = 0;

        snap.pid = pid;
        if (procfs_thread_name(pid, pid, snap.command, sizeof(snap.command)) < 0)
                snap.command[0] = 0;

        status = take_snapshot(pid, &o, &snap);
        if (status != EXIT_OK) {
                snapshot_done(&snap);
                return status;
        }

        fill_names(&snap, seen, n_seen);
        r = elf_proc_new(pid, &ep, &err);
        if (r < 0)
                /* The process may have exited since: print bare pcs. */
                log_debug("cannot symbolise pid %d: %s", (int)pid, errbuf_or_strerror(&err, r));

        if (o.json)
                r = print_json(&snap, ep);
        else {
                print_text(&snap, ep);
                r = 0;
        }
        snapshot_done(&snap);
        if (r < 0) {
                log_error("cannot print the stacks of pid %d: %s", (int)pid, cli_strerror(r));
                return EXIT_REFUSED;
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
                log_error("cannot write the stacks of pid %d: %s", (int)pid,
                          cli_strerror(-errno));
                return EXIT_REFUSED;
        }
        return EXIT_OK;
}
