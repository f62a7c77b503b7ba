/* liveup apply PID|--all FILE.lpo [--mode stop] [--timeout SECS] [--json]
 *
 * Applies a patch to one process, or to every process that has the
 * patch's target object mapped (matched by build-id). Each process is
 * handled on its own: a refusal in one leaves it untouched and does not
 * stop the others; the exit status is 0 only when every one was patched. */
#include "cli/cli.h"

#include "base/log.h"
#include "base/procfs.h"
#include "base/util.h"
#include "proc/proc.h"
#include "elf/elf.h"
#include "livepatch/apply.h"
#include "livepatch/format.h"

#include <dirent.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <string.h>

void verb_apply_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup apply PID FILE.lpo [--mode stop] [--timeout SECS] [--json]\n"
                "       liveup apply --all FILE.lpo [--timeout SECS] [--json]\n"
                "\n"
                "Replace functions of a running process with those of a patch built by\n"
                "'liveup build'. Every thread is stopped briefly; the patch goes in only\n"
                "when no thread is inside a function being replaced (retried with backoff\n"
                "until the timeout). The process is left as it was when it is refused.\n"
                "\n"
                "Options:\n"
                "  --all            every process that has the patch's target loaded\n"
                "  --mode stop      consistency model (only 'stop' exists today)\n"
                "  --timeout SECS   how long to retry while a function is busy (default 5)\n"
                "  --json           print one JSON document on stdout\n"
                "  -h, --help       show this help\n"
                "\n"
                "Exit status: 0 applied, 1 refused (process unchanged), 2 bad usage or file.\n");
}

/* Processes that have the patch's target object loaded: their maps
 * mention a file of that name (a cheap filter), and that file has the
 * patch's build-id. A process that does not is never attached to (it may
 * be another build of the same program, or one that something else
 * traces). */
static int candidate_pids(const struct lp_file *f, pid_t **ret, size_t *ret_n)
{
        _cleanup_closedir_ DIR *d = opendir("/proc");
        const char *base = path_basename(f->target);
        pid_t *pids = NULL;
        size_t n = 0;
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                struct procfs_maps m = {};
                pid_t pid;
                bool hit = false;
                _cleanup_free_ char *hit_path = NULL;

                if (parse_pid(de->d_name, &pid) < 0 || pid == getpid())
                        continue;
                if (procfs_maps_read(pid, &m) < 0)
                        continue;
                for (size_t i = 0; i < m.n && !hit; i++) {
                        const char *b = strrchr(m.maps[i].path, '/');
                        hit = b && strcmp(b + 1, base) == 0;
                        if (hit)
                                hit_path = strdup(m.maps[i].path);
                }
                procfs_maps_done(&m);
                if (!hit)
                        continue;
                {
                        _cleanup_(elf_proc_freep) struct elf_proc *ep = NULL;
                        struct elf_file *ef;

                        if (elf_proc_new(pid, &ep, NULL) < 0)
                                continue;
                        /* That file first; then any object (renamed, deleted). */
                        if ((!hit_path || elf_proc_object(ep, hit_path, f->build_id_hex, &ef,
                                                          NULL, NULL) < 0) &&
                            elf_proc_object(ep, NULL, f->build_id_hex, &ef, NULL, NULL) < 0)
                                continue;
                }
                pid_t *np = realloc(pids, (n + 1) * sizeof(*np));
                if (!np) {
                        free(pids);
                        return -ENOMEM;
                }
                pids = np;
                pids[n++] = pid;
        }
        *ret = pids;
        *ret_n = n;
        return 0;
}

void cli_json_add_probes(struct json_object *jo, const struct lp_transition_result *t)
{
        json_object_object_add(jo, "probes", json_object_new_int((int)t->probes));
        json_object_object_add(jo, "probes_busy", json_object_new_int((int)t->probes_busy));
        json_object_object_add(jo, "probe_held_max_us",
                               json_object_new_uint64(t->probe_held_max_ns / 1000));
}

int verb_apply(int argc, char **argv)
{
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "mode", required_argument, NULL, 'm' },
                { "timeout", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct lp_apply_opts o = {};
        bool all = false, json = false;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n_pids = 0;
        const char *file;
        struct errbuf err = {};
        int c, r, failed = 0;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'a':
                        all = true;
                        break;
                case 'm':
                        if (strcmp(optarg, "stop") != 0) {
                                log_error("apply: mode '%s' is not available (only 'stop' exists "
                                          "today)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 't':
                        if (cli_parse_timeout("apply", optarg, &o.timeout) != 0)
                                return EXIT_USAGE;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        verb_apply_usage(stdout);
                        return EXIT_OK;
                default:
                        return cli_bad_option("apply", c, argv);
                }
        }
        if (argc - optind != (all ? 1 : 2)) {
                log_error("apply: expected %s (try 'liveup apply --help')",
                          all ? "--all FILE.lpo" : "PID FILE.lpo");
                return EXIT_USAGE;
        }
        if (!all) {
                pids = malloc(sizeof(*pids));
                if (!pids)
                        return EXIT_REFUSED;
                if (parse_pid(argv[optind], &pids[0]) < 0) {
                        log_error("invalid pid '%s': not a positive number", argv[optind]);
                        return EXIT_USAGE;
                }
                n_pids = 1;
                optind++;
        }
        file = argv[optind];
        r = lp_file_open(file, &f, &err);
        if (r < 0) {
                log_error("%s", errbuf_or_strerror(&err, r));
                return EXIT_USAGE;
        }
        if (all) {
                r = candidate_pids(f, &pids, &n_pids);
                if (r < 0) {
                        log_error("cannot list processes: %s", cli_strerror(r));
                        return EXIT_REFUSED;
                }
        }

        struct json_object *jarr = json ? json_object_new_array() : NULL;
        size_t applied = 0;
        for (size_t i = 0; i < n_pids; i++) {
                struct lp_apply_result res = {};
                struct errbuf e = {};

                sigset_t saved;
                cli_hold_signals(&saved);
                struct proc_nice_saved nice;
                proc_nice_raise(&nice);
                r = lp_apply(pids[i], f, &o, &res, &e);
                proc_nice_restore(&nice);
                cli_release_signals(&saved);
                if (all && r == -ENXIO)
                        continue; /* same file name, another build: not ours */
                if (r < 0) {
                        failed++;
                        if (e.msg[0])
                                log_error("%s", e.msg);
                        else
                                log_error("cannot patch pid %d: %s", pids[i], cli_strerror(r));
                } else {
                        applied++;
                        if (!json)
                                printf("applied %s to pid %d: %zu function%s; threads held "
                                       "%.0f µs at most, %.0f µs over %u stop%s (%u attempt%s; "
                                       "alone in %u probe%s, %.0f µs at most); %.1f ms in all\n",
                                       res.id, pids[i], res.n_funcs, res.n_funcs == 1 ? "" : "s",
                                       (double)res.transition.held_max_ns / 1e3,
                                       (double)res.transition.held_total_ns / 1e3,
                                       res.transition.windows,
                                       res.transition.windows == 1 ? "" : "s",
                                       res.transition.attempts,
                                       res.transition.attempts == 1 ? "" : "s",
                                       res.transition.probes,
                                       res.transition.probes == 1 ? "" : "s",
                                       (double)res.transition.probe_held_max_ns / 1e3,
                                       (double)res.total_ns / 1e6);
                }
                if (jarr) {
                        struct json_object *jo = json_object_new_object();
                        json_object_object_add(jo, "pid", json_object_new_int(pids[i]));
                        json_object_object_add(jo, "applied", json_object_new_boolean(r >= 0));
                        json_object_object_add(jo, "patch", json_object_new_string(f->id));
                        if (r >= 0) {
                                char base[32];
                                snprintf(base, sizeof(base), "0x%" PRIx64, res.base);
                                json_object_object_add(jo, "functions",
                                                       json_object_new_int((int)res.n_funcs));
                                json_object_object_add(jo, "image", json_object_new_string(base));
                                json_object_object_add(jo, "image_size",
                                                       json_object_new_uint64(res.size));
                                if (res.data_base) {
                                        snprintf(base, sizeof(base), "0x%" PRIx64,
                                                 res.data_base);
                                        json_object_object_add(jo, "data",
                                                               json_object_new_string(base));
                                }
                                json_object_object_add(jo, "in_arena",
                                                       json_object_new_boolean(res.arena >= 0));
                                json_object_object_add(jo, "arena_created",
                                                       json_object_new_boolean(
                                                               res.arena_created));
                                json_object_object_add(jo, "far_stubs",
                                                       json_object_new_int((int)res.n_stubs));
                                json_object_object_add(jo, "got_slots",
                                                       json_object_new_int((int)res.n_got));
                                json_object_object_add(jo, "total_us",
                                                       json_object_new_uint64(res.total_ns / 1000));
                        } else
                                json_object_object_add(jo, "error",
                                                       json_object_new_string(e.msg[0] ? e.msg
                                                                                       : cli_strerror(r)));
                        json_object_object_add(jo, "attempts",
                                               json_object_new_int((int)res.transition.attempts));
                        json_object_object_add(jo, "stops",
                                               json_object_new_int((int)res.transition.windows));
                        json_object_object_add(jo, "held_max_us",
                                               json_object_new_uint64(res.transition.held_max_ns /
                                                                      1000));
                        json_object_object_add(jo, "held_total_us",
                                               json_object_new_uint64(
                                                       res.transition.held_total_ns / 1000));
                        cli_json_add_probes(jo, &res.transition);
                        if (r >= 0) {
                                json_object_object_add(jo, "prepare_us",
                                                       json_object_new_uint64(res.prepare_ns /
                                                                              1000));
                                json_object_object_add(jo, "switch_us",
                                                       json_object_new_uint64(res.switch_ns /
                                                                              1000));
                                json_object_object_add(jo, "remote_calls",
                                                       json_object_new_int(
                                                               (int)res.remote_calls));
                        }
                        json_object_array_add(jarr, jo);
                }
        }
        if (all && applied == 0 && failed == 0) {
                log_error("no running process has %s (build-id %s) loaded", f->target,
                          f->build_id_hex);
                failed = 1;
        }
        if (jarr) {
                struct json_object *top = json_object_new_object();
                json_object_object_add(top, "patch", json_object_new_string(f->id));
                json_object_object_add(top, "processes", jarr);
                printf("%s\n", json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY));
                json_object_put(top);
        }
        return failed ? EXIT_REFUSED : EXIT_OK;
}
