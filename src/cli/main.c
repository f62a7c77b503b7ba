/* The liveup command: global options, then one verb from a flat table,
 * each verb in its own file (DESIGN.md, "What the user sees").
 *
 *     liveup [-v|--verbose] VERB [ARGS...]
 *     liveup --help | --version | help [VERB]
 *
 * Only main() decides to stop: verbs return an exit status (0 done, 1
 * refused or failed safely, 2 bad usage or input) and log their one error
 * line themselves, where the decision is made. Options after the verb
 * belong to the verb; global options go before it (getopt stops at the
 * first non-option, "+" in the option string). */
#include "cli/cli.h"

#include "base/log.h"
#include "build/tree.h"
#include "base/util.h"
#include "config.h"

#include <ctype.h>
#include <string.h>

static const struct verb verbs[] = {
        { "apply", "apply a live patch to running processes", verb_apply, verb_apply_usage },
        { "build", "build a patch file from a C file", verb_build, verb_build_usage },
        { "inspect", "show what a patch file contains and targets", verb_inspect,
          verb_inspect_usage },
        { "revert", "undo a live patch", verb_revert, verb_revert_usage },
        { "patches", "list the live patches applied to processes", verb_patches,
          verb_patches_usage },
        { "stacks", "show the stack of every thread of a process", verb_stacks,
          verb_stacks_usage },
        { "run", "start a command as a live-updatable service", verb_run, verb_run_usage },
        { "update", "live-update a service started by 'run'", verb_update, verb_update_usage },
        { "status", "show the live-update state of services", verb_status, verb_status_usage },
        { "finish", "commit an update held in 'updated'", verb_finish, verb_finish_usage },
        { "cancel", "roll back an update", verb_cancel, verb_cancel_usage },
};

/* Verbs of DESIGN.md that this version does not have yet: named in the
 * error so that a user following the documentation is not left guessing.
 * They are not listed as commands anywhere else. */
static const char *const planned_verbs[] = {
        NULL,
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup [-v|--verbose] VERB [ARGS...]\n"
                "       liveup --help | --version | help [VERB]\n"
                "\n"
                "Live-patch running processes and live-update services.\n"
                "\n"
                "Verbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f,
                "\n"
                "Options:\n"
                "  -v, --verbose  debug messages on stderr (also LIVEUP_DEBUG=1)\n"
                "  -h, --help     show this help\n"
                "      --version  show the version\n"
                "\n"
                "'liveup help VERB' or 'liveup VERB --help' shows a verb's options.\n"
                "Exit status: 0 success, 1 refused or failed safely, 2 bad usage or input.\n"
                "See liveup(1).\n");
}

static const struct verb *find_verb(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static bool is_planned(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(planned_verbs); i++)
                if (planned_verbs[i] && strcmp(planned_verbs[i], name) == 0)
                        return true;
        return false;
}

static int unknown_verb(const char *name)
{
        if (is_planned(name))
                log_error("verb '%s' is not implemented in liveup %s (try 'liveup --help')", name,
                          LIVEUP_VERSION);
        else
                log_error("unknown verb '%s' (try 'liveup --help')", name);
        return EXIT_USAGE;
}

static int help_verb(int argc, char **argv)
{
        const struct verb *v;

        if (argc < 2) {
                usage(stdout);
                return EXIT_OK;
        }
        if (argc > 2) {
                log_error("help: too many arguments (try 'liveup help VERB')");
                return EXIT_USAGE;
        }
        v = find_verb(argv[1]);
        if (!v)
                return unknown_verb(argv[1]);
        v->usage(stdout);
        return EXIT_OK;
}

const char *cli_strerror(int r)
{
        static char buf[256];

        snprintf(buf, sizeof(buf), "%s", strerror(r < 0 ? -r : r));
        /* Only an initial capital of a word ("No such process"), never an
         * acronym ("ELF header...": two capitals). */
        if (isupper((unsigned char)buf[0]) && !isupper((unsigned char)buf[1]))
                buf[0] = (char)tolower((unsigned char)buf[0]);
        return buf;
}

int cli_parse_timeout(const char *verb, const char *arg, double *ret)
{
        if (parse_seconds(arg, ret) < 0 || *ret <= 0) {
                log_error("%s: invalid timeout '%s' (seconds, > 0)", verb, arg);
                return EXIT_USAGE;
        }
        return 0;
}

void cli_hold_signals(sigset_t *ret_saved)
{
        sigset_t term;

        sigemptyset(&term);
        sigaddset(&term, SIGINT);
        sigaddset(&term, SIGTERM);
        sigaddset(&term, SIGHUP);
        sigaddset(&term, SIGQUIT);
        sigprocmask(SIG_BLOCK, &term, ret_saved);
}

void cli_release_signals(const sigset_t *saved)
{
        sigprocmask(SIG_SETMASK, saved, NULL);
}

int cli_one_operand(const char *verb, const char *what, int argc, char **argv,
                    const char **ret)
{
        if (optind >= argc) {
                log_error("%s: missing %s (try 'liveup %s --help')", verb, what, verb);
                return EXIT_USAGE;
        }
        if (argc - optind > 1) {
                log_error("%s: unexpected argument '%s' (try 'liveup %s --help')", verb,
                          argv[optind + 1], verb);
                return EXIT_USAGE;
        }
        *ret = argv[optind];
        return 0;
}

int cli_bad_option(const char *verb, int c, char **argv)
{
        /* getopt leaves optind past the offending argument. */
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        const char *pfx = verb ? verb : "";
        const char *sep = verb ? ": " : "";
        const char *hint = verb ? verb : "";

        if (c == ':')
                log_error("%s%soption '%s' needs a value (try 'liveup %s%s--help')", pfx, sep,
                          arg, hint, verb ? " " : "");
        else if (optopt && strncmp(arg, "--", 2) != 0)
                log_error("%s%sunknown option '-%c' (try 'liveup %s%s--help')", pfx, sep, optopt,
                          hint, verb ? " " : "");
        else
                log_error("%s%sunknown option '%s' (try 'liveup %s%s--help')", pfx, sep, arg,
                          hint, verb ? " " : "");
        return EXIT_USAGE;
}

int main(int argc, char **argv)
{
        enum { OPT_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "verbose", no_argument, NULL, 'v' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        const struct verb *v;
        const char *base;
        int c;

        /* Run as "cc", "gcc" or "c99" from the scratch bin/ folder of
         * `liveup build --diff`: the compiler wrapper (src/build/wrapper.c). */
        base = path_basename(argv[0]);
        if ((strcmp(base, "cc") == 0 || strcmp(base, "gcc") == 0 || strcmp(base, "c99") == 0) &&
            getenv("LIVEUP_CC_LOG"))
                return lb_cc_wrapper_main(argc, argv);

        log_set_program("liveup");
        log_setup_from_env();

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:hv", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                case 'v':
                        log_set_level(LOG_LEVEL_DEBUG);
                        break;
                case OPT_VERSION:
                        printf("liveup %s\n", LIVEUP_VERSION);
                        return EXIT_OK;
                default:
                        return cli_bad_option(NULL, c, argv);
                }
        }
        if (optind >= argc) {
                log_error("missing verb (try 'liveup --help')");
                return EXIT_USAGE;
        }

        argc -= optind;
        argv += optind;
        if (strcmp(argv[0], "help") == 0)
                return help_verb(argc, argv);
        v = find_verb(argv[0]);
        if (!v)
                return unknown_verb(argv[0]);
        optind = 0; /* a fresh getopt scan for the verb (glibc) */
        return v->run(argc, argv);
}
