/* Building a project twice, unpatched and patched, through liveup's
 * compiler wrapper (tree.c, wrapper.c), for `liveup build --diff`.
 *
 * lb_trees_build():
 *   1. reads FIX.diff (udiff.c: the files it changes, and their hunks;
 *      unified diffs only) and checks that it applies to DIR (`patch -p1
 *      --dry-run -F0`: no fuzz, a hunk whose context differs is
 *      refused);
 *   2. copies DIR to a scratch folder "orig" (`cp -a`), removes the build
 *      outputs left in DIR from the copy (ELF files, and *.o *.a *.so*
 *      *.lo *.gch *.pch by name) so that everything is compiled through
 *      the wrapper, and runs BUILD-COMMAND there with the wrapper as the
 *      compiler ($CC, and `cc`/`gcc`/`c99` first in $PATH);
 *   3. makes the patched tree "patched": a copy of the built "orig" with
 *      the diff applied and BUILD-COMMAND run again (an incremental
 *      build); when the diff touches anything but .c files, when a .c
 *      file the diff touches was not recompiled, when the incremental
 *      build fails or compiles files of "orig" (absolute paths), the
 *      patched tree is instead built from a fresh copy of DIR with the
 *      diff applied;
 *   4. returns every object compiled in each tree (from the wrapper's
 *      log; objects a build deleted again, e.g. configure probes, are
 *      left out), paired by path.
 * The wrapper runs the real compiler with the project's arguments plus
 * -ffunction-sections -fdata-sections -fno-lto (after them, so they win)
 * and logs (cwd, source, object) of every compile-only (-c) invocation.
 *
 * Progress ("building the unpatched tree (1/2): make", the wall time of
 * each build, why the patched tree is rebuilt from scratch) goes to
 * stderr through log_info() when `progress` is set; the build's output
 * always goes to stderr, never stdout (stdout may carry --json).
 *
 * Lifecycle: the scratch folder lives under $TMPDIR (or /tmp) until
 * lb_trees_free(), which removes it (unless o->keep). lb_trees_build()
 * removes it itself when it fails (unless o->keep). With o->keep its
 * path is printed (log_info()) as soon as it exists, progress or not. */
#pragma once

#include "base/macro.h"
#include "base/util.h"
#include "build/udiff.h"

struct lb_object_pair {
        char *rel;      /* object path relative to the tree root ("src/http.o") */
        char *src_rel;  /* its source file, relative ("src/http.c"); absolute
                         * when outside the tree */
        char *orig;     /* absolute path of the object in the unpatched tree */
        char *patched;  /* absolute path in the patched tree; NULL: not built there */
        bool recompiled; /* compiled again for the patched tree */
};

struct lb_trees {
        char *dir;              /* the scratch folder */
        char *orig_root, *patched_root;
        struct lb_object_pair *objs; /* every object compiled in the unpatched tree */
        size_t n_objs;
        struct lb_udiff *diff;  /* FIX.diff as read: the files it changes
                                 * (touched), and their hunks */
        char **added;           /* objects built only in the patched tree (new .c
                                 * files), relative to patched_root */
        size_t n_added;
        bool incremental;       /* the patched tree was built incrementally */
        double orig_seconds, patched_seconds; /* the two builds' wall times (patched:
                                               * an incremental attempt included) */
        bool keep;              /* lb_trees_free() leaves the folder */
};

struct lb_trees_opts {
        const char *diff;       /* FIX.diff, a unified diff for patch -p1 in DIR */
        const char *src;        /* DIR */
        char *const *cmd;       /* BUILD-COMMAND, argv style (run without a shell) */
        size_t n_cmd;
        const char *self;       /* the liveup executable (becomes the wrapper) */
        bool progress;          /* narrate on stderr */
        bool keep;              /* keep the scratch folder (debugging) */
};

/* Returns 0, or:
 *   -EINVAL  bad input: DIR or FIX.diff missing or unreadable, no
 *            command, a hunk of FIX.diff that does not match its header
 *            ("'FIX.diff' line 12: the hunk does not match its header: ...");
 *   -ENOEXEC the diff does not apply (message: "'FIX.diff' does not apply
 *            to 'DIR': src/x.c: hunk #1 FAILED at 12"), is not a
 *            unified diff, or changes a file outside the tree;
 *   -EPROTO  a build command failed (message: "build command failed in
 *            the unpatched tree: 'make' exited with status 2"), or
 *            compiled nothing through the wrapper;
 *   -ENOTSUP the build wrote an object outside its tree (named);
 *   -ENOENT  no C compiler, or the build command, patch or cp not found;
 *   other -errno on system errors.
 * `err` holds one line naming the file or command and the reason. */
int lb_trees_build(const struct lb_trees_opts *o, struct lb_trees **ret, struct errbuf *err);
void lb_trees_free(struct lb_trees *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_trees *, lb_trees_free);

/* The compiler wrapper's main(): called by the liveup executable when it
 * is run as "cc", "gcc" or "c99" with LIVEUP_CC_LOG set (see tree.c).
 * Execs the real compiler ($LIVEUP_CC_REAL); returns only on failure,
 * with an exit status. */
int lb_cc_wrapper_main(int argc, char **argv);
