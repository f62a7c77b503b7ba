/* `liveup cancel NAME`: roll back the update in progress or held in
 * `updated`: the new version is killed, the old one thaws and serves. */
#include "cli/cli.h"

#include "update/msgio.h"

void verb_cancel_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup cancel NAME\n"
                "\n"
                "Roll back the update of the service NAME in progress (prepared or frozen)\n"
                "or held in 'updated': the new version is killed, the old one thaws (cancel\n"
                "callbacks) and goes on serving.\n"
                "\n"
                "Options:\n"
                "  -h, --help  show this help\n"
                "\n"
                "Exit status: 0 the update was cancelled; 1 no update was in progress, or the\n"
                "service is unknown or not yours; 2 bad usage.\n"
                "See liveup-cancel(1).\n");
}

int verb_cancel(int argc, char **argv)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ struct upd_msg_builder *b = NULL;
        const char *name;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        verb_cancel_usage(stdout);
                        return EXIT_OK;
                default:
                        return cli_bad_option("cancel", c, argv);
                }
        }
        r = cli_name_arg("cancel", argc, argv, &name);
        if (r)
                return r;
        b = malloc(sizeof(*b));
        if (!b)
                return EXIT_REFUSED;
        upd_msg_begin(b, UPD_MSG_CANCEL);
        /* Finishing waits for the old version to exit (killed after 30 s). */
        return cli_keeper_call(name, b, 90000);
}
