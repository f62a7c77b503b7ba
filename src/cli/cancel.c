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
        /* Cancelling waits for the new version to die and the old to thaw. */
        return cli_keeper_simple_verb("cancel", argc, argv, verb_cancel_usage, UPD_MSG_CANCEL, 90000);
}
