/* `liveup update NAME [--hold] [--timeout SECS] [-- NEW-CMD [ARGS...]]`:
 * ask the keeper of NAME to live-update it and follow the update to its
 * end: one progress line per step on stderr, then exit 0 when it
 * completed (with --hold: when it reached `updated`), else 1 with the
 * keeper's one-line reason. Without NEW-CMD the service's own command
 * line is used again (the binary now on disk). A relative NEW-CMD path is
 * made absolute here: the keeper's folder may not be ours. */
#include "cli/cli.h"

#include "base/log.h"
#include "update/msgio.h"

#include <limits.h>
#include <string.h>

void verb_update_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup update NAME [--hold] [--timeout SECS] [-- NEW-CMD [ARGS...]]\n"
                "\n"
                "Live-update the service NAME (started by 'liveup run'): the old version\n"
                "prepares and preserves its fds, the new version starts next to it, takes\n"
                "the fds over once the old one is frozen, reports ready, and the old one\n"
                "exits. Without NEW-CMD the same command line is started again.\n"
                "\n"
                "Options:\n"
                "      --hold          stop in 'updated' (old version frozen, kept for an\n"
                "                      instant rollback) until 'liveup finish' or 'cancel'\n"
                "      --timeout SECS  the new version must be ready within SECS (default\n"
                "                      30), else the update is cancelled\n"
                "  -h, --help          show this help\n"
                "\n"
                "Exit status: 0 the update completed (with --hold: reached 'updated'); 1 it\n"
                "was refused or cancelled (the old version serves); 2 bad usage.\n"
                "See liveup-update(1).\n");
}

int verb_update(int argc, char **argv)
{
        enum { OPT_HOLD = 0x100, OPT_TIMEOUT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "hold", no_argument, NULL, OPT_HOLD },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                {},
        };
        _cleanup_free_ struct upd_msg_builder *b = NULL;
        bool hold = false;
        double timeout = 30;
        const char *name;
        char **cmd = NULL;
        int opt_argc = argc;
        char abs[PATH_MAX];
        int c, r;

        /* Options and NAME before "--", the new command after it. */
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--") == 0) {
                        opt_argc = i;
                        cmd = argv + i + 1;
                        break;
                }
        opterr = 0;
        while ((c = getopt_long(opt_argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        verb_update_usage(stdout);
                        return EXIT_OK;
                case OPT_HOLD:
                        hold = true;
                        break;
                case OPT_TIMEOUT:
                        r = cli_parse_timeout("update", optarg, &timeout);
                        if (r)
                                return r;
                        if (timeout > 86400) {
                                log_error("update: timeout '%s' over a day", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                default:
                        return cli_bad_option("update", c, argv);
                }
        }
        r = cli_one_operand("update", "service NAME", opt_argc, argv, &name);
        if (r)
                return r;
        if (cmd && !cmd[0]) {
                log_error("update: nothing after '--' (give the new command, or no '--')");
                return EXIT_USAGE;
        }

        b = malloc(sizeof(*b));
        if (!b)
                return EXIT_REFUSED;
        upd_msg_begin(b, UPD_MSG_UPDATE);
        for (char **a = cmd; a && *a; a++) {
                const char *arg = *a;
                if (a == cmd && strchr(arg, '/') && arg[0] != '/') {
                        char cwd[PATH_MAX];
                        if (getcwd(cwd, sizeof(cwd)) &&
                            snprintf(abs, sizeof(abs), "%s/%s", cwd, arg) < (int)sizeof(abs))
                                arg = abs;
                }
                upd_msg_put_str(b, UPD_TAG_ARG, arg);
        }
        if (hold)
                upd_msg_put_u32(b, UPD_TAG_HOLD, 1);
        upd_msg_put_u32(b, UPD_TAG_TIMEOUT_MS, (uint32_t)(timeout * 1000));
        r = upd_msg_end(b);
        if (r < 0) {
                log_error("update: the new command line is too long for one request");
                return EXIT_USAGE;
        }
        /* The keeper enforces the timeout; finishing may take 30 s more. */
        return cli_keeper_call(name, b, (int)(timeout * 1000) + 60000);
}
