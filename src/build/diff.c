/* Diff mode of the patch builder: FIX.diff + DIR + BUILD-COMMAND -> .lpo.
 *
 *   1. BIN is opened first (a missing build-id refuses before any build).
 *   2. The project is built unpatched and patched (tree.c), every object
 *      compiled with -ffunction-sections -fdata-sections; FIX.diff is
 *      read there (udiff.c), its hunks kept (trees->diff) for the
 *      reasons (explain()) and the moved line numbers (line_moved()).
 *   3. Each object compiled again for the patched tree is compared with
 *      its unpatched twin (objdiff.c): changed and new functions, new
 *      data; changed data is refused there.
 *   4. The unpatched build must BE the target: every function of every
 *      unpatched object that BIN has (found by name, and for statics by
 *      source file) must have BIN's size and bytes, except where the
 *      static linker filled in addresses (relocations, and the opcode
 *      bytes it may relax: arch_reloc_span). The first function that
 *      differs refuses the build: BIN was built from other sources or
 *      with other flags, and a patch made from this build would not fit.
 *   5. Every function and variable of the target that the patch's code
 *      refers to is bound to its address in BIN (the .lpo's bindings), so
 *      statics that share a name in two files are never confused; every
 *      changed function is replaced at its address in BIN (too short for
 *      the jump: refused).
 *   6. The patch object is written (emit.c), its .liveup metadata
 *      attached, the result read back as apply reads it and renamed into
 *      place.
 * The scratch trees and temporary files are removed on every path out. */
#include "build/build.h"

#include "arch/arch.h"
#include "base/log.h"
#include "build/common.h"
#include "build/objdiff.h"
#include "build/tree.h"
#include "elf/elf.h"

#include <inttypes.h>
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_CANDIDATES 64

struct pair {
        struct lb_obj *u, *p;
        const struct lb_object_pair *op;
};

struct diff {
        const struct lb_diff_opts *o;
        struct elf_file *bin;
        const char *bin_name;
        struct pair *pairs;  /* objects whose patched build differs */
        size_t n_pairs;
        struct lp_func *funcs;
        size_t n_funcs;
        struct lp_bind *binds;
        size_t n_binds;
        struct lb_strv names; /* storage for funcs' and binds' strings */
        struct lb_strv helpers, new_data, objects, warnings, undefined;
        size_t n_checked;
        const struct lb_trees *trees; /* also FIX.diff's hunks (trees->diff) */
        /* line_moved()'s cache: the function last asked about. */
        const struct lb_sym *moved_fn;
        uint64_t moved_from, moved_to;
        bool moved_ok;
};

static void diff_done(struct diff *d)
{
        for (size_t i = 0; i < d->n_pairs; i++) {
                lb_obj_free(d->pairs[i].u);
                lb_obj_free(d->pairs[i].p);
        }
        free(d->pairs);
        free(d->funcs);
        free(d->binds);
        lb_strv_done(&d->names);
        lb_strv_done(&d->helpers);
        lb_strv_done(&d->new_data);
        lb_strv_done(&d->objects);
        lb_strv_done(&d->warnings);
        lb_strv_done(&d->undefined);
}

/* What a diff's name ends with: dropped from the default patch name. */
static const char *const diff_exts[] = { ".diff", ".patch", NULL };

/* Where function `name` (gcc's suffixes dropped) is defined in the C
 * file at `path`: a line that starts with the name or has it after the
 * type, followed by "(", whose declaration goes on to a "{" before any
 * ";", to the next "}" in column 0. A heuristic for people (the why of
 * a replaced function), never used to decide what goes into a patch. */
static bool function_lines(const char *path, const char *name, uint64_t *ret_from,
                           uint64_t *ret_to)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0, nlen = strcspn(name, ".");
        uint64_t no = 0, from = 0;
        char *line, *next;
        bool in_decl = false;

        if (read_file_str(path, &text, &len) < 0)
                return false;
        for (line = text; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                no++;
                if (from && !in_decl) {
                        if (line[0] == '}') {
                                *ret_from = from;
                                *ret_to = no;
                                return true;
                        }
                        continue;
                }
                if (in_decl) {
                        if (strchr(line, ';') && !strchr(line, '{')) {
                                from = 0;
                                in_decl = false;
                        } else if (strchr(line, '{'))
                                in_decl = false;
                        continue;
                }
                if (line[0] == ' ' || line[0] == '\t' || line[0] == '#')
                        continue;
                for (char *p = strstr(line, name); p; p = strstr(p + 1, name)) {
                        const char *q = p + nlen;
                        if ((p > line && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                                          (p[-1] >= 'A' && p[-1] <= 'Z') ||
                                          (p[-1] >= '0' && p[-1] <= '9'))))
                                continue;
                        while (*q == ' ')
                                q++;
                        if (*q != '(')
                                continue;
                        from = no;
                        in_decl = !strchr(q, '{');
                        if (!in_decl) {
                                /* int f(void) { return 1; }: one line. */
                                int depth = 0;
                                bool closed = false;
                                for (const char *c = strchr(q, '{'); *c; c++) {
                                        depth += *c == '{' ? 1 : *c == '}' ? -1 : 0;
                                        if (*c == '}' && depth == 0)
                                                closed = true;
                                }
                                if (closed) {
                                        *ret_from = *ret_to = no;
                                        return true;
                                }
                        }
                        if (!in_decl && strchr(q, ';') && strchr(q, ';') < strchr(q, '{'))
                                from = 0;
                        if (strchr(q, ';') && !strchr(q, '{'))
                                from = 0, in_decl = false;
                        break;
                }
        }
        return false;
}

/* Why function s of object p (built from src_rel) is replaced, in words. */
static void explain(const struct lb_trees *t, const struct lb_obj *p, const struct lb_sym *s,
                    char *buf, size_t size)
{
        const struct lb_udiff_file *f = lb_udiff_file(t->diff, p->rel);
        _cleanup_free_ char *path = NULL;
        uint64_t from, to;
        char base[256];

        if (s->why && strcmp(s->why, "changed") != 0) {
                snprintf(buf, size, "%s (%s)", s->why, p->rel);
                return;
        }
        snprintf(base, sizeof(base), "%.*s", (int)strcspn(s->name, "."), s->name);
        if (asprintf(&path, "%s/%s", t->patched_root, p->rel) < 0 ||
            !function_lines(path, base, &from, &to)) {
                snprintf(buf, size, "changed in %s", p->rel);
                return;
        }
        if (f && lb_udiff_touches(f, from, to))
                snprintf(buf, size, "changed in %s (lines %" PRIu64 "-%" PRIu64 ")", p->rel,
                         from, to);
        else
                snprintf(buf, size,
                         "changed in %s, though not its own lines (%" PRIu64 "-%" PRIu64
                         "): a function it inlines, a macro or a type it uses changed",
                         p->rel, from, to);
}

/* lb_line_moved_fn: a 4-byte value that differs between the builds of
 * function s is a line number that moved when it is a line of s itself:
 * s's own lines are untouched by the diff, `new` lies within them, and
 * the diff moves line `old` of its file to `new`. Anything else (s's
 * lines changed, s not found in its file) is a real difference. */
static bool line_moved(void *userdata, const struct lb_obj *p, const struct lb_sym *s,
                       uint64_t old, uint64_t new)
{
        struct diff *d = userdata;
        const struct lb_udiff_file *f;
        char base[256];

        if (old == new || !d->trees)
                return false;
        f = lb_udiff_file(d->trees->diff, p->rel);
        if (!f)
                return false;
        if (d->moved_fn != s) {
                _cleanup_free_ char *path = NULL;

                d->moved_fn = s;
                d->moved_ok = false;
                snprintf(base, sizeof(base), "%.*s", (int)strcspn(s->name, "."), s->name);
                if (asprintf(&path, "%s/%s", d->trees->patched_root, p->rel) < 0)
                        return false;
                if (function_lines(path, base, &d->moved_from, &d->moved_to) &&
                    !lb_udiff_touches(f, d->moved_from, d->moved_to))
                        d->moved_ok = true;
        }
        if (!d->moved_ok || new < d->moved_from || new > d->moved_to)
                return false;
        return lb_udiff_new_line(f, old) == new;
}

/* ---- Finding the unpatched build's symbols in BIN ------------------------ */

static int func_differs(const struct diff *d, const struct lb_obj *u, const struct lb_sym *s,
                        const struct elf_symbol *t, uint64_t *ret_bad);

/* BIN's symbol for symbol s of unpatched object u: by name, of the same
 * kind; a static (or a hidden global, which the linker makes local) also
 * by source file; then by size. -ENOENT when BIN has none, -ENOTUNIQ when
 * it cannot be told apart. */
static int bin_find(const struct diff *d, const struct lb_obj *u, const struct lb_sym *s,
                    const struct elf_symbol **ret)
{
        const struct elf_symbol *c[MAX_CANDIDATES], *keep[MAX_CANDIDATES];
        bool func = lb_sym_is_func(u, s);
        size_t n, k = 0;

        n = MIN(elf_file_lookup_all(d->bin, s->name, c, ELEMENTSOF(c)), ELEMENTSOF(c));
        for (size_t i = 0; i < n; i++) {
                bool cf = c[i]->type == ELF_SYM_FUNC;
                if (cf != func || (!func && c[i]->type == ELF_SYM_OTHER))
                        continue;
                /* One symbol may be listed twice (.symtab and .dynsym). */
                bool dup = false;
                for (size_t j = 0; j < k; j++)
                        dup |= keep[j]->addr == c[i]->addr;
                if (!dup)
                        keep[k++] = c[i];
        }
        if (k > 1 || (k == 1 && s->bind == STB_LOCAL)) {
                /* By source file: a static follows its file's STT_FILE,
                 * which is the name the compiler was given; the same build
                 * commands give the same name (exactly; by base name only
                 * when no name is the same). */
                size_t m = 0, exact = 0;
                for (size_t i = 0; i < k; i++)
                        if (keep[i]->local && keep[i]->file && u->file &&
                            strcmp(keep[i]->file, u->file) == 0)
                                exact++;
                for (size_t i = 0; i < k; i++) {
                        if (keep[i]->local && keep[i]->file && u->file &&
                            (exact ? strcmp(keep[i]->file, u->file) == 0
                                   : strcmp(path_basename(keep[i]->file),
                                            path_basename(u->file)) == 0))
                                keep[m++] = keep[i];
                        else if (!keep[i]->local && s->bind != STB_LOCAL)
                                keep[m++] = keep[i];
                }
                k = m;
        }
        if (k > 1) {
                size_t m = 0;
                for (size_t i = 0; i < k; i++)
                        if (keep[i]->size == s->size)
                                keep[m++] = keep[i];
                k = m;
        }
        if (k > 1 && func) {
                /* Statics of two files of one base name (p1/main.c and
                 * p2/main.c: STT_FILE holds the base name only): the one
                 * with this function's instructions. */
                size_t m = 0;
                for (size_t i = 0; i < k; i++) {
                        uint64_t bad = 1;
                        if (func_differs(d, u, s, keep[i], &bad) == 0 && bad == 0)
                                keep[m++] = keep[i];
                }
                k = m;
        }
        if (k == 0)
                return -ENOENT;
        if (k > 1)
                return -ENOTUNIQ;
        *ret = keep[0];
        return 0;
}

/* The relocation fields of function s of u, and the bytes around them a
 * static linker may rewrite, as [from, to) offsets into the function. */
struct span {
        uint64_t from, to;
};

static size_t reloc_spans(const struct lb_obj *u, const struct lb_sym *s, struct span *v,
                          size_t max)
{
        const struct lb_sec *sec = &u->secs[s->shndx];
        size_t n = 0;

        for (size_t k = 0; k < sec->n_relas && n < max; k++) {
                const struct lb_rela *r = &sec->relas[k];
                struct arch_reloc_span span;
                uint64_t off;

                if (r->off < s->value || r->off >= s->value + s->size)
                        continue;
                arch_reloc_span(r->type, &span);
                off = r->off - s->value;
                v[n++] = (struct span){ off > span.before ? off - span.before : 0,
                                        MIN(off + span.width, s->size) };
        }
        return n;
}

static bool masked(const struct span *v, size_t n, uint64_t off)
{
        for (size_t i = 0; i < n; i++)
                if (off >= v[i].from && off < v[i].to)
                        return true;
        return false;
}

/* Byte for byte, outside the spans: the usual case. 0, or the first
 * offset that differs + 1. */
static uint64_t bytes_differ(const uint8_t *a, const uint8_t *b, uint64_t size,
                             const struct span *v, size_t n)
{
        for (uint64_t x = 0; x < size; x++)
                if (a[x] != b[x] && !masked(v, n, x))
                        return x + 1;
        return 0;
}

/* A function's instructions without padding (see insns_differ). */
struct insns {
        struct arch_insn *v;
        size_t n;
};

static int decode_all(const uint8_t *code, uint64_t size, struct insns *ret)
{
        size_t cap = 0;

        for (uint64_t off = 0; off < size;) {
                if (ret->n == cap) {
                        cap = cap ? 2 * cap : 64;
                        struct arch_insn *nv = reallocarray(ret->v, cap, sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        ret->v = nv;
                }
                if (arch_decode(code + off, size - off, off, &ret->v[ret->n]) < 0)
                        return -EILSEQ;
                off += ret->v[ret->n].len;
                if (!(ret->v[ret->n].flags & ARCH_INSN_PADDING))
                        ret->n++;
        }
        return 0;
}

/* The index of the first instruction at or after `addr` (padding before
 * it skipped); n for the end. */
static size_t insn_at(const struct insns *l, uint64_t addr)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].addr >= addr)
                        return i;
        return l->n;
}

static bool same_mnemonic(const struct arch_insn *a, const struct arch_insn *b)
{
        size_t la = strcspn(a->text, " "), lb = strcspn(b->text, " ");

        return la == lb && memcmp(a->text, b->text, la) == 0;
}

/* Instruction by instruction, for when the sizes or bytes differ. The
 * assembler lays a function out differently when it has a section of its
 * own (-ffunction-sections) than inside one .text: alignment padding
 * inside the function depends on where the function starts, so padding
 * and, across it, the short or long form of branches differ; and a
 * branch to another function in the same section (a tail call) may be
 * shortened, which a relocated one cannot. So: padding is skipped; the
 * other instructions correspond one for one; a direct branch or call
 * whose field is relocated in the object (to another function) only needs
 * the same mnemonic; one inside the function must reach the same
 * instruction; anything else must have the same bytes outside the
 * relocation spans. 0, or the object's offset of the first instruction
 * that differs + 1. */
static uint64_t insns_differ(const uint8_t *obj, uint64_t n_obj, const uint8_t *lnk,
                             uint64_t n_lnk, const struct span *v, size_t n)
{
        struct insns a = {}, b = {};
        uint64_t bad = 0;

        if (decode_all(obj, n_obj, &a) < 0 || decode_all(lnk, n_lnk, &b) < 0) {
                bad = 1;
                goto out;
        }
        for (size_t i = 0; i < a.n && !bad; i++) {
                const struct arch_insn *x = &a.v[i], *y;
                bool direct, relocated = false;

                if (i >= b.n) {
                        bad = x->addr + 1;
                        break;
                }
                y = &b.v[i];
                direct = (x->flags & (ARCH_INSN_BRANCH | ARCH_INSN_CALL)) &&
                         !(x->flags & ARCH_INSN_INDIRECT) && (x->flags & ARCH_INSN_PC_RELATIVE);
                for (uint64_t k = x->addr; k < x->addr + x->len && !relocated; k++)
                        relocated = masked(v, n, k);
                if (direct) {
                        if (!same_mnemonic(x, y) || (y->flags & ARCH_INSN_INDIRECT) ||
                            !(y->flags & ARCH_INSN_PC_RELATIVE))
                                bad = x->addr + 1;
                        else if (!relocated && insn_at(&a, x->target) != insn_at(&b, y->target))
                                bad = x->addr + 1;
                        continue;
                }
                if (x->len != y->len) {
                        bad = x->addr + 1;
                        break;
                }
                for (uint64_t k = 0; k < x->len; k++)
                        if (x->bytes[k] != y->bytes[k] && !masked(v, n, x->addr + k)) {
                                bad = x->addr + 1;
                                break;
                        }
        }
        if (!bad && a.n != b.n)
                bad = n_obj + 1;
out:
        free(a.v);
        free(b.v);
        return bad;
}

/* Does BIN's function t have the instructions of u's function s (see
 * insns_differ)? *ret_bad: 0 when it does, else the offset in s of the
 * first difference + 1 (UINT64_MAX: the sizes cannot correspond). */
static int func_differs(const struct diff *d, const struct lb_obj *u, const struct lb_sym *s,
                        const struct elf_symbol *t, uint64_t *ret_bad)
{
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ struct span *spans = NULL;
        const uint8_t *code = lb_sym_code(u, s);
        size_t n_spans, cap_spans = u->secs[s->shndx].n_relas + 1;
        uint64_t bad;

        if (!code || t->size == 0 || t->size > s->size) {
                *ret_bad = UINT64_MAX;
                return 0;
        }
        buf = malloc(t->size);
        spans = calloc(cap_spans, sizeof(*spans));
        if (!buf || !spans)
                return -ENOMEM;
        if (elf_file_read_vaddr(d->bin, t->addr, buf, t->size) < 0)
                return -EIO;
        n_spans = reloc_spans(u, s, spans, cap_spans);
        bad = t->size == s->size ? bytes_differ(code, buf, s->size, spans, n_spans) : 1;
        if (bad)
                bad = insns_differ(code, s->size, buf, t->size, spans, n_spans);
        *ret_bad = bad;
        return 0;
}

/* Step 4 for one object: 0, or -EPERM with the first function that
 * differs. *ret_found counts the functions BIN has. */
static int verify_object(struct diff *d, const struct lb_obj *u, size_t *ret_found,
                         struct errbuf *err)
{
        for (size_t i = 1; i < u->n_syms; i++) {
                const struct lb_sym *s = &u->syms[i];
                const struct elf_symbol *t;
                uint64_t bad;
                int r;

                if (!lb_sym_is_func(u, s) || s->size == 0 || !*s->name)
                        continue;
                if (bin_find(d, u, s, &t) < 0)
                        continue;
                (*ret_found)++;
                d->n_checked++;
                r = func_differs(d, u, s, t, &bad);
                if (r == -EIO) {
                        errbuf_set(err, "cannot read function '%s' from '%s'", s->name,
                                   d->bin_name);
                        return r;
                }
                if (r < 0)
                        return r;
                if (bad == UINT64_MAX) {
                        errbuf_set(err,
                                   "the unpatched build does not match '%s': function '%s' (%s) "
                                   "is %" PRIu64 " bytes there and %" PRIu64 " bytes in the "
                                   "build from '%s'; build BIN from the same sources with the "
                                   "same flags",
                                   d->bin_name, s->name, u->rel, t->size, s->size, d->o->src);
                        return -EPERM;
                }
                if (bad) {
                        errbuf_set(err,
                                   "the unpatched build does not match '%s': function '%s' (%s) "
                                   "differs at offset 0x%" PRIx64 "; build BIN from the same "
                                   "sources with the same flags",
                                   d->bin_name, s->name, u->rel, bad - 1);
                        return -EPERM;
                }
        }
        return 0;
}

/* ---- Replaced functions and bindings ------------------------------------- */

static int push_name(struct diff *d, const char *s, const char **ret)
{
        int r = lb_strv_push(&d->names, s);

        if (r < 0)
                return r;
        *ret = d->names.v[d->names.n - 1];
        return 0;
}

static void not_in_bin(const struct diff *d, const struct lb_obj *u, const struct lb_sym *us,
                       int r, const char *role, struct errbuf *err)
{
        if (r == -ENOTUNIQ)
                errbuf_set(err, "'%s' (%s), which %s, cannot be told apart from other "
                           "symbols of that name in '%s'",
                           us->name, u->rel, role, d->bin_name);
        else
                errbuf_set(err, "'%s' (%s), which %s, is not in '%s' (inlined everywhere or "
                           "removed by the linker?)",
                           us->name, u->rel, role, d->bin_name);
}

/* Step 5, before the patch object is written: BIN's address for every
 * bound symbol; every replaced function must be in BIN. */
static int resolve_pair(struct diff *d, struct pair *pr, struct errbuf *err)
{
        struct lb_obj *u = pr->u, *p = pr->p;
        int r;

        for (size_t k = 1; k < p->n_syms; k++) {
                struct lb_sym *s = &p->syms[k];
                const struct elf_symbol *t;
                const struct lb_sym *us = s->twin >= 0 ? &u->syms[s->twin] : NULL;

                if (s->disp == LB_DISP_EXTERN) {
                        /* Resolved by name when applied. */
                        if (!lb_strv_contains(&d->undefined, s->name)) {
                                r = lb_strv_push(&d->undefined, s->name);
                                if (r < 0)
                                        return r;
                        }
                } else if (s->disp == LB_DISP_BIND) {
                        r = bin_find(d, u, us, &t);
                        if (r < 0) {
                                not_in_bin(d, u, us, r, "the patch uses", err);
                                return -EPERM;
                        }
                        s->bind_addr = t->addr;
                        s->bind_name = t->name;
                } else if (lb_sym_is_func(p, s) && s->status == LB_CHANGED && s->parent < 0) {
                        r = bin_find(d, u, us, &t);
                        if (r < 0) {
                                not_in_bin(d, u, us, r, "the patch replaces", err);
                                return -EPERM;
                        }
                } else if (lb_sym_is_func(p, s) && s->status == LB_NEW && s->parent < 0) {
                        r = lb_strv_push(&d->helpers, s->name);
                        if (r < 0)
                                return r;
                } else if (s->status == LB_NEW && !lb_sym_is_func(p, s) && *s->name &&
                           s->shndx < p->n_secs && p->secs[s->shndx].data_rw) {
                        r = lb_strv_push(&d->new_data, s->name);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Step 5, after the patch object is written (the replacement names are
 * known): the replaced functions. */
static int collect_funcs(struct diff *d, const struct lb_trees *trees, struct errbuf *err)
{
        for (size_t i = 0; i < d->n_pairs; i++) {
                const struct lb_obj *u = d->pairs[i].u, *p = d->pairs[i].p;

                for (size_t k = 1; k < p->n_syms; k++) {
                        const struct lb_sym *s = &p->syms[k];
                        const struct elf_symbol *t;
                        struct lp_func fn, *nv;
                        char why[384];
                        int r;

                        if (!lb_sym_is_func(p, s) || s->status != LB_CHANGED || s->parent >= 0)
                                continue;
                        r = bin_find(d, u, &u->syms[s->twin], &t);
                        if (r < 0)
                                return r;
                        r = lb_target_func(d->bin, d->bin_name, t, d->o->diff, &fn, err);
                        if (r < 0)
                                return r;
                        nv = reallocarray(d->funcs, d->n_funcs + 1, sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        d->funcs = nv;
                        explain(trees, p, s, why, sizeof(why));
                        if ((r = push_name(d, t->name, &fn.name)) < 0 ||
                            (r = push_name(d, s->out_name, &fn.new_name)) < 0 ||
                            (r = push_name(d, why, &fn.why)) < 0)
                                return r;
                        d->funcs[d->n_funcs++] = fn;
                }
        }
        return 0;
}

/* After lb_emit: one binding per undefined bound symbol of the patch. */
static int collect_binds(struct diff *d)
{
        for (size_t i = 0; i < d->n_pairs; i++) {
                const struct lb_obj *p = d->pairs[i].p;

                for (size_t k = 1; k < p->n_syms; k++) {
                        const struct lb_sym *s = &p->syms[k];
                        struct lp_bind *nv;
                        bool dup = false;
                        int r;

                        if (s->disp != LB_DISP_BIND || !s->out_name)
                                continue;
                        for (size_t j = 0; j < d->n_binds && !dup; j++)
                                dup = strcmp(d->binds[j].sym, s->out_name) == 0;
                        if (dup)
                                continue;
                        nv = reallocarray(d->binds, d->n_binds + 1, sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        d->binds = nv;
                        struct lp_bind *b = &nv[d->n_binds];
                        *b = (struct lp_bind){
                                .addr = s->bind_addr,
                                .flags = (lb_sym_is_func(p, s) ? LP_BIND_FUNC : LP_BIND_DATA) |
                                         (s->bind == STB_LOCAL ? LP_BIND_LOCAL : 0),
                        };
                        if ((r = push_name(d, s->out_name, &b->sym)) < 0 ||
                            (r = push_name(d, s->bind_name, &b->name)) < 0)
                                return r;
                        d->n_binds++;
                }
        }
        return 0;
}

/* ---- The whole build ----------------------------------------------------- */

static int open_target(struct diff *d, const char *path, struct errbuf *err)
{
        struct errbuf eerr = {};
        const uint8_t *bid;
        size_t bid_len;
        int type, r;

        r = elf_file_open(path, &d->bin, &eerr);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                errbuf_set(err, "%s", errbuf_or_strerror(&eerr, r));
                return -EINVAL;
        }
        type = elf_file_type(d->bin);
        if (type != ET_EXEC && type != ET_DYN) {
                errbuf_set(err, "'%s': not an executable or shared library", path);
                return -EINVAL;
        }
        if (elf_file_build_id(d->bin, &bid, &bid_len) < 0 || bid_len > LP_BUILD_ID_MAX) {
                errbuf_set(err,
                           "cannot build '%s': '%s' has no build-id, so a patch cannot be bound "
                           "to it (link it with -Wl,--build-id)",
                           d->o->diff, path);
                return -ENODATA;
        }
        return 0;
}

static bool same_bytes(const char *a, const char *b)
{
        _cleanup_free_ char *x = NULL, *y = NULL;
        size_t lx = 0, ly = 0;

        if (read_file_str(a, &x, &lx) < 0 || read_file_str(b, &y, &ly) < 0)
                return false;
        return lx == ly && memcmp(x, y, lx) == 0;
}

/* Step 3: compare every object built again for the patched tree. */
static int compare_objects(struct diff *d, const struct lb_trees *t, struct errbuf *err)
{
        for (size_t i = 0; i < t->n_objs; i++) {
                const struct lb_object_pair *op = &t->objs[i];
                _cleanup_(lb_obj_freep) struct lb_obj *u = NULL, *p = NULL;
                bool any = false;
                struct pair *nv;
                int r;

                if (!op->patched || !op->recompiled || same_bytes(op->orig, op->patched))
                        continue;
                r = lb_obj_open(op->orig, op->src_rel, &u, err);
                if (r >= 0)
                        r = lb_obj_open(op->patched, op->src_rel, &p, err);
                if (r < 0)
                        return r;
                r = lb_objdiff(u, p, line_moved, d, err);
                if (r < 0)
                        return r;
                for (size_t k = 1; k < p->n_secs; k++)
                        any |= p->secs[k].include;
                if (!any)
                        continue;
                nv = reallocarray(d->pairs, d->n_pairs + 1, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                d->pairs = nv;
                nv[d->n_pairs++] = (struct pair){ TAKE_PTR(u), TAKE_PTR(p), op };
                r = lb_strv_push(&d->objects, op->src_rel);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Is unpatched object u linked into BIN? STT_FILE symbols hold only base
 * names, and a project's other programs have functions of the same names
 * (main()), so: yes when BIN has one of u's functions, statics first,
 * with the same instructions (func_differs); an object without functions
 * counts as linked in (it has nothing to check). */
static bool linked_in(const struct diff *d, const struct lb_obj *u)
{
        bool any = false;

        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 1; i < u->n_syms; i++) {
                        const struct lb_sym *s = &u->syms[i];
                        const struct elf_symbol *t;
                        uint64_t bad = 1;

                        if (!lb_sym_is_func(u, s) || s->size == 0 || !*s->name ||
                            (s->bind == STB_LOCAL) != (pass == 0))
                                continue;
                        any = true;
                        if (bin_find(d, u, s, &t) == 0 && func_differs(d, u, s, t, &bad) == 0 &&
                            bad == 0)
                                return true;
                }
        return !any;
}

/* Step 4 over every object of the unpatched build that BIN holds. */
static int verify_build(struct diff *d, const struct lb_trees *t, struct errbuf *err)
{
        const char *why = NULL;

        if (arch_decoder_ready(&why) < 0) {
                errbuf_set(err, "cannot check the build against '%s': %s", d->bin_name, why);
                return -ELIBACC;
        }
        for (size_t i = 0; i < t->n_objs; i++) {
                const struct lb_object_pair *op = &t->objs[i];
                _cleanup_(lb_obj_freep) struct lb_obj *own = NULL;
                const struct lb_obj *u = NULL;
                size_t found = 0;
                bool changed = false;
                int r;

                for (size_t k = 0; k < d->n_pairs; k++)
                        if (d->pairs[k].op == op) {
                                u = d->pairs[k].u;
                                changed = true;
                        }
                if (!u) {
                        r = lb_obj_open(op->orig, op->src_rel, &own, err);
                        if (r < 0)
                                return r;
                        u = own;
                }
                /* A changed object must be in BIN: checked whatever
                 * linked_in() guesses, so that a BIN built otherwise is
                 * told apart from a wrong BIN. */
                if (!changed && !linked_in(d, u))
                        continue;
                r = verify_object(d, u, &found, err);
                if (r < 0)
                        return r;
                if (changed && found == 0) {
                        errbuf_set(err,
                                   "'%s' has none of the functions of %s, which the diff "
                                   "changes: is it the right target?",
                                   d->bin_name, op->src_rel);
                        return -EPERM;
                }
        }
        return 0;
}

/* ---- Finding BIN when --target is not given ------------------------------ */

struct found_elf {
        char **v;
        size_t n;
};

static struct found_elf *walk_found; /* nftw has no user pointer */

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        char magic[4];
        size_t n = strlen(path);
        _cleanup_close_ int fd = -EBADF;
        char **nv;

        (void)ftw;
        if (flag != FTW_F || !S_ISREG(st->st_mode) || (n > 2 && strcmp(path + n - 2, ".o") == 0))
                return 0;
        if (walk_found->n >= 4096)
                return 1;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || read(fd, magic, 4) != 4 || memcmp(magic, "\177ELF", 4) != 0)
                return 0;
        nv = reallocarray(walk_found->v, walk_found->n + 1, sizeof(*nv));
        if (!nv)
                return -1;
        walk_found->v = nv;
        nv[walk_found->n] = strdup(path);
        if (!nv[walk_found->n])
                return -1;
        walk_found->n++;
        return 0;
}

/* The one executable or shared library of the unpatched build that links
 * in every changed object; its counterpart in DIR (same relative path) is
 * the target. */
static int find_target(struct diff *d, const struct lb_trees *t, char **ret, struct errbuf *err)
{
        struct found_elf all = {};
        struct lb_strv hits = {};
        size_t root_len = strlen(t->orig_root);
        int r = 0;

        walk_found = &all;
        if (nftw(t->orig_root, walk_one, 16, FTW_PHYS) != 0)
                r = -ENOMEM;
        walk_found = NULL;
        for (size_t i = 0; i < all.n && r >= 0; i++) {
                struct elf_file *f = NULL;
                bool in = true;
                int type;

                if (elf_file_open(all.v[i], &f, NULL) < 0)
                        continue;
                type = elf_file_type(f);
                if (type == ET_EXEC || type == ET_DYN) {
                        d->bin = f;
                        for (size_t k = 0; k < d->n_pairs && in; k++)
                                in = linked_in(d, d->pairs[k].u);
                        d->bin = NULL;
                        if (in && strncmp(all.v[i], t->orig_root, root_len) == 0)
                                r = lb_strv_push(&hits, all.v[i] + root_len + 1);
                }
                elf_file_free(f);
        }
        for (size_t i = 0; i < all.n; i++)
                free(all.v[i]);
        free(all.v);
        if (r >= 0 && hits.n != 1) {
                if (hits.n == 0)
                        errbuf_set(err, "cannot tell what to patch: no program or library the "
                                   "build makes contains %s; give --target BIN",
                                   d->pairs[0].op->src_rel);
                else
                        errbuf_set(err, "cannot tell what to patch: %zu programs or libraries "
                                   "contain %s (%s, %s%s); give --target BIN",
                                   hits.n, d->pairs[0].op->src_rel, hits.v[0], hits.v[1],
                                   hits.n > 2 ? ", ..." : "");
                r = -EINVAL;
        }
        if (r >= 0 && asprintf(ret, "%s/%s", d->o->src, hits.v[0]) < 0)
                r = -ENOMEM;
        lb_strv_done(&hits);
        return r;
}

static int make_result(struct diff *d, struct lb_trees *t, char **output, struct lp_file **patch,
                       struct lb_result **ret)
{
        struct lb_result *res = calloc(1, sizeof(*res));

        if (!res)
                return -ENOMEM;
        res->output = TAKE_PTR(*output);
        res->patch = TAKE_PTR(*patch);
#define MOVE(field, strv)                               \
        do {                                            \
                res->field = TAKE_PTR(d->strv.v);       \
                res->n_##field = d->strv.n;             \
                d->strv.n = 0;                          \
        } while (0)
        MOVE(helpers, helpers);
        MOVE(new_data, new_data);
        MOVE(objects, objects);
        MOVE(warnings, warnings);
        MOVE(undefined, undefined);
#undef MOVE
        res->n_checked = d->n_checked;
        res->incremental = t->incremental;
        res->build_seconds[0] = t->orig_seconds;
        res->build_seconds[1] = t->patched_seconds;
        *ret = res;
        return 0;
}

int lb_build_diff(const struct lb_diff_opts *o, struct lb_result **ret, struct errbuf *err)
{
        _cleanup_(elf_file_freep) struct elf_file *bin = NULL;
        _cleanup_(lb_tmpdir_done) struct lb_tmpdir td = {};
        _cleanup_(lb_trees_freep) struct lb_trees *trees = NULL;
        _cleanup_(diff_done) struct diff d = { .o = o, .bin_name = o->target };
        _cleanup_(lp_file_freep) struct lp_file *patch = NULL;
        _cleanup_free_ char *name = NULL, *id = NULL, *target = NULL, *output = NULL;
        _cleanup_free_ char *obj_path = NULL, *stem = NULL, *image = NULL;
        _cleanup_free_ char *found = NULL;
        struct lb_trees_opts to = {};
        struct lb_obj **objs = NULL;
        uint64_t t0 = now_ns();
        struct stat st;
        const uint8_t *bid;
        size_t bid_len, image_size = 0;
        struct lp_file desc = {};
        int r;

        stem = lb_file_stem(o->diff, diff_exts);
        if (!stem)
                return -ENOMEM;
        r = lb_patch_name(o->name, o->diff, diff_exts, &name, err);
        if (r < 0)
                return r;
        if (o->output)
                output = strdup(o->output);
        else if (asprintf(&output, "%s.lpo", stem) < 0)
                output = NULL;
        if (!output)
                return -ENOMEM;
        if (stat(o->diff, &st) < 0 || !S_ISREG(st.st_mode)) {
                errbuf_set(err, "'%s': %s", o->diff,
                           errno ? strerror(errno) : "not a regular file");
                return -EINVAL;
        }
        if (stat(o->src, &st) < 0 || !S_ISDIR(st.st_mode)) {
                errbuf_set(err, "'%s': %s", o->src,
                           errno ? strerror(errno) : "not a folder");
                return -EINVAL;
        }
        if (o->target) {
                r = open_target(&d, o->target, err);
                bin = d.bin; /* freed after d */
                if (r < 0)
                        return r;
                if (lb_same_file(output, o->target)) {
                        errbuf_set(err, "refusing to write the patch over '%s', an input",
                                   output);
                        return -EINVAL;
                }
        }
        if (lb_same_file(output, o->diff)) {
                errbuf_set(err, "refusing to write the patch over '%s', an input", output);
                return -EINVAL;
        }

        to = (struct lb_trees_opts){
                .diff = o->diff,
                .src = o->src,
                .cmd = o->cmd,
                .n_cmd = o->n_cmd,
                .self = o->self,
                .progress = o->progress,
                .keep = o->keep,
        };
        r = lb_trees_build(&to, &trees, err);
        if (r < 0)
                return r;
        if (trees->n_added > 0) {
                errbuf_set(err, "cannot build '%s': it adds a source file (object %s%s), "
                           "which this version cannot patch in",
                           o->diff, trees->added[0], trees->n_added > 1 ? ", ..." : "");
                return -EOPNOTSUPP;
        }
        if (o->progress)
                log_info("comparing the objects of the two builds");
        d.trees = trees;
        r = compare_objects(&d, trees, err);
        if (r < 0)
                return r;
        if (d.n_pairs == 0) {
                errbuf_set(err, "cannot build '%s': it changes no function of the program "
                           "(only comments, or code that is not compiled?)", o->diff);
                return -ENODATA;
        }
        if (!o->target) {
                r = find_target(&d, trees, &found, err);
                if (r < 0)
                        return r;
                d.bin_name = found;
                r = open_target(&d, found, err);
                bin = d.bin;
                if (r < 0)
                        return r == -EINVAL ? -ENOENT : r;
                if (o->progress)
                        log_info("the target is '%s'", found);
        }
        (void)elf_file_build_id(bin, &bid, &bid_len);
        target = realpath(d.bin_name, NULL);
        if (!target)
                return -errno;
        if (o->progress)
                log_info("checking the unpatched build against '%s'", d.bin_name);
        r = verify_build(&d, trees, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d.n_pairs; i++) {
                r = resolve_pair(&d, &d.pairs[i], err);
                if (r < 0)
                        return r;
        }

        r = lb_tmpdir_make(&td);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot make a temporary folder: %s",
                           o->diff, strerror(-r));
                return r;
        }
        obj_path = lb_tmpdir_file(&td, "patch.o");
        objs = calloc(d.n_pairs, sizeof(*objs));
        if (!obj_path || !objs) {
                free(objs);
                return -ENOMEM;
        }
        for (size_t i = 0; i < d.n_pairs; i++)
                objs[i] = d.pairs[i].p;
        r = lb_emit(objs, d.n_pairs, obj_path, err);
        free(objs);
        if (r < 0)
                return r;
        r = collect_funcs(&d, trees, err);
        if (r < 0)
                return r;
        if (d.n_funcs == 0) {
                errbuf_set(err, "cannot build '%s': it changes no function of '%s' (only new "
                           "code that nothing calls)", o->diff, d.bin_name);
                return -ENODATA;
        }
        r = collect_binds(&d);
        if (r < 0)
                return r;

        r = read_file_str(obj_path, &image, &image_size);
        if (r < 0)
                return r;
        id = lb_make_id(name, image, image_size, bid, bid_len);
        if (!id)
                return -ENOMEM;
        desc = (struct lp_file){
                .id = id,
                .name = name,
                .target = target,
                .build_id_len = bid_len,
                .created = lb_created_time(),
                .funcs = d.funcs,
                .n_funcs = d.n_funcs,
                .binds = d.binds,
                .n_binds = d.n_binds,
        };
        memcpy(desc.build_id, bid, bid_len);
        r = lb_write_patch(&td, obj_path, &desc, output, o->diff, &patch, err);
        if (r < 0)
                return r;
        r = make_result(&d, trees, &output, &patch, ret);
        if (r < 0)
                return r;
        (*ret)->total_seconds = (double)(now_ns() - t0) / 1e9;
        return 0;
}
