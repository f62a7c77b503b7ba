/* `liveup finish NAME`: commit an update held in `updated` (update --hold):
 * the old version gets FINISH and exits, the new one is the service. */
#include "cli/cli.h"

#include "update/msgio.h"

void verb_finish_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup finish NAME\n"
                "\n"
                "Commit an update of the service NAME that 'liveup update --hold' left in\n"
                "'updated': the old version is told to exit (finish callbacks), the new one\n"
                "becomes the service.\n"
                "\n"
                "Options:\n"
                "  -h, --help  show this help\n"
                "\n"
                "Exit status: 0 the update completed; 1 nothing was held in 'updated', or the\n"
                "service is unknown or not yours; 2 bad usage.\n"
                "See liveup-finish(1).\n");
}

int verb_finish(int argc, char **argv)
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
                        verb_finish_usage(stdout);
                        return EXIT_OK;
                default:
                        return cli_bad_option("finish", c, argv);
                }
        }
        r = cli_name_arg("finish", argc, argv, &name);
        if (r)
                return r;
        b = malloc(sizeof(*b));
        if (!b)
                return EXIT_REFUSED;
        upd_msg_begin(b, UPD_MSG_FINISH);
        /* Finishing waits for the old version to exit (killed after 30 s). */
        return cli_keeper_call(name, b, 90000);
}
