/* `liveup build --replace FIX.c --target BIN [-o OUT.lpo] [-- CFLAGS...]`:
 * build a patch file whose functions replace BIN's functions of the same
 * name (src/build/replace.c does the work).
 *
 * `liveup build --diff FIX.diff --src DIR --target BIN [-o OUT.lpo] --
 * BUILD-COMMAND...`: build the project twice, unpatched and patched, and
 * put only what changed into the patch (src/build/diff.c). On a terminal
 * (or with --progress) each step is narrated on stderr, with the build's
 * own output.
 *
 * What is printed: gcc's and objcopy's own messages on stderr as they
 * come, then warnings (one line each), then either one error line or,
 * on success, one line naming the output, the replaced functions, the
 * target and its build-id (or, with --json, one JSON document on stdout
 * and nothing else there). Exit status: 0 built, 1 refused or failed (no
 * output file is left behind), 2 bad usage or bad input file. */
#include "cli/cli.h"

#include "base/log.h"
#include "build/build.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

void verb_build_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup build --replace FIX.c --target BIN [-o OUT.lpo] [--name NAME]\n"
                "                    [--cumulative] [--json] [-- CFLAGS...]\n"
                "       liveup build --diff FIX.diff --src DIR [--target BIN] [-o OUT.lpo]\n"
                "                    [--name NAME] [--json] [--progress] [--keep-trees]\n"
                "                    -- BUILD-COMMAND [ARGS...]\n"
                "\n"
                "Build a patch file for BIN (an executable or a shared library).\n"
                "\n"
                "From a C file (--replace): every function FIX.c defines that BIN has (by\n"
                "name, exported or static) replaces it; static functions BIN lacks are new\n"
                "helpers; all that FIX.c only declares resolves, when applied, to BIN's\n"
                "own symbols or to the libraries BIN uses.\n"
                "\n"
                "From a source diff (--diff): DIR is built twice in scratch copies, as is\n"
                "and with FIX.diff applied (patch -p1), by BUILD-COMMAND run in the copy's\n"
                "root (e.g. make), each compile through a wrapper that adds\n"
                "-ffunction-sections -fdata-sections. The objects are compared function by\n"
                "function; the patch holds the changed functions (also those that changed\n"
                "because a function they inline changed), new functions and new data. The\n"
                "unpatched build must match BIN function by function. A change to the\n"
                "initial value or size of existing data is refused.\n"
                "\n"
                "Options:\n"
                "      --replace FIX.c  the C file with the new functions\n"
                "      --diff FIX.diff  the source diff (unified, for patch -p1 in DIR)\n"
                "      --src DIR        the project's source tree (--diff)\n"
                "      --target BIN     the object to patch (must have a build-id); with\n"
                "                       --diff, by default the one program or library of\n"
                "                       the build that contains the changed files, at the\n"
                "                       same place in DIR\n"
                "  -o, --output FILE    the patch file (default: FIX's name with .lpo instead\n"
                "                       of .c, .diff or .patch,\n"
                "                       in the current folder)\n"
                "      --name NAME      the patch's name (default: FIX's name without .c,\n"
                "                       .diff or .patch)\n"
                "      --cumulative     mark the patch as replacing all patches applied\n"
                "                       before it (liveup apply refuses such patches\n"
                "                       in this version)\n"
                "      --json           one JSON document on stdout\n"
                "  -v, --verbose        debug messages on stderr\n"
                "  -h, --help           show this help\n"
                "      --progress       narrate the builds on stderr (default on a terminal)\n"
                "      --keep-trees     keep the scratch trees of --diff (their path is\n"
                "                       printed), for debugging\n"
                "  -- CFLAGS...         --replace: more gcc flags (-I, -D, -O0, ...), after\n"
                "                       liveup's\n"
                "  -- BUILD-COMMAND...  --diff: the project's build command\n"
                "\n"
                "Exit status: 0 built, 1 refused (FIX.c does not compile, the diff does not\n"
                "apply, a build fails, the unpatched build does not match BIN, data changed,\n"
                "a function is too short or ambiguous, ...), 2 bad usage or bad input\n"
                "file. See liveup-build(1).\n");
}

static void print_list(const char *what, char **v, size_t n)
{
        if (n == 0)
                return;
        printf("  %s: ", what);
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i > 0 ? ", " : "", v[i]);
        printf("\n");
}

static void print_text(const struct lb_result *res, bool diff)
{
        const struct lp_file *p = res->patch;

        printf("built %s: replaces ", res->output);
        for (size_t i = 0; i < p->n_funcs; i++)
                printf("%s%s", i > 0 ? ", " : "", p->funcs[i].name);
        printf(" in %s (build-id %s)\n", p->target, p->build_id_hex);
        if (!diff)
                return;
        for (size_t i = 0; i < p->n_funcs; i++)
                printf("  %-24s %s\n", p->funcs[i].name, p->funcs[i].why ? p->funcs[i].why : "");
        print_list("new functions", res->helpers, res->n_helpers);
        print_list("new data", res->new_data, res->n_new_data);
        printf("  checked %zu functions of the unpatched build against the target; builds "
               "%.1f s + %.1f s (%s), %.1f s in all\n",
               res->n_checked, res->build_seconds[0], res->build_seconds[1],
               res->incremental ? "incremental" : "full", res->total_seconds);
}

static struct json_object *json_strv(char **v, size_t n)
{
        struct json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

static struct json_object *json_hex(uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
        return json_object_new_string(buf);
}

static int print_json(const struct lb_result *res, bool diff)
{
        const struct lp_file *p = res->patch;
        struct json_object *root, *funcs;
        const char *text;

        root = json_object_new_object();
        funcs = json_object_new_array();
        if (!root || !funcs) {
                json_object_put(root);
                json_object_put(funcs);
                return -ENOMEM;
        }
        json_object_object_add(root, "output", json_object_new_string(res->output));
        json_object_object_add(root, "id", json_object_new_string(p->id));
        json_object_object_add(root, "name", json_object_new_string(p->name));
        json_object_object_add(root, "target", json_object_new_string(p->target));
        json_object_object_add(root, "build_id", json_object_new_string(p->build_id_hex));
        json_object_object_add(root, "cumulative",
                               json_object_new_boolean(p->flags & LP_FLAG_CUMULATIVE));
        for (size_t i = 0; i < p->n_funcs; i++) {
                const struct lp_func *fn = &p->funcs[i];
                struct json_object *jf = json_object_new_object();

                if (!jf) {
                        json_object_put(funcs);
                        json_object_put(root);
                        return -ENOMEM;
                }
                json_object_object_add(jf, "name", json_object_new_string(fn->name));
                json_object_object_add(jf, "address", json_hex(fn->addr));
                json_object_object_add(jf, "size", json_object_new_uint64(fn->size));
                json_object_object_add(jf, "hash", json_hex(fn->hash));
                json_object_object_add(jf, "static",
                                       json_object_new_boolean(fn->flags & LP_FUNC_LOCAL));
                if (diff)
                        json_object_object_add(jf, "why",
                                               fn->why ? json_object_new_string(fn->why) : NULL);
                json_object_array_add(funcs, jf);
        }
        json_object_object_add(root, "functions", funcs);
        json_object_object_add(root, "helpers", json_strv(res->helpers, res->n_helpers));
        json_object_object_add(root, "undefined", json_strv(res->undefined, res->n_undefined));
        json_object_object_add(root, "warnings", json_strv(res->warnings, res->n_warnings));
        if (diff) {
                struct json_object *b = json_object_new_object();

                json_object_object_add(root, "new_data", json_strv(res->new_data, res->n_new_data));
                json_object_object_add(root, "objects", json_strv(res->objects, res->n_objects));
                json_object_object_add(root, "checked_functions",
                                       json_object_new_uint64(res->n_checked));
                json_object_object_add(root, "incremental",
                                       json_object_new_boolean(res->incremental));
                if (b) {
                        json_object_object_add(b, "unpatched",
                                               json_object_new_double(res->build_seconds[0]));
                        json_object_object_add(b, "patched",
                                               json_object_new_double(res->build_seconds[1]));
                        json_object_object_add(b, "total",
                                               json_object_new_double(res->total_seconds));
                }
                json_object_object_add(root, "seconds", b);
        }

        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text)
                puts(text);
        json_object_put(root);
        return text ? 0 : -ENOMEM;
}

static int report(const struct lb_result *res, bool json, bool diff)
{
        int r;

        for (size_t i = 0; i < res->n_warnings; i++)
                log_warning("%s", res->warnings[i]);
        if (json)
                r = print_json(res, diff);
        else {
                print_text(res, diff);
                r = 0;
        }
        if (r < 0 || fflush(stdout) != 0 || ferror(stdout)) {
                log_error("built '%s' but cannot print the result: %s", res->output,
                          cli_strerror(r < 0 ? r : -errno));
                return EXIT_REFUSED;
        }
        return EXIT_OK;
}

static int build_diff(struct lb_diff_opts *d, int argc, char **argv, bool json)
{
        _cleanup_(lb_result_freep) struct lb_result *res = NULL;
        _cleanup_free_ char *self = NULL;
        struct errbuf err = {};
        int r;

        if (!d->diff || !d->src) {
                log_error("build: --diff needs %s (try 'liveup build --help')",
                          !d->diff ? "--diff FIX.diff" : "--src DIR");
                return EXIT_USAGE;
        }
        if (optind >= argc || strcmp(argv[optind - 1], "--") != 0) {
                log_error("build: --diff needs the build command after '--' (e.g. '-- make'; "
                          "try 'liveup build --help')");
                return EXIT_USAGE;
        }
        if (!*d->diff || !*d->src || (d->target && !*d->target) || (d->output && !*d->output)) {
                log_error("build: empty file name (try 'liveup build --help')");
                return EXIT_USAGE;
        }
        self = realpath("/proc/self/exe", NULL);
        if (!self) {
                log_error("build: cannot find the liveup executable: %s", strerror(errno));
                return EXIT_REFUSED;
        }
        d->self = self;
        d->cmd = argv + optind;
        d->n_cmd = (size_t)(argc - optind);
        r = lb_build_diff(d, &res, &err);
        if (r < 0) {
                if (err.msg[0])
                        log_error("%s", err.msg);
                else
                        log_error("cannot build '%s': %s", d->diff, cli_strerror(r));
                return r == -EINVAL ? EXIT_USAGE : EXIT_REFUSED;
        }
        return report(res, json, true);
}

int verb_build(int argc, char **argv)
{
        enum {
                OPT_REPLACE = 0x100,
                OPT_TARGET,
                OPT_NAME,
                OPT_CUMULATIVE,
                OPT_JSON,
                OPT_DIFF,
                OPT_SRC,
                OPT_PROGRESS,
                OPT_KEEP,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "verbose", no_argument, NULL, 'v' },
                { "replace", required_argument, NULL, OPT_REPLACE },
                { "target", required_argument, NULL, OPT_TARGET },
                { "output", required_argument, NULL, 'o' },
                { "name", required_argument, NULL, OPT_NAME },
                { "cumulative", no_argument, NULL, OPT_CUMULATIVE },
                { "json", no_argument, NULL, OPT_JSON },
                { "diff", required_argument, NULL, OPT_DIFF },
                { "src", required_argument, NULL, OPT_SRC },
                { "progress", no_argument, NULL, OPT_PROGRESS },
                { "keep-trees", no_argument, NULL, OPT_KEEP },
                {},
        };
        _cleanup_(lb_result_freep) struct lb_result *res = NULL;
        struct lb_replace_opts o = {};
        struct lb_diff_opts d = {};
        struct errbuf err = {};
        bool json = false, progress = isatty(STDERR_FILENO);
        int c, r;

        opterr = 0;
        /* "+": stop at the first non-option; "--" starts the CFLAGS. */
        while ((c = getopt_long(argc, argv, "+:hvo:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        verb_build_usage(stdout);
                        return EXIT_OK;
                case 'v':
                        log_set_level(LOG_LEVEL_DEBUG);
                        break;
                case OPT_REPLACE:
                        o.fix = optarg;
                        break;
                case OPT_TARGET:
                        o.target = d.target = optarg;
                        break;
                case 'o':
                        o.output = d.output = optarg;
                        break;
                case OPT_NAME:
                        o.name = d.name = optarg;
                        break;
                case OPT_CUMULATIVE:
                        o.cumulative = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_DIFF:
                        d.diff = optarg;
                        break;
                case OPT_SRC:
                        d.src = optarg;
                        break;
                case OPT_PROGRESS:
                        progress = true;
                        break;
                case OPT_KEEP:
                        d.keep = true;
                        break;
                default:
                        return cli_bad_option("build", c, argv);
                }
        }
        if (d.diff || d.src) {
                if (o.fix || o.cumulative) {
                        log_error("build: --diff and %s do not go together (try 'liveup build "
                                  "--help')", o.fix ? "--replace" : "--cumulative");
                        return EXIT_USAGE;
                }
                d.progress = progress;
                return build_diff(&d, argc, argv, json);
        }
        if (optind < argc && strcmp(argv[optind - 1], "--") != 0) {
                log_error("build: unexpected argument '%s' "
                          "(gcc flags go after '--'; try 'liveup build --help')",
                          argv[optind]);
                return EXIT_USAGE;
        }
        if (!o.fix || !o.target) {
                log_error("build: missing %s (try 'liveup build --help')",
                          !o.fix ? "--replace FIX.c" : "--target BIN");
                return EXIT_USAGE;
        }
        if (!*o.fix || !*o.target || (o.output && !*o.output)) {
                log_error("build: empty file name (try 'liveup build --help')");
                return EXIT_USAGE;
        }
        o.cflags = argv + optind;
        o.n_cflags = (size_t)(argc - optind);

        r = lb_build_replace(&o, &res, &err);
        if (r < 0) {
                if (err.msg[0])
                        log_error("%s", err.msg);
                else
                        log_error("cannot build '%s': %s", o.fix, cli_strerror(r));
                return r == -EINVAL ? EXIT_USAGE : EXIT_REFUSED;
        }
        return report(res, json, false);
}
