/* Applying and reverting a patch in a running process (stop model). */
#pragma once

#include "livepatch/format.h"
#include "livepatch/registry.h"
#include "livepatch/transition.h"

struct lp_apply_opts {
        double timeout; /* seconds to retry while a function is busy; 0: 5 s */
};

struct lp_apply_result {
        char id[96];
        size_t n_funcs;
        uint64_t base, size;       /* patch image in the target */
        uint64_t data_base;        /* its data part, when apart from the code (else 0) */
        int arena;                 /* the arena it was carved from; -1: its own mappings */
        bool arena_created;        /* that arena was made by this apply */
        unsigned remote_calls;     /* remote syscalls and calls run in the target */
        size_t n_stubs, n_got;
        struct lp_transition_result transition; /* every stop window */
        uint64_t prepare_ns;       /* the preparation window (remote syscalls) */
        uint64_t switch_ns;        /* the longest window of the stop check */
        uint64_t total_ns;         /* attach to detach */
        int recovered;             /* interrupted operations completed first */
};

/* Both first complete any operation a killed liveup left in the target's
 * journal (see registry.h), and count it in `recovered`. */

/* Apply `f` to `pid`. On any failure the process is as it was (exit 1 in
 * the CLI): wrong build-id, bytes that differ from the build, a function
 * too short for the jump, a symbol not found, a function still busy at the
 * timeout, no permission, the process exiting meanwhile. -ENXIO when the
 * process does not have the patch's target object (by build-id) loaded. */
int lp_apply(pid_t pid, const struct lp_file *f, const struct lp_apply_opts *o,
             struct lp_apply_result *ret, struct errbuf *err);

struct lp_revert_result {
        char id[96];
        size_t n_funcs;
        struct lp_transition_result transition;
        uint64_t total_ns;
        int recovered;
};

/* Revert patch `id` of `pid` (NULL: the most recent one) under the same
 * rules: no thread may be inside the patch's code. A patch that has
 * another patch on top of one of its functions is refused (revert that
 * one first). -ENOENT when there is nothing to revert. */
int lp_revert(pid_t pid, const char *id, const struct lp_apply_opts *o,
              struct lp_revert_result *ret, struct errbuf *err);
