/* What the live-update verbs (update, finish, cancel, status) share:
 * connect to the keeper of a service, send one request, print the
 * PROGRESS lines on stderr as they come ("liveup: NAME: STATE: detail",
 * one per step) and turn the RESULT into an exit status and one line. */
#include "cli/cli.h"

#include "base/log.h"
#include "update/client.h"
#include "update/msgio.h"
#include "update/state.h"

#include <string.h>

int cli_keeper_call(const char *name, struct upd_msg_builder *b, int timeout_ms)
{
        _cleanup_close_ int fd = -EBADF;
        struct errbuf err = {};
        int r;

        r = upd_client_connect(name, &fd, &err);
        if (r < 0) {
                log_error("%s", errbuf_or_strerror(&err, r));
                return EXIT_REFUSED;
        }
        r = upd_msg_send(fd, b, NULL, 0);
        if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                log_error("cannot send the request to the keeper of '%s': %s", name,
                          cli_strerror(r));
                return EXIT_REFUSED;
        }
        /* On -EPIPE the keeper may have refused us at once (RESULT{EPERM})
         * and closed: that answer is still queued for us, read it. */
        for (;;) {
                struct upd_msg m;

                r = upd_client_recv(fd, timeout_ms, &m, &err);
                if (r == -ETIMEDOUT) {
                        log_error("no answer from the keeper of '%s' within %.1f s", name,
                                  timeout_ms / 1000.0);
                        return EXIT_REFUSED;
                }
                if (r == -ECONNRESET) {
                        log_error("lost the keeper of '%s' before it answered (it may have "
                                  "died; see 'liveup status %s')",
                                  name, name);
                        return EXIT_REFUSED;
                }
                if (r < 0) {
                        log_error("bad answer from the keeper of '%s': %s", name,
                                  errbuf_or_strerror(&err, r));
                        return EXIT_REFUSED;
                }
                if (m.type == UPD_MSG_PROGRESS) {
                        log_info("%s: %s", name, m.detail);
                        upd_msg_done(&m);
                        continue;
                }
                if (m.type != UPD_MSG_RESULT) {
                        log_error("unexpected %s from the keeper of '%s'",
                                  upd_msg_type_name(m.type), name);
                        upd_msg_done(&m);
                        return EXIT_REFUSED;
                }
                if (m.error != 0) {
                        log_error("%s", m.message[0] ? m.message : strerror((int)m.error));
                        upd_msg_done(&m);
                        return EXIT_REFUSED;
                }
                if (m.message[0])
                        log_info("%s", m.message);
                upd_msg_done(&m);
                return EXIT_OK;
        }
}

int cli_keeper_simple_verb(const char *verb, int argc, char **argv, void (*usage)(FILE *f),
                           unsigned type, int timeout_ms)
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
                        usage(stdout);
                        return EXIT_OK;
                default:
                        return cli_bad_option(verb, c, argv);
                }
        }
        r = cli_one_operand(verb, "service NAME", argc, argv, &name);
        if (r)
                return r;
        b = malloc(sizeof(*b));
        if (!b)
                return EXIT_REFUSED;
        upd_msg_begin(b, (enum upd_msg_type)type);
        return cli_keeper_call(name, b, timeout_ms);
}
