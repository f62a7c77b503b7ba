/* A unified diff (`diff -u`, `git diff`), read once (udiff.c) for both
 * users of FIX.diff in `liveup build --diff`: tree.c takes the files it
 * changes (whether the patched tree can be built incrementally, and what
 * that build must compile again), diff.c each file's hunks (the line map
 * that says which lines of a replaced function changed, and tells a
 * __LINE__ that moved from a real change).
 *
 * Lifecycle: lb_udiff_parse()/lb_udiff_read() return a struct lb_udiff
 * the caller owns and frees with lb_udiff_free(); the queries below only
 * read it. */
#pragma once

#include "base/macro.h"
#include "base/util.h"

/* One hunk: old lines [old, old + n_old) became new lines [new, new +
 * n_new) ("-old,n_old +new,n_new"; with a count of 0 the start is the
 * line before). ops has one character per line of the hunk's body, in
 * order: ' ' (a line of both sides), '-' (old only), '+' (new only). */
struct lb_hunk {
        uint64_t old, n_old, new, n_new;
        char *ops;
        size_t n_ops;
        size_t line; /* where its "@@" header is in the diff, from 1 */
};

/* One "--- OLD" / "+++ NEW" section of the diff. */
struct lb_udiff_file {
        char *path;     /* relative to the root, as patch -p1 takes it ("b/src/x.c"
                         * -> "src/x.c", "." components dropped): NEW, or OLD
                         * when the diff deletes the file */
        bool deleted;   /* NEW is /dev/null */
        struct lb_hunk *hunks;
        size_t n_hunks;
};

struct lb_udiff {
        char **touched;         /* every file the diff changes, relative to the root,
                                 * each once, in the order of the diff: each
                                 * section's path, and both names of a git rename
                                 * or copy (a pure rename has no section) */
        size_t n_touched;
        struct lb_udiff_file *files; /* the sections, in order */
        size_t n_files;
        char *outside;          /* the first "---"/"+++" name that leaves the tree
                                 * (a ".." component), as written; NULL: none */
};

/* Parse `len` bytes of `text`. Hunk bodies are read by their headers'
 * counts, never by what a line looks like: a removed line "-- a/x" or
 * an added "++ b/y" is not a header. Returns 0 (also when nothing in
 * `text` is a unified diff: n_touched is 0 then), -ENOMEM, or -EBADMSG
 * for a hunk whose body does not match its header's counts, or whose
 * header does not parse; `err` then says, in one line, "'DISPLAY' line
 * N: ..." with the line of the hunk's header. */
int lb_udiff_parse(const char *text, size_t len, const char *display, struct lb_udiff **ret,
                   struct errbuf *err);
/* lb_udiff_parse() of the file at `path` ("cannot read 'DISPLAY': ..."
 * when it cannot be read). */
int lb_udiff_read(const char *path, const char *display, struct lb_udiff **ret,
                  struct errbuf *err);
void lb_udiff_free(struct lb_udiff *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_udiff *, lb_udiff_free);

/* The first section that leaves file `path` (relative to the root) in
 * place, i.e. not one that deletes it; NULL when there is none. */
const struct lb_udiff_file *lb_udiff_file(const struct lb_udiff *u, const char *path);
/* Where line L of f before the patch is after it: its line number then,
 * or 0 when the diff removes it. */
uint64_t lb_udiff_new_line(const struct lb_udiff_file *f, uint64_t L);
/* Whether the diff changes a line of f within [from, to] after the
 * patch: adds one there, or removes one next to one there. */
bool lb_udiff_touches(const struct lb_udiff_file *f, uint64_t from, uint64_t to);
