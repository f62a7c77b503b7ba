/* `liveup build --replace FIX.c --target BIN [-o OUT.lpo] [-- CFLAGS...]`:
 * build a patch file whose functions replace BIN's functions of the same
 * name (src/build/replace.c does the work).
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

void verb_build_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup build --replace FIX.c --target BIN [-o OUT.lpo] [--name NAME]\n"
                "                    [--cumulative] [--json] [-- CFLAGS...]\n"
                "       liveup build --diff FIX.diff --src DIR ...   (not implemented yet)\n"
                "\n"
                "Build a patch file for BIN (an executable or a shared library) from a C\n"
                "file: every function FIX.c defines that BIN has (by name, exported or\n"
                "static) replaces it; static functions BIN lacks are new helpers; all\n"
                "that FIX.c only declares resolves, when applied, to BIN's own symbols\n"
                "or to the libraries BIN uses.\n"
                "\n"
                "Options:\n"
                "      --replace FIX.c  the C file with the new functions\n"
                "      --target BIN     the object to patch (must have a build-id)\n"
                "  -o, --output FILE    the patch file (default: FIX's name with .lpo,\n"
                "                       in the current folder)\n"
                "      --name NAME      the patch's name (default: FIX's name without .c)\n"
                "      --cumulative     mark the patch as replacing all patches applied\n"
                "                       before it (liveup apply refuses such patches\n"
                "                       in this version)\n"
                "      --json           one JSON document on stdout\n"
                "  -v, --verbose        debug messages on stderr\n"
                "  -h, --help           show this help\n"
                "  -- CFLAGS...         more gcc flags (-I, -D, -O0, ...), after liveup's\n"
                "\n"
                "Exit status: 0 built, 1 refused (FIX.c does not compile, a function is\n"
                "too short or ambiguous, a symbol cannot be resolved, ...), 2 bad usage\n"
                "or bad input file. See liveup-build(1).\n");
}

static void print_text(const struct lb_result *res)
{
        const struct lp_file *p = res->patch;

        printf("built %s: replaces ", res->output);
        for (size_t i = 0; i < p->n_funcs; i++)
                printf("%s%s", i > 0 ? ", " : "", p->funcs[i].name);
        printf(" in %s (build-id %s)\n", p->target, p->build_id_hex);
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

static int print_json(const struct lb_result *res)
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
                json_object_array_add(funcs, jf);
        }
        json_object_object_add(root, "functions", funcs);
        json_object_object_add(root, "helpers", json_strv(res->helpers, res->n_helpers));
        json_object_object_add(root, "undefined", json_strv(res->undefined, res->n_undefined));
        json_object_object_add(root, "warnings", json_strv(res->warnings, res->n_warnings));

        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text)
                puts(text);
        json_object_put(root);
        return text ? 0 : -ENOMEM;
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
                {},
        };
        _cleanup_(lb_result_freep) struct lb_result *res = NULL;
        struct lb_replace_opts o = {};
        struct errbuf err = {};
        bool json = false, diff = false;
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
                        o.target = optarg;
                        break;
                case 'o':
                        o.output = optarg;
                        break;
                case OPT_NAME:
                        o.name = optarg;
                        break;
                case OPT_CUMULATIVE:
                        o.cumulative = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_DIFF:
                case OPT_SRC:
                        diff = true;
                        break;
                default:
                        return cli_bad_option("build", c, argv);
                }
        }
        if (diff) {
                log_error("build --diff is not implemented yet");
                return EXIT_USAGE;
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
        for (size_t i = 0; i < res->n_warnings; i++)
                log_warning("%s", res->warnings[i]);
        if (json)
                r = print_json(res);
        else {
                print_text(res);
                r = 0;
        }
        if (r < 0 || fflush(stdout) != 0 || ferror(stdout)) {
                log_error("built '%s' but cannot print the result: %s", res->output,
                          cli_strerror(r < 0 ? r : -errno));
                return EXIT_REFUSED;
        }
        return EXIT_OK;
}
