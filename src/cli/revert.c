/* liveup revert PID [PATCH-ID|--all] [--timeout SECS] [--json]
 *
 * Undo a patch under the same safety rule as apply: no thread may be
 * inside the patch's code. Without an id, the most recent patch goes;
 * with --all, every patch, most recent first. */
#include "cli/cli.h"

#include "base/log.h"
#include "base/util.h"
#include "proc/proc.h"
#include "livepatch/apply.h"

#include <json-c/json.h>
#include <signal.h>
#include <string.h>

void verb_revert_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup revert PID [PATCH-ID | --all] [--timeout SECS] [--json]\n"
                "\n"
                "Undo a live patch: the replaced functions get their original code back,\n"
                "and the patch's memory is released. Without PATCH-ID the most recent\n"
                "patch is reverted; --all reverts every patch, most recent first. A patch\n"
                "with another patch on top of the same function must wait for that one.\n"
                "\n"
                "Options:\n"
                "  --all            revert every patch of the process\n"
                "  --timeout SECS   how long to retry while the patch's code is busy\n"
                "                   (default 5)\n"
                "  --json           print one JSON document on stdout\n"
                "  -h, --help       show this help\n"
                "\n"
                "Exit status: 0 reverted, 1 refused (process unchanged), 2 bad usage.\n");
}

int verb_revert(int argc, char **argv)
{
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "timeout", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct lp_apply_opts o = {};
        bool all = false, json = false;
        const char *id = NULL;
        pid_t pid;
        int c, r = 0;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'a':
                        all = true;
                        break;
                case 't':
                        if (cli_parse_timeout("revert", optarg, &o.timeout) != 0)
                                return EXIT_USAGE;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        verb_revert_usage(stdout);
                        return EXIT_OK;
                default:
                        return cli_bad_option("revert", c, argv);
                }
        }
        if (argc - optind < 1 || argc - optind > (all ? 1 : 2)) {
                log_error("revert: expected PID [PATCH-ID | --all] (try 'liveup revert --help')");
                return EXIT_USAGE;
        }
        if (parse_pid(argv[optind], &pid) < 0) {
                log_error("invalid pid '%s': not a positive number", argv[optind]);
                return EXIT_USAGE;
        }
        if (argc - optind == 2)
                id = argv[optind + 1];

        struct json_object *jarr = json ? json_object_new_array() : NULL;
        size_t done = 0;
        for (;;) {
                struct lp_revert_result res = {};
                struct errbuf e = {};

                sigset_t saved;
                cli_hold_signals(&saved);
                struct proc_nice_saved nice;
                proc_nice_raise(&nice);
                r = lp_revert(pid, id, &o, &res, &e);
                proc_nice_restore(&nice);
                cli_release_signals(&saved);
                if (r == -ENOENT && all && done > 0) {
                        r = 0; /* nothing left */
                        break;
                }
                if (r < 0) {
                        log_error("%s", e.msg[0] ? e.msg : cli_strerror(r));
                        break;
                }
                done++;
                if (jarr) {
                        struct json_object *jo = json_object_new_object();
                        json_object_object_add(jo, "patch", json_object_new_string(res.id));
                        json_object_object_add(jo, "functions",
                                               json_object_new_int((int)res.n_funcs));
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
                        json_object_object_add(jo, "total_us",
                                               json_object_new_uint64(res.total_ns / 1000));
                        json_object_array_add(jarr, jo);
                } else
                        printf("reverted %s in pid %d: %zu function%s, threads held %.0f µs\n",
                               res.id, pid, res.n_funcs, res.n_funcs == 1 ? "" : "s",
                               (double)res.transition.held_max_ns / 1e3);
                if (!all)
                        break;
        }
        if (jarr) {
                struct json_object *top = json_object_new_object();
                json_object_object_add(top, "pid", json_object_new_int(pid));
                json_object_object_add(top, "reverted", jarr);
                json_object_object_add(top, "ok", json_object_new_boolean(r >= 0));
                printf("%s\n", json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY));
                json_object_put(top);
        }
        return r < 0 ? EXIT_REFUSED : EXIT_OK;
}
