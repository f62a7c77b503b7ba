/* The keeper: `liveup run` is one (docs/internals/update.md). It spawns
 * the service, serves the control socket and the notify socket, holds the
 * state machine and, during an update, the preserved fds. It logs its own
 * decisions (one line each, on stderr) and returns the exit status of
 * `liveup run`: the service's (128+N when killed by signal N), or 1 when
 * the service could not be started or was not ready in time. */
#pragma once

#include "base/macro.h"

struct upd_keeper_config {
        const char *name;     /* valid name (upd_name_valid) */
        char **argv;          /* the service's command line */
        double ready_timeout; /* seconds; 0: no deadline for the first READY */
};

int upd_keeper_run(const struct upd_keeper_config *cfg);
