/* Reading a unified diff: the files it changes and each file's hunks
 * (see udiff.h for who uses what).
 *
 * What is read, line by line (a line ends at '\n'; a CR before it is
 * kept in hunk lines and dropped from names), as GNU diff, git and
 * `patch -p1` write and read it:
 *   - A section header is a "--- OLD" line directly followed by a
 *     "+++ NEW" line. A name ends at a tab (a timestamp follows) and is
 *     C-unquoted when git quoted it; /dev/null is no file (NEW: the
 *     section deletes OLD; OLD: it creates NEW). -p1 takes the first
 *     component away (strip_p1()).
 *   - git's "rename from NAME", "rename to NAME", "copy from NAME", "copy
 *     to NAME" name files without the a/ b/ prefix; a name that leaves
 *     the tree is left to patch, which refuses it with its own message.
 *   - "@@ -A[,B] +C[,D] @@[ TEXT]" opens a hunk of B lines of the old file
 *     and D of the new (a count left out is 1). Its body is read by those
 *     counts alone: ' ' is a line of both sides, and so is an empty line
 *     or a lone CR (a context line whose blank an editor or a mailer
 *     stripped); '-' is an old line, '+' a new one; "\ No newline at end
 *     of file" is skipped. So a removed line "-- a/x" is never taken for
 *     a header, nor an added "++ b/y".
 *   - Anything else outside a hunk is skipped, as patch skips it: git's
 *     "diff --git", "index" and mode lines, mail text, a "-- " signature.
 * Stricter than patch: a hunk whose body does not match its header's
 * counts is a bad input (-EBADMSG), both when the body ends early
 * (another line, or the end of the diff, comes before the counts are
 * reached; patch reads the next section's header as hunk lines then, or
 * pads the hunk with blank lines) and when it goes on (a ' ', '+' or '-'
 * line right after its last one that is not a section header or a
 * signature; patch drops such a line silently). */
#include "build/udiff.h"

#include <inttypes.h>
#include <string.h>

/* ---- Names ------------------------------------------------------------------ */

/* The name in a "--- NAME" or "+++ NAME" line, or of a git "rename from
 * NAME" line: up to a tab (a timestamp follows), without a trailing CR
 * (nor, when there is no tab, trailing blanks), C-unquoted when git
 * quoted it. */
static char *header_name(const char *s, size_t len)
{
        const char *tab = memchr(s, '\t', len);
        char *name, *p;

        if (tab)
                len = (size_t)(tab - s);
        while (len && (s[len - 1] == '\r' || (s[len - 1] == ' ' && !tab)))
                len--;
        name = strndup(s, len);
        if (!name || name[0] != '"' || len < 2 || name[len - 1] != '"')
                return name;
        p = name;
        for (size_t i = 1; i + 1 < len; i++) {
                char c = name[i];

                if (c == '\\' && i + 2 < len) {
                        c = name[++i];
                        if (c >= '0' && c <= '7') {
                                unsigned v = 0;

                                for (int k = 0; k < 3 && i + 1 < len && name[i] >= '0' &&
                                                name[i] <= '7';
                                     k++, i++)
                                        v = v * 8 + (unsigned)(name[i] - '0');
                                i--;
                                c = (char)v;
                        } else if (c == 't')
                                c = '\t';
                        else if (c == 'n')
                                c = '\n';
                }
                *p++ = c;
        }
        *p = 0;
        return name;
}

/* What -p1 leaves of a header name ("b/src/x.c" -> "src/x.c"), without
 * "." components. Returns -EXDEV for a name that leaves the tree, -ENOENT
 * for one that -p1 leaves nothing of. */
static int strip_p1(const char *name, char **ret)
{
        const char *s = strchr(name, '/');
        _cleanup_free_ char *out = NULL;
        char *w;

        if (!s)
                return -ENOENT; /* patch finds no file for it either */
        while (*s == '/')
                s++;
        out = strdup(s);
        if (!out)
                return -ENOMEM;
        /* Drop "." components; refuse ".." (patch refuses it too). */
        w = out;
        for (const char *c = s; *c;) {
                size_t n = strcspn(c, "/");

                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return -EXDEV;
                if (!(n == 1 && c[0] == '.') && n > 0) {
                        if (w != out)
                                *w++ = '/';
                        memmove(w, c, n);
                        w += n;
                }
                c += n;
                while (*c == '/')
                        c++;
        }
        *w = 0;
        if (!*out)
                return -ENOENT;
        *ret = TAKE_PTR(out);
        return 0;
}

/* An absolute name, or one with a ".." component. */
static bool leaves_tree(const char *name)
{
        size_t n = strlen(name);

        return name[0] == '/' || strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
               strstr(name, "/../") || (n >= 3 && strcmp(name + n - 3, "/..") == 0);
}

/* Add `rel` to u->touched unless it is there. */
static int touched_add(struct lb_udiff *u, const char *rel)
{
        char **nv;

        for (size_t i = 0; i < u->n_touched; i++)
                if (strcmp(u->touched[i], rel) == 0)
                        return 0;
        nv = reallocarray(u->touched, u->n_touched + 1, sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        u->touched = nv;
        nv[u->n_touched] = strdup(rel);
        if (!nv[u->n_touched])
                return -ENOMEM;
        u->n_touched++;
        return 0;
}

/* ---- The parser ------------------------------------------------------------- */

struct parser {
        const char *display;
        struct errbuf *err;
        struct lb_udiff *u;
        struct lb_udiff_file *file; /* where hunks go; NULL: nowhere (before any
                                     * section, or one without a usable name) */
        /* The hunk being read (left_old or left_new > 0) or last read: */
        struct lb_hunk cur;         /* its header (no ops) */
        struct lb_hunk *rec;        /* its record in `file`, NULL: none ... */
        size_t cap;                 /* ...and the room in its ops */
        uint64_t left_old, left_new; /* lines still to come */
        bool after_hunk;            /* the last line (bar "\ ...") ended a hunk */
};

static bool starts_with(const char *p, size_t ll, const char *prefix)
{
        size_t n = strlen(prefix);

        return ll >= n && memcmp(p, prefix, n) == 0;
}

/* A line that starts with the 4-character `prefix` and goes on ("--- NAME",
 * "+++ NAME", "@@ -..."). */
static bool is_header(const char *p, size_t ll, const char *prefix)
{
        return ll > 4 && starts_with(p, ll, prefix);
}

/* A mail signature separator: "-- ", or "--" with its blank stripped. */
static bool is_signature(const char *p, size_t ll)
{
        if (ll && p[ll - 1] == '\r')
                ll--;
        return (ll == 2 || ll == 3) && memcmp(p, "-- ", ll) == 0;
}

/* The current hunk does not match its header: its body ended early
 * (extra_line 0), or line `extra_line` is one more than it counts. */
static int bad_counts(const struct parser *ps, size_t extra_line)
{
        const struct lb_hunk *h = &ps->cur;

        if (extra_line)
                errbuf_set(ps->err,
                           "'%s' line %zu: the hunk does not match its header: the header "
                           "counts %" PRIu64 " old and %" PRIu64 " new lines, line %zu is one "
                           "too many",
                           ps->display, h->line, h->n_old, h->n_new, extra_line);
        else
                errbuf_set(ps->err,
                           "'%s' line %zu: the hunk does not match its header: the header "
                           "counts %" PRIu64 " old and %" PRIu64 " new lines, the hunk has "
                           "%" PRIu64 " and %" PRIu64,
                           ps->display, h->line, h->n_old, h->n_new, h->n_old - ps->left_old,
                           h->n_new - ps->left_new);
        return -EBADMSG;
}

/* A decimal number at *p (before `end`) that fits in 19 digits. */
static bool parse_number(const char **p, const char *end, uint64_t *ret)
{
        uint64_t v = 0;
        size_t n = 0;

        while (*p < end && **p >= '0' && **p <= '9') {
                if (++n > 19)
                        return false;
                v = v * 10 + (uint64_t)(**p - '0');
                (*p)++;
        }
        if (n == 0)
                return false;
        *ret = v;
        return true;
}

/* "START[,COUNT]" at *p; COUNT defaults to 1. */
static bool parse_range(const char **p, const char *end, uint64_t *ret_start, uint64_t *ret_count)
{
        uint64_t count = 1;

        if (!parse_number(p, end, ret_start))
                return false;
        if (*p < end && **p == ',') {
                (*p)++;
                if (!parse_number(p, end, &count))
                        return false;
        }
        *ret_count = count;
        return true;
}

/* "@@ -A[,B] +C[,D] @@..." at line `no`; `rest` bytes of the diff
 * follow it (a bound on the lines of its body). */
static int hunk_open(struct parser *ps, const char *p, size_t ll, size_t no, size_t rest)
{
        const char *end = p + ll, *s = p + 4;
        struct lb_hunk h = { .line = no };

        if (!parse_range(&s, end, &h.old, &h.n_old) || !starts_with(s, (size_t)(end - s), " +") ||
            (s += 2, !parse_range(&s, end, &h.new, &h.n_new)) ||
            !starts_with(s, (size_t)(end - s), " @@")) {
                errbuf_set(ps->err,
                           "'%s' line %zu: the hunk header is not \"@@ -START,COUNT "
                           "+START,COUNT @@\"",
                           ps->display, no);
                return -EBADMSG;
        }
        ps->cur = h;
        ps->rec = NULL;
        ps->cap = 0;
        ps->left_old = h.n_old;
        ps->left_new = h.n_new;
        ps->after_hunk = h.n_old == 0 && h.n_new == 0;
        if (ps->file) {
                struct lb_udiff_file *f = ps->file;
                struct lb_hunk *nh = reallocarray(f->hunks, f->n_hunks + 1, sizeof(*nh));
                /* Every line of the body takes a byte at least. */
                uint64_t most = MIN(h.n_old, (uint64_t)rest) + MIN(h.n_new, (uint64_t)rest);
                size_t cap = (size_t)MIN(most, (uint64_t)rest);

                if (!nh)
                        return -ENOMEM;
                f->hunks = nh;
                if (cap > 0) {
                        h.ops = malloc(cap);
                        if (!h.ops)
                                return -ENOMEM;
                }
                nh[f->n_hunks] = h;
                ps->rec = &nh[f->n_hunks++];
                ps->cap = cap;
        }
        return 0;
}

/* A line of the hunk being read (line `no`). */
static int hunk_line(struct parser *ps, const char *p, size_t ll, size_t no)
{
        char c = ll == 0 || (ll == 1 && p[0] == '\r') ? ' ' : p[0];

        if (c == '\\')
                return 0; /* "\ No newline at end of file" */
        if (c != ' ' && c != '-' && c != '+')
                return bad_counts(ps, 0);
        if ((c != '+' && ps->left_old == 0) || (c != '-' && ps->left_new == 0))
                return bad_counts(ps, no);
        if (c != '+')
                ps->left_old--;
        if (c != '-')
                ps->left_new--;
        if (ps->rec && ps->rec->n_ops < ps->cap)
                ps->rec->ops[ps->rec->n_ops++] = c;
        ps->after_hunk = ps->left_old == 0 && ps->left_new == 0;
        return 0;
}

/* A "--- OLD" / "+++ NEW" pair: a new section, where the next hunks go
 * (nowhere when -p1 leaves nothing of the name, or it leaves the tree). */
static int section_open(struct parser *ps, const char *old_s, size_t old_len, const char *new_s,
                        size_t new_len)
{
        _cleanup_free_ char *old = header_name(old_s, old_len), *new = header_name(new_s, new_len);
        _cleanup_free_ char *rel = NULL;
        struct lb_udiff *u = ps->u;
        struct lb_udiff_file *nf;
        const char *name;
        bool deleted;
        int r;

        if (!old || !new)
                return -ENOMEM;
        ps->file = NULL;
        deleted = strcmp(new, "/dev/null") == 0;
        name = deleted ? old : new;
        if (strcmp(name, "/dev/null") == 0)
                return 0;
        r = strip_p1(name, &rel);
        if (r == -EXDEV) {
                if (!u->outside) {
                        u->outside = strdup(name);
                        if (!u->outside)
                                return -ENOMEM;
                }
                return 0;
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = touched_add(u, rel);
        if (r < 0)
                return r;
        nf = reallocarray(u->files, u->n_files + 1, sizeof(*nf));
        if (!nf)
                return -ENOMEM;
        u->files = nf;
        nf[u->n_files] = (struct lb_udiff_file){ .path = TAKE_PTR(rel), .deleted = deleted };
        ps->file = &nf[u->n_files++];
        return 0;
}

/* A line outside a hunk (line `no`); `next` is the line after it (up
 * to `end`), which a section header consumes too (*ret_skip = true). */
static int other_line(struct parser *ps, const char *p, size_t ll, size_t no, const char *next,
                      const char *end, bool *ret_skip)
{
        static const char *const git_names[] = { "rename from ", "rename to ", "copy from ",
                                                 "copy to " };
        bool after = ps->after_hunk;

        if (ll && p[0] == '\\')
                return 0; /* "\ No newline at end of file" after a hunk's last line */
        ps->after_hunk = false;
        if (is_header(p, ll, "--- ") && next < end) {
                const char *nl = memchr(next, '\n', (size_t)(end - next));
                size_t nll = nl ? (size_t)(nl - next) : (size_t)(end - next);

                if (is_header(next, nll, "+++ ")) {
                        *ret_skip = true;
                        return section_open(ps, p + 4, ll - 4, next + 4, nll - 4);
                }
        }
        if (is_header(p, ll, "@@ -"))
                return hunk_open(ps, p, ll, no, (size_t)(end - next));
        if (after && ll && (p[0] == ' ' || p[0] == '+' || (p[0] == '-' && !is_signature(p, ll))))
                return bad_counts(ps, no);
        for (size_t i = 0; i < ELEMENTSOF(git_names); i++) {
                size_t n = strlen(git_names[i]);
                _cleanup_free_ char *name = NULL;

                if (!starts_with(p, ll, git_names[i]))
                        continue;
                name = header_name(p + n, ll - n);
                if (!name)
                        return -ENOMEM;
                if (!*name || leaves_tree(name))
                        return 0; /* patch refuses it, and says why */
                return touched_add(ps->u, name);
        }
        return 0;
}

int lb_udiff_parse(const char *text, size_t len, const char *display, struct lb_udiff **ret,
                   struct errbuf *err)
{
        _cleanup_(lb_udiff_freep) struct lb_udiff *u = calloc(1, sizeof(*u));
        struct parser ps = { .display = display, .err = err, .u = u };
        const char *end = text + len;
        size_t no = 0;
        int r;

        if (!u)
                return -ENOMEM;
        for (const char *p = text; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
                const char *next = nl ? nl + 1 : end;
                bool skip = false;

                no++;
                if (ps.left_old || ps.left_new)
                        r = hunk_line(&ps, p, ll, no);
                else
                        r = other_line(&ps, p, ll, no, next, end, &skip);
                if (r < 0)
                        return r;
                if (skip) { /* the "+++" line of a section header */
                        nl = memchr(next, '\n', (size_t)(end - next));
                        next = nl ? nl + 1 : end;
                        no++;
                }
                p = next;
        }
        if (ps.left_old || ps.left_new)
                return bad_counts(&ps, 0);
        *ret = TAKE_PTR(u);
        return 0;
}

int lb_udiff_read(const char *path, const char *display, struct lb_udiff **ret,
                  struct errbuf *err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file_str(path, &text, &len);
        if (r < 0) {
                errbuf_set(err, "cannot read '%s': %s", display, strerror(-r));
                return r;
        }
        return lb_udiff_parse(text, len, display, ret, err);
}

void lb_udiff_free(struct lb_udiff *u)
{
        if (!u)
                return;
        for (size_t i = 0; i < u->n_touched; i++)
                free(u->touched[i]);
        free(u->touched);
        for (size_t i = 0; i < u->n_files; i++) {
                for (size_t k = 0; k < u->files[i].n_hunks; k++)
                        free(u->files[i].hunks[k].ops);
                free(u->files[i].hunks);
                free(u->files[i].path);
        }
        free(u->files);
        free(u->outside);
        free(u);
}

/* ---- The line map ----------------------------------------------------------- */

const struct lb_udiff_file *lb_udiff_file(const struct lb_udiff *u, const char *path)
{
        for (size_t i = 0; u && i < u->n_files; i++)
                if (!u->files[i].deleted && strcmp(u->files[i].path, path) == 0)
                        return &u->files[i];
        return NULL;
}

uint64_t lb_udiff_new_line(const struct lb_udiff_file *f, uint64_t L)
{
        int64_t delta = 0;

        for (size_t i = 0; i < f->n_hunks; i++) {
                const struct lb_hunk *h = &f->hunks[i];
                uint64_t o = h->old, n = h->new;

                if (h->n_old == 0)
                        o++; /* "-L,0": the hunk inserts after line L */
                if (L < o)
                        break;
                if (L < o + h->n_old) {
                        for (size_t k = 0; k < h->n_ops; k++) {
                                char op = h->ops[k];

                                if (op != '+' && o == L)
                                        return op == ' ' ? n : 0;
                                if (op != '+')
                                        o++;
                                if (op != '-')
                                        n++;
                        }
                        return 0;
                }
                delta = (int64_t)(h->new + h->n_new) - (int64_t)(h->old + h->n_old);
                if (h->n_new == 0)
                        delta++;
                if (h->n_old == 0)
                        delta--;
        }
        return (uint64_t)((int64_t)L + delta);
}

bool lb_udiff_touches(const struct lb_udiff_file *f, uint64_t from, uint64_t to)
{
        for (size_t i = 0; i < f->n_hunks; i++) {
                const struct lb_hunk *h = &f->hunks[i];
                uint64_t n = h->new;

                for (size_t k = 0; k < h->n_ops; k++) {
                        char op = h->ops[k];

                        if (op != ' ' && n >= from && n <= to)
                                return true;
                        if (op != '-')
                                n++;
                }
        }
        return false;
}
