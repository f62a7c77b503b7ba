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
        /* Finishing waits for the old version to exit (killed after 30 s). */
        return cli_keeper_simple_verb("finish", argc, argv, verb_finish_usage, UPD_MSG_FINISH, 90000);
}
