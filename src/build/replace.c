/* Replace mode of the patch builder: FIX.c + BIN -> FIX.lpo.
 *
 *   1. BIN is opened with src/elf; it must have a build-id (the patch is
 *      bound to it).
 *   2. FIX.c is compiled by gcc (posix_spawn, never a shell) into a
 *      private temporary folder: position-independent (the patch is mapped
 *      wherever there is room near BIN), one section per function and
 *      object (the loader can place and relocate them one by one), no
 *      common symbols, and with unwind tables so that the stop-mode
 *      consistency check can unwind through patch code. Static functions
 *      are kept even when nothing in FIX.c calls them: a static that
 *      replaces BIN's static of that name is called from BIN, which gcc
 *      cannot see. The user's CFLAGS come after ours, so they win.
 *   3. The object's symbols decide what the patch does:
 *        - a function BIN has (by name, global or static; an ambiguous
 *          static is refused) is replaced: its address, size, the hash of
 *          its bytes in BIN and its first bytes go into the metadata, and
 *          it must be long enough for the jump written over its entry;
 *        - a static function BIN lacks, or a clone gcc made (a name with a
 *          dot: foo.part.0, foo.cold), is a new helper; an external one
 *          BIN lacks is refused (most likely a typo);
 *        - data defined in FIX.c is new data of the patch, except that an
 *          external definition of a variable BIN already has is refused
 *          (the patch would silently use its own copy), and thread-local
 *          definitions are refused (a patch cannot grow the TLS block);
 *        - every undefined symbol must be BIN's own (unambiguous) or
 *          reachable through the libraries BIN uses (needed.c).
 *   4. The metadata (format.h) is serialised and attached to the object
 *      as section .liveup with objcopy; the result is read back with
 *      lp_file_open() (the reader's checks are the writer's test) and
 *      renamed into place.
 *
 * Nothing here writes outside the temporary folder except the final
 * rename; the folder is removed on every path out. */
#include "build/build.h"

#include "arch/arch.h"
#include "build/common.h"
#include "build/needed.h"
#include "elf/elf.h"

#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>


#define LB_NAME_MAX 64
#define MAX_LISTED 8 /* candidates named in an ambiguity message */

/* What a fix file's name ends with: dropped from the default patch name. */
static const char *const fix_exts[] = { ".c", NULL };

/* Flags liveup compiles every fix with (see the comment on top). */
static const char *const gcc_flags[] = {
        "-c",
        "-O2",
        "-fPIC",
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-common",
        "-fasynchronous-unwind-tables",
        "-fkeep-static-functions",
};

void lb_result_free(struct lb_result *r)
{
        struct lb_strv s;

        if (!r)
                return;
        free(r->output);
        lp_file_free(r->patch);
        s = (struct lb_strv){ r->helpers, r->n_helpers };
        lb_strv_done(&s);
        s = (struct lb_strv){ r->undefined, r->n_undefined };
        lb_strv_done(&s);
        s = (struct lb_strv){ r->warnings, r->n_warnings };
        lb_strv_done(&s);
        s = (struct lb_strv){ r->new_data, r->n_new_data };
        lb_strv_done(&s);
        s = (struct lb_strv){ r->objects, r->n_objects };
        lb_strv_done(&s);
        free(r);
}

/* ---- Running gcc and objcopy --------------------------------------------- */

static int compile(const struct lb_replace_opts *o, const char *obj, struct errbuf *err)
{
        _cleanup_free_ char **argv = NULL;
        struct errbuf why = {};
        size_t n = 0;
        int r;

        argv = calloc(ELEMENTSOF(gcc_flags) + o->n_cflags + 7, sizeof(*argv));
        if (!argv)
                return -ENOMEM;
        argv[n++] = (char *)"gcc";
        for (size_t i = 0; i < ELEMENTSOF(gcc_flags); i++)
                argv[n++] = (char *)gcc_flags[i];
        for (size_t i = 0; i < o->n_cflags; i++)
                argv[n++] = o->cflags[i];
        /* -x c: FIX may be named anything; "--" is not gcc's. */
        argv[n++] = (char *)"-x";
        argv[n++] = (char *)"c";
        argv[n++] = (char *)o->fix;
        argv[n++] = (char *)"-o";
        argv[n++] = (char *)obj;
        argv[n] = NULL;
        r = lb_run_tool(argv, &why);
        if (r < 0) {
                errbuf_set(err, "cannot compile '%s': %s", o->fix, why.msg);
                return r;
        }
        return 0;
}

/* ---- The object gcc made ------------------------------------------------- */

enum osym_kind {
        OSYM_FUNC,
        OSYM_DATA,
        OSYM_TLS,
        OSYM_UNDEF,
};

struct osym {
        const char *name; /* in the Elf's string table */
        enum osym_kind kind;
        bool local, weak;
        bool ifunc; /* STT_GNU_IFUNC: a resolver, not the code */
};

struct object {
        void *image;
        size_t size;
        Elf *elf;
        struct osym *syms;
        size_t n_syms;
        bool has_meta_section; /* FIX.c defined a .liveup section itself */
};

static void object_done(struct object *o)
{
        if (o->elf)
                elf_end(o->elf);
        free(o->syms);
        free(o->image);
        *o = (struct object){};
}

static int object_read_symbols(struct object *o)
{
        Elf_Scn *scn = NULL;
        size_t shstrndx = 0;
        bool have_names;

        have_names = elf_getshdrstrndx(o->elf, &shstrndx) == 0;
        while ((scn = elf_nextscn(o->elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;
                size_t count, entsize;
                const char *sname;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                sname = have_names ? elf_strptr(o->elf, shstrndx, sh.sh_name) : NULL;
                if (sname && strcmp(sname, LP_META_SECTION) == 0)
                        o->has_meta_section = true;
                if (sh.sh_type != SHT_SYMTAB)
                        continue;
                d = elf_getdata(scn, NULL);
                entsize = gelf_fsize(o->elf, ELF_T_SYM, 1, EV_CURRENT);
                if (!d || !d->d_buf || entsize == 0)
                        return -EBADMSG;
                count = d->d_size / entsize;
                if (count > INT_MAX)
                        return -EBADMSG;
                o->syms = calloc(MAX(count, (size_t)1), sizeof(*o->syms));
                if (!o->syms)
                        return -ENOMEM;
                for (size_t i = 1; i < count; i++) {
                        GElf_Sym sym;
                        const char *name;
                        unsigned type, bind;
                        enum osym_kind kind;

                        if (!gelf_getsym(d, (int)i, &sym))
                                continue;
                        type = GELF_ST_TYPE(sym.st_info);
                        bind = GELF_ST_BIND(sym.st_info);
                        name = elf_strptr(o->elf, sh.sh_link, sym.st_name);
                        if (!name || !*name || type == STT_SECTION || type == STT_FILE)
                                continue;
                        if (sym.st_shndx == SHN_UNDEF)
                                kind = OSYM_UNDEF;
                        else if (type == STT_FUNC || type == STT_GNU_IFUNC)
                                kind = OSYM_FUNC;
                        else if (type == STT_TLS)
                                kind = OSYM_TLS;
                        else if (type == STT_OBJECT || type == STT_COMMON)
                                kind = OSYM_DATA;
                        else
                                continue; /* local labels (.LC0) and the like */
                        o->syms[o->n_syms++] = (struct osym){
                                .name = name,
                                .kind = kind,
                                .local = bind == STB_LOCAL,
                                .weak = bind == STB_WEAK,
                                .ifunc = type == STT_GNU_IFUNC,
                        };
                }
        }
        return 0;
}

static int object_open(const char *path, const char *fix, struct object *ret,
                       struct errbuf *err)
{
        struct object o = {};
        char *text = NULL;
        size_t len = 0;
        int r;

        r = read_file_str(path, &text, &len);
        if (r < 0) {
                errbuf_set(err, "cannot read the object compiled from '%s': %s", fix,
                           strerror(-r));
                return r;
        }
        o.image = text;
        o.size = len;
        (void)elf_library_init();
        o.elf = elf_memory(o.image, o.size);
        if (!o.elf) {
                object_done(&o);
                errbuf_set(err, "cannot read the object compiled from '%s': %s", fix,
                           elf_errmsg(-1));
                return -EBADMSG;
        }
        r = object_read_symbols(&o);
        if (r < 0) {
                object_done(&o);
                errbuf_set(err, "cannot read the symbols of the object compiled from '%s'", fix);
                return r;
        }
        *ret = o;
        return 0;
}

/* ---- Deciding what each symbol is ---------------------------------------- */

struct build {
        const struct lb_replace_opts *o;
        struct elf_file *bin;
        const char *bin_name; /* as the user wrote it, for messages */
        bool bin_has_symtab;
        struct lb_needed *needed; /* loaded on first use */
        struct object obj;
        struct lp_func *funcs;
        size_t n_funcs;
        struct lb_strv names; /* storage for funcs[].name */
        struct lb_strv helpers, undefined, warnings;
};

static void build_done(struct build *b)
{
        lb_needed_free(b->needed);
        object_done(&b->obj);
        free(b->funcs);
        lb_strv_done(&b->names);
        lb_strv_done(&b->helpers);
        lb_strv_done(&b->undefined);
        lb_strv_done(&b->warnings);
}

/* "0x1139 (a.c), 0x1189 (b.c)": the distinct statics named `name`. */
static void list_candidates(const struct build *b, const char *name, char *buf, size_t size)
{
        const struct elf_symbol *c[MAX_LISTED];
        size_t n, len = 0, shown = 0;

        buf[0] = 0;
        n = elf_file_lookup_all(b->bin, name, c, ELEMENTSOF(c));
        for (size_t i = 0; i < MIN(n, ELEMENTSOF(c)) && len < size; i++) {
                int k;

                if (i > 0 && c[i]->addr == c[i - 1]->addr)
                        continue;
                k = snprintf(buf + len, size - len, "%s0x%" PRIx64 "%s%s%s",
                             shown > 0 ? ", " : "", c[i]->addr, c[i]->file ? " (" : "",
                             c[i]->file ? c[i]->file : "", c[i]->file ? ")" : "");
                len = k < 0 ? size : len + (size_t)k;
                shown++;
        }
        if (n > ELEMENTSOF(c) && len < size)
                snprintf(buf + len, size - len, ", ...");
}

/* Look `name` up in BIN: 0 and *ret when BIN has exactly one, -ENOENT,
 * or -ENOTUNIQ (message set, naming the candidates). `defined`: FIX.c
 * defines the name (else it only references it). */
static int bin_lookup(const struct build *b, const char *name, bool defined,
                      const struct elf_symbol **ret, struct errbuf *err)
{
        char list[512];
        int r;

        r = elf_file_lookup(b->bin, name, ret, NULL);
        if (r == -ENOTUNIQ) {
                list_candidates(b, name, list, sizeof(list));
                if (defined)
                        errbuf_set(err,
                                   "cannot build '%s': function '%s' is ambiguous in '%s': "
                                   "statics at %s; rename it in '%s' if it is a new helper",
                                   b->o->fix, name, b->bin_name, list, b->o->fix);
                else
                        errbuf_set(err,
                                   "cannot build '%s': symbol '%s' is ambiguous in '%s': "
                                   "statics at %s; a patch cannot tell which one it means",
                                   b->o->fix, name, b->bin_name, list);
        }
        return r;
}

static bool is_gcc_clone(const char *name)
{
        /* foo.part.0, foo.isra.0, foo.constprop.0, foo.cold: C names have
         * no dot. */
        return strchr(name, '.') != NULL;
}

/* gcc's clones of `name` in BIN (name.part.N, name.isra.N,
 * name.constprop.N; not name.cold, which is part of the function): how
 * many, and their names listed in `list`. */
static size_t find_clones(const struct build *b, const char *name, char *list, size_t size)
{
        size_t len = 0, nlen = strlen(name), found = 0;

        list[0] = 0;
        for (size_t i = 0; i < elf_file_n_symbols(b->bin); i++) {
                const struct elf_symbol *s = elf_file_symbol_at_index(b->bin, i);
                const char *rest;

                if (s->type != ELF_SYM_FUNC || strncmp(s->name, name, nlen) != 0 ||
                    s->name[nlen] != '.')
                        continue;
                rest = s->name + nlen + 1;
                /* .cold parts belong to the function and go with it. */
                if (strncmp(rest, "cold", 4) == 0)
                        continue;
                if (len < size) {
                        int k = snprintf(list + len, size - len, "%s%s", found > 0 ? ", " : "",
                                         s->name);
                        len = k < 0 ? size : len + (size_t)k;
                }
                found++;
        }
        return found;
}

/* Callers of BIN's clones of a replaced function keep the old code. */
static int warn_clones(struct build *b, const char *name)
{
        char list[256];

        if (find_clones(b, name, list, sizeof(list)) == 0)
                return 0;
        return lb_strv_pushf(&b->warnings,
                          "function '%s' also has compiler-made copies in '%s' (%s): calls to "
                          "those keep the old code",
                          name, b->bin_name, list);
}

static int add_replaced(struct build *b, const struct osym *os, const struct elf_symbol *t,
                        struct errbuf *err)
{
        struct lp_func fn, *nv;
        int r;

        r = lb_target_func(b->bin, b->bin_name, t, b->o->fix, &fn, err);
        if (r < 0)
                return r;
        nv = reallocarray(b->funcs, b->n_funcs + 1, sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        b->funcs = nv;
        r = lb_strv_push(&b->names, os->name);
        if (r < 0)
                return r;
        fn.name = fn.new_name = b->names.v[b->names.n - 1];
        b->funcs[b->n_funcs++] = fn;
        return warn_clones(b, os->name);
}

static int classify_function(struct build *b, const struct osym *os, struct errbuf *err)
{
        const struct elf_symbol *t = NULL;
        char list[256];
        int r;

        if (os->ifunc) {
                errbuf_set(err,
                           "cannot build '%s': function '%s' is an ifunc, "
                           "which a patch cannot define",
                           b->o->fix, os->name);
                return -EOPNOTSUPP;
        }
        if (is_gcc_clone(os->name))
                return lb_strv_push(&b->helpers, os->name);
        r = bin_lookup(b, os->name, true, &t, err);
        if (r == -ENOTUNIQ)
                return r;
        if (r == 0 && t->type == ELF_SYM_FUNC)
                return add_replaced(b, os, t, err);
        if (!os->local) {
                errbuf_set(err,
                           "cannot build '%s': function '%s' is not in '%s'; make it static if it "
                           "is a new helper",
                           b->o->fix, os->name, b->bin_name);
                return -ENOENT;
        }
        /* A new helper; but say so when the user more likely meant to
         * replace a function BIN lacks under that name. */
        r = 0;
        if (!b->bin_has_symtab)
                r = lb_strv_pushf(&b->warnings,
                               "static function '%s' is taken as a new helper: '%s' has no symbol "
                               "table or debug file, so its statics are unknown",
                               os->name, b->bin_name);
        else if (find_clones(b, os->name, list, sizeof(list)) > 0)
                r = lb_strv_pushf(&b->warnings,
                               "static function '%s' is taken as a new helper: '%s' has only "
                               "compiler-made copies of it (%s), which this patch does not replace",
                               os->name, b->bin_name, list);
        if (r < 0)
                return r;
        return lb_strv_push(&b->helpers, os->name);
}

static int classify_data(struct build *b, const struct osym *os, struct errbuf *err)
{
        const struct elf_symbol *t = NULL;
        int r;

        if (os->kind == OSYM_TLS) {
                errbuf_set(err,
                           "cannot build '%s': thread-local variable '%s': a patch cannot add "
                           "thread-local data (declare it extern to use the target's)",
                           b->o->fix, os->name);
                return -EOPNOTSUPP;
        }
        if (is_gcc_clone(os->name))
                return 0; /* gcc's own (x.0 for a function's static) */
        r = elf_file_lookup(b->bin, os->name, &t, NULL);
        if (r < 0 && r != -ENOTUNIQ)
                return 0;
        if (r == 0 && t->type != ELF_SYM_OBJECT && t->type != ELF_SYM_TLS)
                return 0;
        if (!os->local) {
                errbuf_set(err,
                           "cannot build '%s': variable '%s' is defined in both '%s' and '%s'; "
                           "declare it extern to use the target's, or make it static if it is new "
                           "data",
                           b->o->fix, os->name, b->o->fix, b->bin_name);
                return -EEXIST;
        }
        return lb_strv_pushf(&b->warnings,
                          "static variable '%s' is new data of the patch, not the one in '%s' "
                          "(declare it extern to use the target's)",
                          os->name, b->bin_name);
}

static int check_undefined(struct build *b, const struct osym *os, struct errbuf *err)
{
        const struct elf_symbol *t = NULL;
        struct errbuf lerr = {};
        int r;

        if (lb_strv_contains(&b->undefined, os->name))
                return 0;
        /* Made by the linker: the loader provides it. */
        if (strcmp(os->name, "_GLOBAL_OFFSET_TABLE_") == 0)
                return lb_strv_push(&b->undefined, os->name);
        r = bin_lookup(b, os->name, false, &t, err);
        if (r == -ENOTUNIQ)
                return r;
        if (r < 0) {
                if (!b->needed) {
                        r = lb_needed_open(elf_file_path(b->bin), &b->needed, &lerr);
                        if (r < 0) {
                                errbuf_set(err,
                                           "cannot build '%s': "
                                           "cannot read the libraries of '%s': %s",
                                           b->o->fix, b->bin_name, errbuf_or_strerror(&lerr, r));
                                return r;
                        }
                }
                /* A weak reference may stay unresolved (it becomes 0). */
                if (!lb_needed_has(b->needed, os->name) && !os->weak) {
                        errbuf_set(err,
                                   "cannot build '%s': symbol '%s' referenced by '%s' is not "
                                   "defined in '%s' or the libraries it uses",
                                   b->o->fix, os->name, b->o->fix, b->bin_name);
                        return -ENOENT;
                }
        }
        return lb_strv_push(&b->undefined, os->name);
}

static int cmp_func_addr(const void *x, const void *y)
{
        const struct lp_func *a = x, *c = y;

        return (a->addr > c->addr) - (a->addr < c->addr);
}

static int classify(struct build *b, struct errbuf *err)
{
        int r;

        for (size_t i = 0; i < b->obj.n_syms; i++) {
                const struct osym *os = &b->obj.syms[i];

                switch (os->kind) {
                case OSYM_FUNC:
                        r = classify_function(b, os, err);
                        break;
                case OSYM_DATA:
                case OSYM_TLS:
                        r = classify_data(b, os, err);
                        break;
                case OSYM_UNDEF:
                        r = check_undefined(b, os, err);
                        break;
                default:
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        if (b->n_funcs == 0) {
                errbuf_set(err, "cannot build '%s': it replaces no function of '%s'",
                           b->o->fix, b->bin_name);
                return -ENOENT;
        }
        /* Two names for one function (aliases): two jumps on one entry. */
        qsort(b->funcs, b->n_funcs, sizeof(*b->funcs), cmp_func_addr);
        for (size_t i = 1; i < b->n_funcs; i++)
                if (b->funcs[i].addr == b->funcs[i - 1].addr) {
                        errbuf_set(err,
                                   "cannot build '%s': '%s' and '%s' are the same function in "
                                   "'%s' (aliases); replace only one",
                                   b->o->fix, b->funcs[i - 1].name, b->funcs[i].name,
                                   b->bin_name);
                        return -EEXIST;
                }
        return 0;
}

/* ---- The whole build ----------------------------------------------------- */

static int open_inputs(struct build *b, struct errbuf *err)
{
        const struct lb_replace_opts *o = b->o;
        struct errbuf eerr = {};
        struct elf_section sec;
        struct stat st;
        int type, r;

        if (stat(o->fix, &st) < 0) {
                errbuf_set(err, "'%s': %s", o->fix, strerror(errno));
                return -EINVAL;
        }
        if (!S_ISREG(st.st_mode) || access(o->fix, R_OK) < 0) {
                errbuf_set(err, "'%s': %s", o->fix,
                           S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file");
                return -EINVAL;
        }
        r = elf_file_open(o->target, &b->bin, &eerr);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                errbuf_set(err, "%s", errbuf_or_strerror(&eerr, r));
                return -EINVAL;
        }
        type = elf_file_type(b->bin);
        if (type != ET_EXEC && type != ET_DYN) {
                errbuf_set(err, "'%s': not an executable or shared library", o->target);
                return -EINVAL;
        }
        b->bin_has_symtab = elf_file_section(b->bin, ".symtab", &sec) == 0 ||
                            elf_file_debug_path(b->bin) != NULL;
        return 0;
}

int lb_build_replace(const struct lb_replace_opts *o, struct lb_result **ret,
                     struct errbuf *err)
{
        _cleanup_(elf_file_freep) struct elf_file *bin = NULL;
        _cleanup_(lb_tmpdir_done) struct lb_tmpdir td = {};
        _cleanup_(build_done) struct build b = { .o = o, .bin_name = o->target };
        _cleanup_(lb_result_freep) struct lb_result *res = NULL;
        _cleanup_(lp_file_freep) struct lp_file *patch = NULL;
        _cleanup_free_ char *name = NULL, *id = NULL, *target = NULL, *output = NULL;
        _cleanup_free_ char *obj_path = NULL, *stem = NULL;
        const uint8_t *bid;
        size_t bid_len;
        struct lp_file desc = {};
        int r;

        /* Names first: a bad one is bad usage, found before any work. */
        r = lb_patch_name(o->name, o->fix, fix_exts, &name, err);
        if (r < 0)
                return r;
        if (o->output)
                output = strdup(o->output);
        else {
                stem = lb_file_stem(o->fix, fix_exts);
                if (!stem || asprintf(&output, "%s.lpo", stem) < 0)
                        return -ENOMEM;
        }
        if (!output)
                return -ENOMEM;

        r = open_inputs(&b, err);
        bin = b.bin; /* freed after b (declared before it) */
        if (r < 0)
                return r;
        if (lb_same_file(output, o->fix) || lb_same_file(output, o->target)) {
                errbuf_set(err, "refusing to write the patch over '%s', an input", output);
                return -EINVAL;
        }
        if (elf_file_build_id(bin, &bid, &bid_len) < 0) {
                errbuf_set(err,
                           "cannot build '%s': '%s' has no build-id, so a patch cannot be bound "
                           "to it (link it with -Wl,--build-id)",
                           o->fix, o->target);
                return -ENODATA;
        }
        if (bid_len > LP_BUILD_ID_MAX) {
                errbuf_set(err, "cannot build '%s': the build-id of '%s' is too long", o->fix,
                           o->target);
                return -ENODATA;
        }
        target = realpath(o->target, NULL);
        if (!target)
                return -errno;

        r = lb_tmpdir_make(&td);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot make a temporary folder: %s",
                           o->fix, strerror(-r));
                return r;
        }
        obj_path = lb_tmpdir_file(&td, "fix.o");
        if (!obj_path)
                return -ENOMEM;

        r = compile(o, obj_path, err);
        if (r < 0)
                return r;
        r = object_open(obj_path, o->fix, &b.obj, err);
        if (r < 0)
                return r;
        if (b.obj.has_meta_section) {
                errbuf_set(err, "cannot build '%s': it defines a section named %s itself",
                           o->fix, LP_META_SECTION);
                return -EEXIST;
        }
        r = classify(&b, err);
        if (r < 0)
                return r;

        id = lb_make_id(name, b.obj.image, b.obj.size, bid, bid_len);
        if (!id)
                return -ENOMEM;
        desc = (struct lp_file){
                .id = id,
                .name = name,
                .target = target,
                .build_id_len = bid_len,
                .flags = o->cumulative ? LP_FLAG_CUMULATIVE : 0,
                .created = lb_created_time(),
                .funcs = b.funcs,
                .n_funcs = b.n_funcs,
        };
        memcpy(desc.build_id, bid, bid_len);
        r = lb_write_patch(&td, obj_path, &desc, output, o->fix, &patch, err);
        if (r < 0)
                return r;

        res = calloc(1, sizeof(*res));
        if (!res)
                return -ENOMEM;
        res->output = TAKE_PTR(output);
        res->patch = TAKE_PTR(patch);
        res->helpers = TAKE_PTR(b.helpers.v);
        res->n_helpers = b.helpers.n;
        b.helpers.n = 0;
        res->undefined = TAKE_PTR(b.undefined.v);
        res->n_undefined = b.undefined.n;
        b.undefined.n = 0;
        res->warnings = TAKE_PTR(b.warnings.v);
        res->n_warnings = b.warnings.n;
        b.warnings.n = 0;
        *ret = TAKE_PTR(res);
        return 0;
}
