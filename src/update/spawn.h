/* Starting one version of the service (docs/internals/update.md,
 * "Environment of each version"): fork, lay out the fds (the fd store's
 * at 3.. for LISTEN_FDS, then this version's end of a SOCK_SEQPACKET
 * socketpair with the keeper, LIVEUP_FD), reset signals, exec. Every
 * other fd of the keeper is O_CLOEXEC and does not reach the service. An
 * exec failure is reported back through a CLOEXEC pipe, so the caller
 * learns "not found" at once rather than from an exit status 127. */
#pragma once

#include "update/fdstore.h"

#include <sys/types.h>

struct upd_spawn_opts {
        char *const *argv;
        const char *name;
        unsigned generation;
        const char *notify_path;
        const struct upd_fdstore *listen; /* LISTEN_FDS; may be NULL */
        bool pdeathsig; /* SIGKILL when the keeper dies (uncommitted version) */
};

/* Start it. *ret_sock is the keeper's end (non-blocking, CLOEXEC),
 * *ret_pidfd watches the child. On failure nothing is left running and
 * `err` says why. */
int upd_spawn(const struct upd_spawn_opts *o, pid_t *ret_pid, int *ret_pidfd, int *ret_sock,
              struct errbuf *err);

/* Resolve `file` as execvp() would (PATH when it has no '/') and check it
 * is an executable regular file: 0, -ENOENT or -EACCES. */
int upd_check_exec(const char *file, char *ret_path, size_t size);
