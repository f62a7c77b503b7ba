/* Comparing the unpatched and patched objects of one translation unit; see
 * objdiff.h for what it decides.
 *
 * Section kinds (with -ffunction-sections -fdata-sections every function
 * and variable has its own section):
 *   text     SHF_ALLOC|SHF_EXECINSTR: one function (plus, for foo.cold,
 *            the cold part of foo in its own section);
 *   data_rw  SHF_ALLOC|SHF_WRITE (.data, .bss, .data.rel.ro, TLS): one
 *            variable, which in the target is the process's live state;
 *   rodata   SHF_ALLOC, neither, or .data.rel.ro* (constants that hold
 *            addresses: written by the loader, read-only after): constants,
 *            tables, and
 *   strings  (SHF_MERGE|SHF_STRINGS) string literals: contents only, which
 *            the patch copies; the linker moves and merges them, so they
 *            are compared by contents, never by place or section name.
 *
 * Relocation normalisation: two relocations are equal when they are of
 * the same type at the same offset and refer to the same thing: the same
 * undefined name; twin functions or variables (with the same addend); a
 * string with the same contents; read-only data whose contents (and
 * relocations, recursively) are equal. The assembler turns references to
 * statics into references to their section's symbol plus an offset; such
 * a section symbol stands for the one function or variable at the
 * section's start.
 *
 * Line numbers: a function whose bytes differ only in 32-bit fields
 * holding line numbers that the diff moved (old line L is new line L'
 * with the same text) is unchanged: __LINE__ in assert() or a logging
 * macro below an inserted line. Only whole 4-byte fields outside
 * relocations count, and only where the caller's line map says so; any
 * other difference is a change.
 *
 * What is not handled (and refused or reported as a change, never
 * ignored): code that refers into the middle of another function (other
 * than its own cold part), sections holding several variables that the
 * patch refers to by section. */
#include "build/objdiff.h"

#include "arch/arch.h"
#include "elf/elf.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libelf.h>
#include <string.h>

#define MAX_DEPTH 8 /* read-only data referring to read-only data... */

/* ---- Reading ------------------------------------------------------------- */

void lb_obj_free(struct lb_obj *o)
{
        if (!o)
                return;
        for (size_t i = 0; i < o->n_secs; i++)
                free(o->secs[i].relas);
        for (size_t i = 0; i < o->n_syms; i++)
                free(o->syms[i].out_name);
        free(o->secs);
        free(o->syms);
        if (o->elf)
                elf_end(o->elf);
        free(o->image);
        free(o->path);
        free(o->rel);
        free(o);
}

static int cmp_rela(const void *x, const void *y)
{
        const struct lb_rela *a = x, *b = y;

        return (a->off > b->off) - (a->off < b->off);
}

static int read_relas(struct lb_obj *o, Elf_Scn *scn, const GElf_Shdr *sh, struct errbuf *err)
{
        Elf_Data *d = elf_getdata(scn, NULL);
        struct lb_sec *target;
        size_t n;

        if (sh->sh_info >= o->n_secs || sh->sh_entsize != sizeof(Elf64_Rela) || !d) {
                errbuf_set(err, "'%s': a malformed relocation section", o->path);
                return -EBADMSG;
        }
        target = &o->secs[sh->sh_info];
        if (target->relas) {
                errbuf_set(err, "'%s': two relocation sections for section %s", o->path,
                           target->name);
                return -EBADMSG;
        }
        n = d->d_size / sizeof(Elf64_Rela);
        target->relas = calloc(MAX(n, (size_t)1), sizeof(*target->relas));
        if (!target->relas)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                GElf_Rela r;

                if (!gelf_getrela(d, (int)i, &r))
                        return -EBADMSG;
                if (GELF_R_SYM(r.r_info) >= o->n_syms) {
                        errbuf_set(err, "'%s': a relocation of %s refers to symbol %" PRIu64
                                   ", which does not exist", o->path, target->name,
                                   (uint64_t)GELF_R_SYM(r.r_info));
                        return -EBADMSG;
                }
                target->relas[i] = (struct lb_rela){
                        .off = r.r_offset,
                        .type = (uint32_t)GELF_R_TYPE(r.r_info),
                        .sym = (uint32_t)GELF_R_SYM(r.r_info),
                        .addend = r.r_addend,
                };
        }
        target->n_relas = n;
        qsort(target->relas, n, sizeof(*target->relas), cmp_rela);
        return 0;
}

static int read_symbols(struct lb_obj *o, Elf_Scn *scn, const GElf_Shdr *sh, struct errbuf *err)
{
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t n;

        if (!d || sh->sh_entsize != sizeof(Elf64_Sym) || o->syms) {
                errbuf_set(err, "'%s': a malformed symbol table", o->path);
                return -EBADMSG;
        }
        n = d->d_size / sizeof(Elf64_Sym);
        o->syms = calloc(MAX(n, (size_t)1), sizeof(*o->syms));
        if (!o->syms)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                GElf_Sym s;
                const char *name;

                if (!gelf_getsym(d, (int)i, &s))
                        return -EBADMSG;
                name = elf_strptr(o->elf, sh->sh_link, s.st_name);
                o->syms[i] = (struct lb_sym){
                        .name = name ? name : "",
                        .type = GELF_ST_TYPE(s.st_info),
                        .bind = GELF_ST_BIND(s.st_info),
                        .shndx = s.st_shndx,
                        .value = s.st_value,
                        .size = s.st_size,
                        .twin = -1,
                        .parent = -1,
                };
                if (o->syms[i].type == STT_FILE && !o->file)
                        o->file = o->syms[i].name;
        }
        o->n_syms = n;
        return 0;
}

static void classify_sections(struct lb_obj *o)
{
        for (size_t i = 1; i < o->n_secs; i++) {
                struct lb_sec *s = &o->secs[i];
                uint64_t f = s->sh.sh_flags;

                s->owner = -1;
                if (!(f & SHF_ALLOC) || s->sh.sh_type == SHT_RELA || s->sh.sh_type == SHT_REL)
                        continue;
                if (s->name && strcmp(s->name, ".eh_frame") == 0) {
                        o->eh_frame = (int64_t)i;
                        continue;
                }
                if (f & SHF_EXECINSTR)
                        s->text = true;
                else if ((f & SHF_TLS) ||
                         ((f & SHF_WRITE) && strncmp(s->name, ".data.rel.ro", 12) != 0))
                        s->data_rw = true;
                else {
                        s->rodata = true;
                        s->strings = (f & SHF_MERGE) && (f & SHF_STRINGS);
                }
        }
        for (size_t i = 1; i < o->n_syms; i++) {
                struct lb_sym *y = &o->syms[i];
                struct lb_sec *s;

                if (y->shndx == SHN_UNDEF || y->shndx >= o->n_secs)
                        continue;
                s = &o->secs[y->shndx];
                if (y->type == STT_SECTION) {
                        if (!s->secsym)
                                s->secsym = (uint32_t)i;
                        continue;
                }
                if (y->value != 0 || !*y->name)
                        continue;
                if (!((s->text && (y->type == STT_FUNC || y->type == STT_GNU_IFUNC)) ||
                      (!s->text && (y->type == STT_OBJECT || y->type == STT_TLS))))
                        continue;
                /* Two symbols at the start (an alias): prefer the global. */
                if (s->owner < 0 || (o->syms[s->owner].bind == STB_LOCAL && y->bind != STB_LOCAL))
                        s->owner = (int64_t)i;
        }
}

int lb_obj_open(const char *path, const char *rel, struct lb_obj **ret, struct errbuf *err)
{
        _cleanup_(lb_obj_freep) struct lb_obj *o = NULL;
        GElf_Ehdr eh;
        size_t shstrndx, n;
        char *text = NULL;
        size_t len = 0;
        int r;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->eh_frame = -1;
        o->path = strdup(path);
        o->rel = strdup(rel ? rel : path);
        if (!o->path || !o->rel)
                return -ENOMEM;
        r = read_file_str(path, &text, &len);
        if (r < 0) {
                errbuf_set(err, "cannot read '%s': %s", path, strerror(-r));
                return r;
        }
        o->image = text;
        o->size = len;
        (void)elf_library_init();
        o->elf = elf_memory(o->image, o->size);
        if (!o->elf || !gelf_getehdr(o->elf, &eh) || eh.e_type != ET_REL ||
            eh.e_machine != arch_elf_machine() || eh.e_ident[EI_CLASS] != ELFCLASS64) {
                errbuf_set(err, "'%s' is not a relocatable object of this machine", path);
                return -ENOEXEC;
        }
        if (elf_getshdrnum(o->elf, &n) < 0 || elf_getshdrstrndx(o->elf, &shstrndx) < 0) {
                errbuf_set(err, "'%s': %s", path, elf_errmsg(-1));
                return -EBADMSG;
        }
        o->secs = calloc(MAX(n, (size_t)1), sizeof(*o->secs));
        if (!o->secs)
                return -ENOMEM;
        o->n_secs = n;
        for (size_t i = 1; i < n; i++) {
                Elf_Scn *scn = elf_getscn(o->elf, i);
                struct lb_sec *s = &o->secs[i];
                Elf_Data *d;

                if (!scn || !gelf_getshdr(scn, &s->sh)) {
                        errbuf_set(err, "'%s': section %zu: %s", path, i, elf_errmsg(-1));
                        return -EBADMSG;
                }
                s->name = elf_strptr(o->elf, shstrndx, s->sh.sh_name);
                if (!s->name)
                        s->name = "";
                if (s->sh.sh_type == SHT_NOBITS || s->sh.sh_size == 0)
                        continue;
                d = elf_getdata(scn, NULL);
                if (!d || d->d_size != s->sh.sh_size) {
                        errbuf_set(err, "'%s': section %s cannot be read", path, s->name);
                        return -EBADMSG;
                }
                s->data = d->d_buf;
        }
        for (size_t i = 1; i < n; i++) {
                Elf_Scn *scn = elf_getscn(o->elf, i);

                if (o->secs[i].sh.sh_type == SHT_SYMTAB) {
                        r = read_symbols(o, scn, &o->secs[i].sh, err);
                        if (r < 0)
                                return r;
                }
        }
        if (!o->syms) {
                errbuf_set(err, "'%s' has no symbol table", path);
                return -EBADMSG;
        }
        for (size_t i = 1; i < n; i++) {
                Elf_Scn *scn = elf_getscn(o->elf, i);

                if (o->secs[i].sh.sh_type == SHT_REL) {
                        errbuf_set(err, "'%s': REL relocations are not supported", path);
                        return -EOPNOTSUPP;
                }
                if (o->secs[i].sh.sh_type == SHT_RELA) {
                        r = read_relas(o, scn, &o->secs[i].sh, err);
                        if (r < 0)
                                return r;
                }
        }
        classify_sections(o);
        *ret = TAKE_PTR(o);
        return 0;
}

bool lb_sym_is_func(const struct lb_obj *o, const struct lb_sym *s)
{
        return (s->type == STT_FUNC || s->type == STT_GNU_IFUNC) && s->shndx != SHN_UNDEF &&
               s->shndx < o->n_secs && o->secs[s->shndx].text;
}

static bool sym_is_var(const struct lb_obj *o, const struct lb_sym *s)
{
        return (s->type == STT_OBJECT || s->type == STT_TLS) && s->shndx != SHN_UNDEF &&
               s->shndx < o->n_secs && o->secs[s->shndx].data_rw;
}

const uint8_t *lb_sym_code(const struct lb_obj *o, const struct lb_sym *s)
{
        const struct lb_sec *sec;

        if (!lb_sym_is_func(o, s))
                return NULL;
        sec = &o->secs[s->shndx];
        if (!sec->data || s->value > sec->sh.sh_size || s->size > sec->sh.sh_size - s->value)
                return NULL;
        return sec->data + s->value;
}

/* ---- Correlating symbols ------------------------------------------------- */

/* `name` without its numeric components: "calls.1" -> "calls",
 * "scale.constprop.0" -> "scale.constprop", "f.part.0.cold" -> "f.part.cold". */
static void strip_numbers(const char *name, char *buf, size_t size)
{
        size_t k = 0;

        for (const char *p = name; *p && k + 1 < size;) {
                if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
                        const char *q = p + 1;
                        while (*q >= '0' && *q <= '9')
                                q++;
                        if (*q == 0 || *q == '.') {
                                p = q;
                                continue;
                        }
                }
                buf[k++] = *p++;
        }
        buf[k] = 0;
}

static bool correlatable(const struct lb_obj *o, const struct lb_sym *s)
{
        return *s->name && (lb_sym_is_func(o, s) || sym_is_var(o, s));
}

/* The first function (by section order) whose code refers to symbol `idx`
 * directly or through its section's symbol; -1 when none. */
static int64_t first_user(const struct lb_obj *o, size_t idx)
{
        const struct lb_sym *s = &o->syms[idx];
        uint32_t secsym = s->shndx < o->n_secs ? o->secs[s->shndx].secsym : 0;

        for (size_t i = 1; i < o->n_secs; i++) {
                const struct lb_sec *sec = &o->secs[i];

                if (!sec->text || sec->owner < 0)
                        continue;
                for (size_t k = 0; k < sec->n_relas; k++)
                        if (sec->relas[k].sym == idx ||
                            (secsym && sec->relas[k].sym == secsym && o->secs[s->shndx].owner ==
                                                                             (int64_t)idx))
                                return sec->owner;
        }
        return -1;
}

/* How many symbols of `o` would correlate with key `key` (of kind func or
 * var, and user `user` when it is non-NULL), and the last one. */
static size_t candidates(const struct lb_obj *o, const char *key, bool func, const char *user,
                         bool exact, int64_t *ret)
{
        char buf[512];
        size_t n = 0;

        for (size_t i = 1; i < o->n_syms; i++) {
                const struct lb_sym *s = &o->syms[i];

                if (!correlatable(o, s) || lb_sym_is_func(o, s) != func)
                        continue;
                if (exact) {
                        if (strcmp(s->name, key) != 0)
                                continue;
                } else {
                        strip_numbers(s->name, buf, sizeof(buf));
                        if (strcmp(buf, key) != 0)
                                continue;
                }
                if (user) {
                        int64_t u = first_user(o, i);
                        char ub[512];
                        if (u < 0)
                                continue;
                        strip_numbers(o->syms[u].name, ub, sizeof(ub));
                        if (strcmp(ub, user) != 0)
                                continue;
                }
                n++;
                *ret = (int64_t)i;
        }
        return n;
}

/* Step 3 of correlate(): the one symbol of u with p's key that the same
 * function uses first. 1 found (*ret), 0 none, -1 p's is not unique or
 * unused. */
static int by_user(const struct lb_obj *u, const struct lb_obj *p, size_t i, const char *key,
                   bool func, int64_t *ret)
{
        int64_t owner = first_user(p, i), bb = -1;
        char user[512];
        size_t n;

        if (owner < 0)
                return -1;
        strip_numbers(p->syms[owner].name, user, sizeof(user));
        if (candidates(p, key, func, user, false, &bb) != 1 || bb != (int64_t)i)
                return -1;
        n = candidates(u, key, func, user, false, ret);
        return n == 1 ? 1 : n == 0 ? 0 : -1;
}

static int correlate(struct lb_obj *u, struct lb_obj *p, struct errbuf *err)
{
        for (size_t i = 1; i < p->n_syms; i++) {
                struct lb_sym *s = &p->syms[i];
                bool func = lb_sym_is_func(p, s);
                char key[512];
                int64_t a = -1, b = -1;
                int k;

                if (!correlatable(p, s))
                        continue;
                strip_numbers(s->name, key, sizeof(key));
                if (strcmp(key, s->name) == 0) {
                        /* 1. A name C gave: unique in a translation unit. */
                        if (candidates(u, s->name, func, NULL, true, &a) == 1)
                                goto found;
                        continue; /* new */
                }
                /* gcc's numbers (calls.1, scale.constprop.0) change when
                 * another static or clone comes or goes. */
                if (func) {
                        /* 2. A clone: by name without the numbers... */
                        if (candidates(p, key, func, NULL, false, &b) == 1 &&
                            candidates(u, key, func, NULL, false, &a) == 1)
                                goto found;
                        /* 3. ... or also by its first caller; else new. */
                        if (by_user(u, p, i, key, func, &a) == 1)
                                goto found;
                        continue;
                }
                /* A static local: by the function that uses it first, since
                 * the numbers of two "calls" can swap. */
                k = by_user(u, p, i, key, func, &a);
                if (k == 1)
                        goto found;
                if (first_user(p, i) < 0)
                        continue; /* unused: nothing refers to it */
                /* The only one of its name on both sides (its first user
                 * changed: a new function that inlines its own). */
                if (candidates(p, key, func, NULL, false, &b) == 1 &&
                    candidates(u, key, func, NULL, false, &a) == 1)
                        goto found;
                if (k == 0)
                        continue; /* new */
                errbuf_set(err,
                           "cannot tell which static '%s' of %s the patched build's '%s' is "
                           "(several with that name, used first by the same function)",
                           key, u->rel, s->name);
                return -EPERM;
        found:
                if (u->syms[a].twin >= 0) {
                        errbuf_set(err, "%s: '%s' and '%s' of the patched build both look like "
                                   "'%s' of the unpatched one",
                                   u->rel, p->syms[u->syms[a].twin].name, s->name,
                                   u->syms[a].name);
                        return -EPERM;
                }
                s->twin = a;
                u->syms[a].twin = (int64_t)i;
        }
        return 0;
}

/* ---- Comparing ----------------------------------------------------------- */

struct cmp {
        struct lb_obj *u, *p;
        lb_line_moved_fn moved;
        void *userdata;
        bool lines; /* allow moved line numbers (top level of a function only) */
        const struct lb_sym *fn; /* the function being compared (for moved) */
};

static bool sec_equal(struct cmp *c, const struct lb_sec *a, const struct lb_sec *b, int depth);

static uint32_t le32_at(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return le32toh(v);
}

/* Bytes [from, to) of a and b: equal, or (c->lines) different only in
 * 4-byte fields whose values are a line the diff moved and where it went. */
static bool gap_equal(struct cmp *c, const uint8_t *a, const uint8_t *b, size_t from, size_t to)
{
        if (memcmp(a + from, b + from, to - from) == 0)
                return true;
        if (!c->lines || !c->moved)
                return false;
        for (size_t i = from; i < to;) {
                bool ok = false;

                if (a[i] == b[i]) {
                        i++;
                        continue;
                }
                /* A field that covers byte i, starting at most 3 before. */
                for (size_t s = i >= from + 3 ? i - 3 : from; s <= i && !ok; s++) {
                        uint32_t va, vb;

                        if (s + 4 > to)
                                break;
                        va = le32_at(a + s);
                        vb = le32_at(b + s);
                        if (va == vb || va == 0 || vb == 0 || va > 10000000 || vb > 10000000)
                                continue;
                        if (memcmp(a + s, b + s, i - s) != 0)
                                continue; /* a difference before i it would not cover */
                        if (c->moved(c->userdata, c->p, c->fn, va, vb)) {
                                ok = true;
                                i = s + 4;
                        }
                }
                if (!ok)
                        return false;
        }
        return true;
}

/* The C string at offset `off` of string section `s`, bounded. */
static const char *str_at(const struct lb_sec *s, int64_t off, size_t *ret_len)
{
        const char *str, *nul;

        if (!s->data || off < 0 || (uint64_t)off >= s->sh.sh_size)
                return NULL;
        str = (const char *)s->data + off;
        nul = memchr(str, 0, s->sh.sh_size - (uint64_t)off);
        if (!nul)
                return NULL;
        *ret_len = (size_t)(nul - str);
        return str;
}

/* Offset inside its section that symbol + addend of relocation r refers to. */
static int64_t target_off(const struct lb_sym *s, const struct lb_rela *r)
{
        struct arch_reloc_span span;

        arch_reloc_span(r->type, &span);
        return (int64_t)s->value + r->addend + span.bias;
}

/* Do relocations ra (of u) and rb (of p) refer to the same thing? */
static bool target_equal(struct cmp *c, const struct lb_rela *ra, const struct lb_rela *rb,
                         int depth)
{
        const struct lb_sym *sa = &c->u->syms[ra->sym], *sb = &c->p->syms[rb->sym];
        const struct lb_sec *ka, *kb;

        if (sa->shndx == SHN_UNDEF || sb->shndx == SHN_UNDEF)
                return sa->shndx == sb->shndx && strcmp(sa->name, sb->name) == 0 &&
                       ra->addend == rb->addend;
        if (sa->shndx >= c->u->n_secs || sb->shndx >= c->p->n_secs)
                return sa->shndx == sb->shndx && sa->value == sb->value &&
                       ra->addend == rb->addend; /* SHN_ABS and the like */
        ka = &c->u->secs[sa->shndx];
        kb = &c->p->secs[sb->shndx];
        if (ka->strings || kb->strings) {
                const char *x, *y;
                size_t lx = 0, ly = 0;

                if (!ka->strings || !kb->strings)
                        return false;
                x = str_at(ka, target_off(sa, ra), &lx);
                y = str_at(kb, target_off(sb, rb), &ly);
                return x && y && lx == ly && memcmp(x, y, lx) == 0;
        }
        if (ka->rodata || kb->rodata) {
                if (!ka->rodata || !kb->rodata || depth >= MAX_DEPTH)
                        return false;
                if ((int64_t)sa->value + ra->addend != (int64_t)sb->value + rb->addend)
                        return false;
                if (ka->sh.sh_flags & SHF_MERGE) {
                        /* Constants (.rodata.cst16): the entry referred to. */
                        uint64_t e = ka->sh.sh_entsize;
                        int64_t oa = target_off(sa, ra), ob = target_off(sb, rb);
                        if (e == 0 || e != kb->sh.sh_entsize || !ka->data || !kb->data ||
                            oa < 0 || ob < 0 || (uint64_t)oa + e > ka->sh.sh_size ||
                            (uint64_t)ob + e > kb->sh.sh_size)
                                return false;
                        return memcmp(ka->data + oa, kb->data + ob, e) == 0;
                }
                return sec_equal(c, ka, kb, depth + 1);
        }
        /* A function or variable: through its section's symbol, the one at
         * the section's start. */
        if (sa->type == STT_SECTION) {
                if (ka->owner < 0)
                        return false;
                sa = &c->u->syms[ka->owner];
        }
        if (sb->type == STT_SECTION) {
                if (kb->owner < 0)
                        return false;
                sb = &c->p->syms[kb->owner];
        }
        return sb->twin >= 0 && &c->u->syms[sb->twin] == sa && ra->addend == rb->addend &&
               ra->sym != 0 && rb->sym != 0;
}

static bool sec_equal_at(struct cmp *c, const struct lb_sec *a, const struct lb_sec *b,
                         int depth);

/* Equal contents and relocations, as the top of this file says (line
 * numbers allowed to move only at depth 0, the function itself). */
static bool sec_equal(struct cmp *c, const struct lb_sec *a, const struct lb_sec *b, int depth)
{
        bool lines = c->lines;
        bool eq;

        c->lines = lines && depth == 0;
        eq = sec_equal_at(c, a, b, depth);
        c->lines = lines;
        return eq;
}

static bool sec_equal_at(struct cmp *c, const struct lb_sec *a, const struct lb_sec *b, int depth)
{
        size_t last = 0;

        if (a->sh.sh_type != b->sh.sh_type || a->sh.sh_size != b->sh.sh_size ||
            a->n_relas != b->n_relas)
                return false;
        if (!a->data || !b->data)
                return !a->data && !b->data;
        for (size_t k = 0; k < a->n_relas; k++) {
                const struct lb_rela *ra = &a->relas[k], *rb = &b->relas[k];
                size_t w = arch_reloc_width(ra->type);

                if (ra->off != rb->off || ra->type != rb->type || ra->off < last ||
                    ra->off + w > a->sh.sh_size)
                        return false;
                if (!gap_equal(c, a->data, b->data, last, ra->off))
                        return false;
                if (!target_equal(c, ra, rb, depth))
                        return false;
                last = ra->off + w;
        }
        return gap_equal(c, a->data, b->data, last, a->sh.sh_size);
}

/* ---- Deciding ------------------------------------------------------------ */

/* foo.cold, foo.part.0.cold: the part of foo gcc moved out of line. */
static void find_parents(struct lb_obj *o)
{
        for (size_t i = 1; i < o->n_syms; i++) {
                struct lb_sym *s = &o->syms[i];
                const char *dot = strstr(s->name, ".cold");
                size_t n;

                if (!lb_sym_is_func(o, s) || !dot)
                        continue;
                n = (size_t)(dot - s->name);
                for (size_t k = 1; k < o->n_syms; k++)
                        if (k != i && lb_sym_is_func(o, &o->syms[k]) &&
                            strlen(o->syms[k].name) == n &&
                            strncmp(o->syms[k].name, s->name, n) == 0) {
                                s->parent = (int64_t)k;
                                break;
                        }
        }
}

static int decide_data(struct cmp *c, struct lb_sym *s, struct errbuf *err)
{
        const struct lb_sym *t;

        if (s->twin < 0) {
                if (s->type == STT_TLS) {
                        errbuf_set(err,
                                   "the patch adds thread-local variable '%s' in %s, which a "
                                   "running process cannot grow its TLS block for",
                                   s->name, c->p->rel);
                        return -EPERM;
                }
                s->status = LB_NEW;
                return 0;
        }
        t = &c->u->syms[s->twin];
        if (t->size != s->size) {
                errbuf_set(err,
                           "the size of '%s' in %s changed (%" PRIu64 " -> %" PRIu64
                           " bytes): the running process keeps the old layout; new fields "
                           "need a shadow variable, which liveup does not support yet",
                           s->name, c->p->rel, t->size, s->size);
                return -EPERM;
        }
        if (!sec_equal(c, &c->u->secs[t->shndx], &c->p->secs[s->shndx], 0)) {
                errbuf_set(err,
                           "the initial value of '%s' in %s changed: the running process keeps "
                           "its current value; changing it needs a callback or a shadow "
                           "variable, which liveup does not support yet",
                           s->name, c->p->rel);
                return -EPERM;
        }
        s->status = LB_SAME;
        return 0;
}

static void decide_function(struct cmp *c, struct lb_sym *s)
{
        const struct lb_sym *t;

        if (s->twin < 0) {
                s->status = LB_NEW;
                return;
        }
        t = &c->u->syms[s->twin];
        s->status = LB_SAME;
        if (t->size == s->size && sec_equal(c, &c->u->secs[t->shndx], &c->p->secs[s->shndx], 0))
                return;
        /* Only line numbers moved? (Read-only data it refers to is
         * compared strictly: c->lines is read at the top level only.) */
        c->lines = true;
        c->fn = s;
        if (t->size == s->size && sec_equal(c, &c->u->secs[t->shndx], &c->p->secs[s->shndx], 0)) {
                c->lines = false;
                return;
        }
        c->lines = false;
        s->status = LB_CHANGED;
        s->why = "changed";
}

struct work {
        size_t *v;
        size_t n, cap;
};

static int include(struct lb_obj *p, struct work *w, size_t sec)
{
        if (p->secs[sec].include)
                return 0;
        if (w->n == w->cap) {
                size_t cap = w->cap ? 2 * w->cap : 32;
                size_t *nv = reallocarray(w->v, cap, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                w->v = nv;
                w->cap = cap;
        }
        p->secs[sec].include = true;
        w->v[w->n++] = sec;
        return 0;
}

/* Give the target of relocation r (in included section `from`) its
 * disposition, including read-only data it needs. */
static int dispose(struct lb_obj *p, struct work *w, const struct lb_sec *from,
                   const struct lb_rela *r, struct errbuf *err)
{
        struct lb_sym *s = &p->syms[r->sym];
        struct lb_sec *k;

        if (r->sym == 0)
                return 0;
        if (s->shndx == SHN_UNDEF) {
                s->disp = LB_DISP_EXTERN;
                return 0;
        }
        if (s->shndx >= p->n_secs) {
                if (s->shndx == SHN_ABS)
                        return 0;
                errbuf_set(err, "%s: '%s' refers to common or special symbol '%s'", p->rel,
                           from->name, s->name);
                return -EPERM;
        }
        k = &p->secs[s->shndx];
        if (k->rodata)
                return include(p, w, s->shndx);
        if (!k->text && !k->data_rw) {
                errbuf_set(err, "%s: '%s' refers to section %s, which a patch cannot carry",
                           p->rel, from->name, k->name);
                return -EPERM;
        }
        if (k->include) {
                if (s->type != STT_SECTION)
                        s->disp = LB_DISP_KEEP;
                return 0;
        }
        /* The target's own function or variable. */
        if (s->type == STT_SECTION) {
                struct arch_reloc_span span;

                arch_reloc_span(r->type, &span);
                if (k->owner < 0) {
                        errbuf_set(err,
                                   "%s: '%s' refers to section %s, which holds no single "
                                   "function or variable",
                                   p->rel, from->name, k->name);
                        return -EPERM;
                }
                if (k->text && r->addend + span.bias != 0) {
                        errbuf_set(err, "%s: '%s' refers into the middle of function '%s'",
                                   p->rel, from->name, p->syms[k->owner].name);
                        return -EPERM;
                }
                s = &p->syms[k->owner];
        }
        if (s->twin < 0) {
                /* Not in the unpatched build, yet not included: only a
                 * variable that is no longer defined in an included section
                 * could get here. */
                errbuf_set(err, "%s: '%s' refers to '%s', which the unpatched build does not have",
                           p->rel, from->name, s->name);
                return -EPERM;
        }
        s->disp = LB_DISP_BIND;
        return 0;
}

int lb_objdiff(struct lb_obj *u, struct lb_obj *p, lb_line_moved_fn moved, void *userdata,
               struct errbuf *err)
{
        struct cmp c = { .u = u, .p = p, .moved = moved, .userdata = userdata };
        struct work w = {};
        int r;

        r = correlate(u, p, err);
        if (r < 0)
                return r;
        find_parents(p);
        for (size_t i = 1; i < p->n_syms; i++) {
                struct lb_sym *s = &p->syms[i];

                if (lb_sym_is_func(p, s))
                        decide_function(&c, s);
                else if (sym_is_var(p, s) && *s->name) {
                        r = decide_data(&c, s, err);
                        if (r < 0)
                                return r;
                }
        }
        /* Code without a function symbol (assembler without .type, or
         * stripped): a change there cannot be patched at a function's
         * entry. */
        for (size_t k = 1; k < p->n_secs; k++) {
                const struct lb_sec *ps = &p->secs[k];
                bool same = false;

                if (!ps->text || ps->owner >= 0 || ps->sh.sh_size == 0)
                        continue;
                for (size_t j = 1; j < u->n_secs && !same; j++)
                        same = u->secs[j].text && u->secs[j].owner < 0 &&
                               strcmp(u->secs[j].name, ps->name) == 0 &&
                               sec_equal(&c, &u->secs[j], ps, 0);
                if (!same) {
                        errbuf_set(err,
                                   "%s: the diff changes code in section %s, which has no "
                                   "function symbol (assembler without .type?); it cannot be "
                                   "patched",
                                   p->rel, ps->name);
                        return -EPERM;
                }
        }
        /* A changed cold part changes its function; they go together. */
        for (size_t i = 1; i < p->n_syms; i++) {
                struct lb_sym *s = &p->syms[i];

                if (s->parent >= 0 && s->status != LB_SAME &&
                    p->syms[s->parent].status == LB_SAME) {
                        p->syms[s->parent].status = LB_CHANGED;
                        p->syms[s->parent].why = "its cold part changed";
                }
        }
        for (size_t i = 1; i < p->n_syms; i++) {
                struct lb_sym *s = &p->syms[i];
                bool take = false;

                if (lb_sym_is_func(p, s))
                        take = s->status != LB_SAME ||
                               (s->parent >= 0 && p->syms[s->parent].status != LB_SAME);
                else if (sym_is_var(p, s) && *s->name)
                        take = s->status == LB_NEW;
                if (take) {
                        r = include(p, &w, s->shndx);
                        if (r < 0)
                                goto out;
                }
        }
        /* Everything the included sections refer to (w grows as read-only
         * data is pulled in). */
        for (size_t k = 0; k < w.n; k++) {
                const struct lb_sec *sec = &p->secs[w.v[k]];

                for (size_t j = 0; j < sec->n_relas; j++) {
                        r = dispose(p, &w, sec, &sec->relas[j], err);
                        if (r < 0)
                                goto out;
                }
        }
        /* Symbols defined in included sections are the patch's own. */
        for (size_t i = 1; i < p->n_syms; i++) {
                struct lb_sym *s = &p->syms[i];

                if (s->shndx != SHN_UNDEF && s->shndx < p->n_secs &&
                    p->secs[s->shndx].include && s->type != STT_SECTION && *s->name)
                        s->disp = LB_DISP_KEEP;
        }
        r = 0;
out:
        free(w.v);
        return r;
}
