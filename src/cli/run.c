/* `liveup run [--name NAME] [--ready-timeout SECS] -- CMD [ARGS...]`:
 * become the keeper of CMD (src/update/keeper.c) and stay in the
 * foreground until the service exits; the exit status is the service's.
 * NAME defaults to the basename of CMD. */
#include "cli/cli.h"

#include "base/log.h"
#include "update/keeper.h"
#include "update/proto.h"

#include <string.h>

void verb_run_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup run [--name NAME] [--ready-timeout SECS] -- CMD [ARGS...]\n"
                "\n"
                "Start CMD as a live-updatable service, supervised by this process (the\n"
                "keeper), which stays in the foreground and serves the control socket\n"
                "$LIVEUP_RUNTIME_DIR/NAME.sock (default /run/liveup as root, else\n"
                "$XDG_RUNTIME_DIR/liveup) for 'liveup update', 'status', 'finish' and\n"
                "'cancel'. SIGTERM and SIGINT are passed on to the service.\n"
                "\n"
                "Options:\n"
                "  -n, --name NAME          service name (default: basename of CMD)\n"
                "      --ready-timeout SECS the service must report ready (liveup_ready() or\n"
                "                           READY=1 on NOTIFY_SOCKET) within SECS, else it is\n"
                "                           killed and run exits 1\n"
                "  -h, --help               show this help\n"
                "\n"
                "Exit status: the service's (128+N when killed by signal N); 1 when it\n"
                "could not be started or was not ready in time; 2 bad usage.\n"
                "See liveup-run(1).\n");
}

int verb_run(int argc, char **argv)
{
        enum { OPT_READY_TIMEOUT = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "name", required_argument, NULL, 'n' },
                { "ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT },
                {},
        };
        struct upd_keeper_config cfg = {};
        char name[UPD_NAME_MAX];
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:hn:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        verb_run_usage(stdout);
                        return EXIT_OK;
                case 'n':
                        cfg.name = optarg;
                        break;
                case OPT_READY_TIMEOUT:
                        r = cli_parse_timeout("run", optarg, &cfg.ready_timeout);
                        if (r)
                                return r;
                        break;
                default:
                        return cli_bad_option("run", c, argv);
                }
        }
        if (optind >= argc) {
                log_error("run: missing command (try 'liveup run --help')");
                return EXIT_USAGE;
        }
        cfg.argv = argv + optind;
        if (!cfg.name) {
                snprintf(name, sizeof(name), "%s", path_basename(cfg.argv[0]));
                cfg.name = name;
        }
        if (!upd_name_valid(cfg.name)) {
                log_error("run: invalid service name '%s' (1..63 of [A-Za-z0-9._-]; use --name)",
                          cfg.name);
                return EXIT_USAGE;
        }
        return upd_keeper_run(&cfg);
}
