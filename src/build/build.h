/* The patch builder (lb_): turns a fix written in C into a .lpo patch file
 * (src/livepatch/format.h) for one target object.
 *
 * Replace mode (`liveup build --replace FIX.c --target BIN`): every
 * function FIX.c defines whose name BIN has replaces that function of BIN;
 * a static of FIX.c that BIN lacks is a new helper; everything FIX.c only
 * declares resolves, at apply time, to BIN's own symbols (statics too) or
 * to the libraries BIN uses, which is checked here.
 *
 * Diff mode (`liveup build --diff FIX.diff --src DIR -- BUILD-COMMAND`):
 * the project is built twice through a compiler wrapper (tree.h), the
 * objects are compared function by function (objdiff.h), the unpatched
 * build is checked against BIN, and only what changed goes into the
 * patch (diff.c). */
#pragma once

#include "base/macro.h"
#include "base/util.h"
#include "livepatch/format.h"

struct lb_replace_opts {
        const char *fix;        /* FIX.c */
        const char *target;     /* BIN: an executable or a shared library */
        const char *output;     /* NULL: FIX's basename, ".c" -> ".lpo", here */
        const char *name;       /* NULL: FIX's basename without ".c" */
        bool cumulative;        /* LP_FLAG_CUMULATIVE */
        char *const *cflags;    /* passed to gcc after liveup's own flags */
        size_t n_cflags;
};

struct lb_result {
        char *output;           /* the file written */
        struct lp_file *patch;  /* what it contains, as read back */
        char **helpers;         /* functions new in the patch (incl. gcc's clones) */
        size_t n_helpers;
        char **undefined;       /* symbols resolved in the target at apply */
        size_t n_undefined;
        char **warnings;        /* one line each, for the user */
        size_t n_warnings;
        /* Diff mode only. */
        char **new_data;        /* variables new in the patch */
        size_t n_new_data;
        char **objects;         /* the objects (sources) the patch comes from */
        size_t n_objects;
        size_t n_checked;       /* functions of the unpatched build checked against BIN */
        bool incremental;       /* the patched tree was built incrementally */
        double build_seconds[2]; /* the unpatched and patched builds */
        double total_seconds;
};

struct lb_diff_opts {
        const char *diff;       /* FIX.diff: a unified diff, applied with patch -p1 in DIR */
        const char *src;        /* DIR: the project's source tree */
        const char *target;     /* BIN; NULL: the one ELF file of the build that has the
                                 * changed functions, at the same place in DIR */
        const char *output;     /* NULL: FIX's basename, ".diff"/".patch" -> ".lpo", here */
        const char *name;       /* NULL: FIX's basename without ".diff"/".patch" */
        char *const *cmd;       /* BUILD-COMMAND */
        size_t n_cmd;
        const char *self;       /* the liveup executable (the compiler wrapper) */
        bool progress;          /* narrate on stderr */
        bool keep;              /* keep the scratch trees (debugging) */
};

void lb_result_free(struct lb_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_result *, lb_result_free);

/* Build a replace-mode patch. Temporary files live in a private folder
 * under $TMPDIR (or /tmp) that is removed before returning; the output is
 * written to a temporary name next to it and renamed into place, so a
 * failure leaves no partial file. gcc's own diagnostics go to stderr.
 *
 * Returns 0, or:
 *   -EINVAL  bad input: FIX.c or BIN missing or unreadable, BIN not an
 *            executable or shared library of this ISA, a bad name;
 *   any other -errno: the build was refused or failed (no build-id in
 *            BIN, FIX.c does not compile, a function too short for the
 *            jump, a symbol that cannot be resolved, ...).
 * Either way `err` holds one line naming the file and the reason. */
int lb_build_replace(const struct lb_replace_opts *o, struct lb_result **ret,
                     struct errbuf *err);

/* Build a patch from a source diff (see the top of this file). Returns 0,
 * or -EINVAL for bad input (missing files, no command, a bad name), or
 * another -errno when the build was refused or failed (the diff does not
 * apply, a build fails, the unpatched build does not match BIN, changed
 * data, a function too short, nothing changed...). `err` holds one line
 * naming the thing and the reason. */
int lb_build_diff(const struct lb_diff_opts *o, struct lb_result **ret, struct errbuf *err);
