/* The .lpo patch file: reading and validating it (lp_file_open/parse) and
 * writing its .liveup metadata section (lp_meta_serialize). Layout and
 * field meanings are in format.h.
 *
 * The reader treats every byte as hostile; a file that passes has:
 *   - an ELF header of this ISA, this host's byte order, type ET_REL;
 *   - exactly one .liveup section, inside the file, not compressed;
 *   - a header with our magic and a version from LP_META_VERSION_MIN to
 *     LP_META_VERSION, header_size at least LP_META_HEADER_SIZE_V1 (at
 *     least the whole struct in version 2), func_size and bind_size at
 *     least our structs' sizes (larger: a newer minor version appended
 *     fields; we read what we know; header fields past a shorter header
 *     read as 0), no flag we do not know;
 *   - a function table, a bindings table (when there are bindings) and
 *     a string table inside the section, after the header, none
 *     overlapping another, with counts and sizes that cannot overflow
 *     (all arithmetic is done in 64 bits on 32-bit fields);
 *   - every string offset inside the string table, the string
 *     NUL-terminated there, non-empty and free of control characters (a
 *     function's why_str may also be 0: not said);
 *   - a build-id of 1 to LP_BUILD_ID_MAX bytes, 1 to LP_MAX_FUNCS
 *     functions, no target function named twice, each with a non-empty
 *     address range that does not wrap;
 *   - no bindings in version 1, at most LP_MAX_BINDS in version 2, each
 *     exactly one of LP_BIND_FUNC and LP_BIND_DATA, no symbol bound
 *     twice;
 *   - for every function, a replacement that is a defined STT_FUNC
 *     symbol of the object, lying inside an allocated executable section;
 *   - for every binding, a symbol that is undefined in the object's
 *     .symtab and not defined there as well.
 * Anything else is -ENOEXEC (not a patch) or -EBADMSG (corrupt), or
 * -EPROTONOSUPPORT (another format version), with one message naming the
 * file and the field. Nothing is read before its bounds are checked, and
 * multi-byte fields are copied out with memcpy (the section need not be
 * aligned).
 *
 * Lifecycle: the lp_file owns a pristine copy of the whole file (libelf
 * reads a second one: elf_memory() may convert data in place, and the
 * loader must see the bytes as they are in the file) and a private copy of
 * the metadata's strings, which every name in it points into. It is
 * immutable once returned. */
#include "livepatch/format.h"
#include "elf/elf.h"

#include "arch/arch.h"

#include <endian.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

/* The on-disk layout must not depend on the compiler's padding. */
_Static_assert(sizeof(struct lp_meta_header) == 144, "lp_meta_header layout");
_Static_assert(offsetof(struct lp_meta_header, build_id) == 56, "lp_meta_header layout");
_Static_assert(offsetof(struct lp_meta_header, created) == 120, "lp_meta_header layout");
_Static_assert(offsetof(struct lp_meta_header, n_binds) == LP_META_HEADER_SIZE_V1,
               "lp_meta_header layout");
_Static_assert(offsetof(struct lp_meta_header, bind_size) == 136, "lp_meta_header layout");
_Static_assert(sizeof(struct lp_meta_func) == 56, "lp_meta_func layout");
_Static_assert(offsetof(struct lp_meta_func, entry) == 32, "lp_meta_func layout");
_Static_assert(offsetof(struct lp_meta_func, why_str) == 52, "lp_meta_func layout");
_Static_assert(sizeof(struct lp_meta_bind) == 24, "lp_meta_bind layout");
_Static_assert(offsetof(struct lp_meta_bind, addr) == 8, "lp_meta_bind layout");
_Static_assert(offsetof(struct lp_meta_bind, flags) == 16, "lp_meta_bind layout");

#define LP_FLAGS_KNOWN ((uint32_t)LP_FLAG_CUMULATIVE)
#define LP_FUNC_FLAGS_KNOWN ((uint32_t)LP_FUNC_LOCAL)
#define LP_BIND_KINDS ((uint32_t)(LP_BIND_FUNC | LP_BIND_DATA))
#define LP_BIND_FLAGS_KNOWN ((uint32_t)(LP_BIND_FUNC | LP_BIND_DATA | LP_BIND_LOCAL))
/* No function is larger: bounds what apply reads and hashes. */
#define LP_MAX_FUNC_BYTES (1ull << 30)

uint64_t lp_hash(const void *data, size_t size)
{
        const uint8_t *p = data;
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */

        for (size_t i = 0; i < size; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull; /* FNV-1a 64 prime */
        }
        return h;
}

void lp_file_free(struct lp_file *f)
{
        if (!f)
                return;
        free(f->funcs);
        free(f->binds);
        free(f->bind_index);
        free(f->strtab);
        free(f->image);
        free(f->path);
        free(f);
}

/* ---- Strings ------------------------------------------------------------ */

static bool has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
                        return true;
        return false;
}

/* The string at `off` of the string table, checked; `what` names the
 * field in the message ("function 2 name"). */
static int meta_string(const struct lp_file *f, size_t strtab_size, uint32_t off,
                       const char *what, const char **ret, struct errbuf *err)
{
        const char *s;

        if (off >= strtab_size) {
                errbuf_set(err, "'%s': corrupt .liveup section: %s offset out of range", f->path,
                           what);
                return -EBADMSG;
        }
        s = f->strtab + off;
        if (!memchr(s, 0, strtab_size - off)) {
                errbuf_set(err, "'%s': corrupt .liveup section: %s is not NUL-terminated",
                           f->path, what);
                return -EBADMSG;
        }
        if (!*s) {
                errbuf_set(err, "'%s': corrupt .liveup section: %s is empty", f->path, what);
                return -EBADMSG;
        }
        if (has_control_chars(s)) {
                errbuf_set(err, "'%s': corrupt .liveup section: %s has control characters",
                           f->path, what);
                return -EBADMSG;
        }
        *ret = s;
        return 0;
}

static void hex_string(const uint8_t *p, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 0xf];
        }
        out[2 * n] = 0;
}

/* ---- The .liveup section ------------------------------------------------ */

static void header_from_le(struct lp_meta_header *h)
{
        h->version = le32toh(h->version);
        h->header_size = le32toh(h->header_size);
        h->flags = le32toh(h->flags);
        h->n_funcs = le32toh(h->n_funcs);
        h->funcs_off = le32toh(h->funcs_off);
        h->func_size = le32toh(h->func_size);
        h->strtab_off = le32toh(h->strtab_off);
        h->strtab_size = le32toh(h->strtab_size);
        h->id_str = le32toh(h->id_str);
        h->name_str = le32toh(h->name_str);
        h->target_str = le32toh(h->target_str);
        h->build_id_len = le32toh(h->build_id_len);
        h->created = le64toh(h->created);
        h->n_binds = le32toh(h->n_binds);
        h->binds_off = le32toh(h->binds_off);
        h->bind_size = le32toh(h->bind_size);
        h->reserved2 = le32toh(h->reserved2);
}

static void func_from_le(struct lp_meta_func *m)
{
        m->name_str = le32toh(m->name_str);
        m->new_str = le32toh(m->new_str);
        m->addr = le64toh(m->addr);
        m->size = le64toh(m->size);
        m->hash = le64toh(m->hash);
        m->flags = le32toh(m->flags);
        m->why_str = le32toh(m->why_str);
}

static void bind_from_le(struct lp_meta_bind *b)
{
        b->sym_str = le32toh(b->sym_str);
        b->name_str = le32toh(b->name_str);
        b->addr = le64toh(b->addr);
        b->flags = le32toh(b->flags);
        b->reserved = le32toh(b->reserved);
}

static int cmp_func_name(const void *a, const void *b)
{
        const struct lp_func *x = *(const struct lp_func *const *)a;
        const struct lp_func *y = *(const struct lp_func *const *)b;

        return strcmp(x->name, y->name);
}

/* A target function named twice is ambiguous. Sorting pointers keeps
 * this O(n log n) for hostile counts. */
static int check_unique_names(const struct lp_file *f, struct errbuf *err)
{
        _cleanup_free_ const struct lp_func **v = NULL;

        v = calloc(f->n_funcs, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_funcs; i++)
                v[i] = &f->funcs[i];
        qsort(v, f->n_funcs, sizeof(*v), cmp_func_name);
        for (size_t i = 1; i < f->n_funcs; i++)
                if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
                        errbuf_set(err,
                                   "'%s': corrupt .liveup section: function '%s' is replaced twice",
                                   f->path, v[i]->name);
                        return -EBADMSG;
                }
        return 0;
}

static int cmp_bind_ptr(const void *a, const void *b)
{
        const struct lp_bind *x = *(const struct lp_bind *const *)a;
        const struct lp_bind *y = *(const struct lp_bind *const *)b;

        return strcmp(x->sym, y->sym);
}

/* A symbol bound twice is ambiguous. The sorted pointers stay, as the
 * index lp_file_find_bind() searches. */
static int index_binds(struct lp_file *f, struct errbuf *err)
{
        const struct lp_bind **v;

        if (f->n_binds == 0)
                return 0;
        v = calloc(f->n_binds, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_binds; i++)
                v[i] = &f->binds[i];
        qsort(v, f->n_binds, sizeof(*v), cmp_bind_ptr);
        f->bind_index = v;
        for (size_t i = 1; i < f->n_binds; i++)
                if (strcmp(v[i - 1]->sym, v[i]->sym) == 0) {
                        errbuf_set(err,
                                   "'%s': corrupt .liveup section: symbol '%s' is bound twice",
                                   f->path, v[i]->sym);
                        return -EBADMSG;
                }
        return 0;
}

const struct lp_bind *lp_file_find_bind(const struct lp_file *f, const char *sym)
{
        const struct lp_bind key = { .sym = sym }, *pkey = &key;
        const struct lp_bind *const *found;

        if (!f || !sym || f->n_binds == 0 || !f->binds)
                return NULL;
        if (f->bind_index) {
                found = bsearch(&pkey, f->bind_index, f->n_binds, sizeof(*f->bind_index),
                                cmp_bind_ptr);
                return found ? *found : NULL;
        }
        for (size_t i = 0; i < f->n_binds; i++)
                if (f->binds[i].sym && strcmp(f->binds[i].sym, sym) == 0)
                        return &f->binds[i];
        return NULL;
}

#define CORRUPT(f, err, ...)                                                   \
        ({                                                                     \
                char _m_[256];                                                 \
                snprintf(_m_, sizeof(_m_), __VA_ARGS__);                       \
                errbuf_set((err), "'%s': corrupt .liveup section: %s",         \
                           (f)->path, _m_);                                    \
                -EBADMSG;                                                      \
        })

/* Parse the section's bytes `sec[0..size)` into f (strings, funcs and
 * header fields). The replacement symbols are checked by the caller. */
static int parse_meta(struct lp_file *f, const uint8_t *sec, size_t size, struct errbuf *err)
{
        struct lp_meta_header h;
        uint64_t funcs_end, strtab_end, binds_end;
        size_t header_min, known;
        int r;

        /* Magic, version and header_size come first in every version. */
        if (size < offsetof(struct lp_meta_header, flags))
                return CORRUPT(f, err, "truncated header (%zu bytes)", size);
        if (memcmp(sec, LP_META_MAGIC, sizeof(h.magic)) != 0)
                return CORRUPT(f, err, "bad magic");
        memcpy(&h.version, sec + offsetof(struct lp_meta_header, version), sizeof(h.version));
        h.version = le32toh(h.version);
        if (h.version < LP_META_VERSION_MIN || h.version > LP_META_VERSION) {
                errbuf_set(err,
                           "'%s': patch format version %u, this liveup reads versions %u to %u",
                           f->path, h.version, LP_META_VERSION_MIN, LP_META_VERSION);
                return -EPROTONOSUPPORT;
        }
        memcpy(&h.header_size, sec + offsetof(struct lp_meta_header, header_size),
               sizeof(h.header_size));
        h.header_size = le32toh(h.header_size);
        /* Version 1 may have the short header; version 2 has the bindings
         * fields, which it exists for. */
        header_min = h.version >= LP_META_VERSION_BINDS ? sizeof(h) : LP_META_HEADER_SIZE_V1;
        if (h.header_size < header_min || h.header_size > LP_MAX_HEADER_SIZE)
                return CORRUPT(f, err, "header size %u is not %zu to %u", h.header_size,
                               header_min, LP_MAX_HEADER_SIZE);
        if (h.header_size > size)
                return CORRUPT(f, err, "truncated header (%zu of %u bytes)", size,
                               h.header_size);
        /* Fields past a short header read as 0. */
        known = MIN((size_t)h.header_size, sizeof(h));
        memset(&h, 0, sizeof(h));
        memcpy(&h, sec, known);
        header_from_le(&h);

        if (h.flags & ~LP_FLAGS_KNOWN) {
                errbuf_set(err, "'%s': patch uses flags 0x%x that this liveup does not know",
                           f->path, h.flags & ~LP_FLAGS_KNOWN);
                return -EPROTONOSUPPORT;
        }
        if (h.build_id_len == 0 || h.build_id_len > LP_BUILD_ID_MAX)
                return CORRUPT(f, err, "build-id length %u is not 1 to %u", h.build_id_len,
                               LP_BUILD_ID_MAX);
        if (h.n_funcs == 0)
                return CORRUPT(f, err, "no functions");
        if (h.n_funcs > LP_MAX_FUNCS)
                return CORRUPT(f, err, "function count %u is more than %u", h.n_funcs,
                               LP_MAX_FUNCS);
        if (h.func_size < sizeof(struct lp_meta_func) || h.func_size > LP_MAX_FUNC_SIZE)
                return CORRUPT(f, err, "function entry size %u is not %zu to %u", h.func_size,
                               sizeof(struct lp_meta_func), LP_MAX_FUNC_SIZE);

        /* 32-bit fields: every sum and product below fits in 64 bits. */
        funcs_end = (uint64_t)h.funcs_off + (uint64_t)h.n_funcs * h.func_size;
        strtab_end = (uint64_t)h.strtab_off + h.strtab_size;
        if (h.funcs_off < h.header_size || funcs_end > size)
                return CORRUPT(f, err, "function table (%u entries at %u) out of range",
                               h.n_funcs, h.funcs_off);
        if (h.strtab_size == 0 || h.strtab_off < h.header_size || strtab_end > size)
                return CORRUPT(f, err, "string table (%u bytes at %u) out of range",
                               h.strtab_size, h.strtab_off);
        if (h.strtab_off < funcs_end && h.funcs_off < strtab_end)
                return CORRUPT(f, err, "function table overlaps the string table");

        if (h.n_binds > 0 && h.version < LP_META_VERSION_BINDS)
                return CORRUPT(f, err,
                               "%u bindings in a version %u file (bindings need version %u)",
                               h.n_binds, h.version, LP_META_VERSION_BINDS);
        if (h.n_binds > LP_MAX_BINDS)
                return CORRUPT(f, err, "binding count %u is more than %u", h.n_binds,
                               LP_MAX_BINDS);
        if (h.n_binds > 0) {
                if (h.bind_size < sizeof(struct lp_meta_bind) || h.bind_size > LP_MAX_BIND_SIZE)
                        return CORRUPT(f, err, "binding entry size %u is not %zu to %u",
                                       h.bind_size, sizeof(struct lp_meta_bind),
                                       LP_MAX_BIND_SIZE);
                binds_end = (uint64_t)h.binds_off + (uint64_t)h.n_binds * h.bind_size;
                if (h.binds_off < h.header_size || binds_end > size)
                        return CORRUPT(f, err, "binding table (%u entries at %u) out of range",
                                       h.n_binds, h.binds_off);
                if (h.binds_off < funcs_end && h.funcs_off < binds_end)
                        return CORRUPT(f, err, "binding table overlaps the function table");
                if (h.binds_off < strtab_end && h.strtab_off < binds_end)
                        return CORRUPT(f, err, "binding table overlaps the string table");
        }

        /* A private copy, NUL-terminated once more for safety. */
        f->strtab = malloc((size_t)h.strtab_size + 1);
        if (!f->strtab)
                return -ENOMEM;
        memcpy(f->strtab, sec + h.strtab_off, h.strtab_size);
        f->strtab[h.strtab_size] = 0;

        r = meta_string(f, h.strtab_size, h.id_str, "patch id", &f->id, err);
        if (r < 0)
                return r;
        r = meta_string(f, h.strtab_size, h.name_str, "patch name", &f->name, err);
        if (r < 0)
                return r;
        r = meta_string(f, h.strtab_size, h.target_str, "target path", &f->target, err);
        if (r < 0)
                return r;

        f->version = h.version;
        f->flags = h.flags;
        f->created = h.created;
        f->build_id_len = h.build_id_len;
        memcpy(f->build_id, h.build_id, h.build_id_len);
        hex_string(f->build_id, f->build_id_len, f->build_id_hex);

        f->funcs = calloc(h.n_funcs, sizeof(*f->funcs));
        if (!f->funcs)
                return -ENOMEM;
        for (size_t i = 0; i < h.n_funcs; i++) {
                struct lp_func *fn = &f->funcs[i];
                struct lp_meta_func m;
                char what[64];

                memcpy(&m, sec + h.funcs_off + i * h.func_size, sizeof(m));
                func_from_le(&m);
                snprintf(what, sizeof(what), "function %zu name", i);
                r = meta_string(f, h.strtab_size, m.name_str, what, &fn->name, err);
                if (r < 0)
                        return r;
                snprintf(what, sizeof(what), "function %zu replacement name", i);
                r = meta_string(f, h.strtab_size, m.new_str, what, &fn->new_name, err);
                if (r < 0)
                        return r;
                if (m.why_str != 0) {
                        snprintf(what, sizeof(what), "function %zu reason", i);
                        r = meta_string(f, h.strtab_size, m.why_str, what, &fn->why, err);
                        if (r < 0)
                                return r;
                }
                if (m.flags & ~LP_FUNC_FLAGS_KNOWN) {
                        errbuf_set(err,
                                   "'%s': function '%s' uses flags 0x%x that this liveup does not "
                                   "know",
                                   f->path, fn->name, m.flags & ~LP_FUNC_FLAGS_KNOWN);
                        return -EPROTONOSUPPORT;
                }
                if (m.size == 0 || m.size > LP_MAX_FUNC_BYTES)
                        return CORRUPT(f, err,
                                       "function %zu ('%s') size %" PRIu64 " is not 1 to %llu", i,
                                       fn->name, m.size, LP_MAX_FUNC_BYTES);
                if (m.addr + m.size < m.addr)
                        return CORRUPT(f, err, "function %zu ('%s') address range wraps", i,
                                       fn->name);
                fn->addr = m.addr;
                fn->size = m.size;
                fn->hash = m.hash;
                fn->flags = m.flags;
                memcpy(fn->entry, m.entry, sizeof(fn->entry));
                f->n_funcs++;
        }
        r = check_unique_names(f, err);
        if (r < 0)
                return r;

        if (h.n_binds == 0)
                return 0;
        f->binds = calloc(h.n_binds, sizeof(*f->binds));
        if (!f->binds)
                return -ENOMEM;
        for (size_t i = 0; i < h.n_binds; i++) {
                struct lp_bind *b = &f->binds[i];
                struct lp_meta_bind m;
                uint32_t kind;
                char what[64];

                memcpy(&m, sec + h.binds_off + i * h.bind_size, sizeof(m));
                bind_from_le(&m);
                snprintf(what, sizeof(what), "binding %zu symbol", i);
                r = meta_string(f, h.strtab_size, m.sym_str, what, &b->sym, err);
                if (r < 0)
                        return r;
                snprintf(what, sizeof(what), "binding %zu target name", i);
                r = meta_string(f, h.strtab_size, m.name_str, what, &b->name, err);
                if (r < 0)
                        return r;
                if (m.flags & ~LP_BIND_FLAGS_KNOWN) {
                        errbuf_set(err,
                                   "'%s': binding of '%s' uses flags 0x%x that this liveup does "
                                   "not know",
                                   f->path, b->sym, m.flags & ~LP_BIND_FLAGS_KNOWN);
                        return -EPROTONOSUPPORT;
                }
                kind = m.flags & LP_BIND_KINDS;
                if (kind != LP_BIND_FUNC && kind != LP_BIND_DATA)
                        return CORRUPT(f, err,
                                       "binding %zu ('%s') flags 0x%x: not exactly one of "
                                       "function and data",
                                       i, b->sym, m.flags);
                b->addr = m.addr;
                b->flags = m.flags;
                f->n_binds++;
        }
        return index_binds(f, err);
}

/* ---- The ELF object around it ------------------------------------------- */

/* A named symbol of the object, for looking replacements and bound
 * symbols up. */
struct obj_sym {
        const char *name;
        bool defined;    /* not SHN_UNDEF */
        bool func;       /* a defined STT_FUNC */
        bool valid;      /* ... inside an allocated executable section */
};

static int cmp_obj_sym(const void *a, const void *b)
{
        return strcmp(((const struct obj_sym *)a)->name, ((const struct obj_sym *)b)->name);
}

/* The entries named `name` in v[0..n), sorted by name: the index of the
 * first, and their count in *ret_count (0: none). */
static size_t obj_sym_run(const struct obj_sym *v, size_t n, const char *name,
                          size_t *ret_count)
{
        size_t lo = 0, hi = n, end;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(v[mid].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (end = lo; end < n && strcmp(v[end].name, name) == 0; end++)
                ;
        *ret_count = end - lo;
        return lo;
}

static bool section_holds(Elf *elf, size_t shndx, const GElf_Sym *sym)
{
        Elf_Scn *scn;
        GElf_Shdr sh;

        scn = elf_getscn(elf, shndx);
        if (!scn || !gelf_getshdr(scn, &sh))
                return false;
        if (sh.sh_type != SHT_PROGBITS || (sh.sh_flags & (SHF_ALLOC | SHF_EXECINSTR)) !=
                                                  (SHF_ALLOC | SHF_EXECINSTR))
                return false;
        return sym->st_value <= sh.sh_size && sym->st_size <= sh.sh_size - sym->st_value;
}

/* The object's named symbols (not files or sections), sorted by name;
 * the names point into libelf's data. */
static int load_obj_syms(const struct lp_file *f, Elf *elf, struct obj_sym **ret,
                         size_t *ret_n, struct errbuf *err)
{
        _cleanup_free_ struct obj_sym *v = NULL;
        Elf_Scn *scn = NULL, *symtab = NULL;
        Elf_Data *data, *xndx = NULL;
        GElf_Shdr sh, symtab_sh = {};
        size_t n_sections = 0, count, entsize, n = 0;

        if (elf_getshdrnum(elf, &n_sections) < 0)
                n_sections = 0;
        while ((scn = elf_nextscn(elf, scn))) {
                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
                        continue;
                if (symtab) {
                        errbuf_set(err, "'%s': corrupt object: more than one symbol table",
                                   f->path);
                        return -EBADMSG;
                }
                symtab = scn;
                symtab_sh = sh;
        }
        if (!symtab) {
                errbuf_set(err, "'%s': corrupt object: no symbol table", f->path);
                return -EBADMSG;
        }
        scn = NULL;
        while ((scn = elf_nextscn(elf, scn)))
                if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB_SHNDX &&
                    sh.sh_link == elf_ndxscn(symtab))
                        xndx = elf_getdata(scn, NULL);

        data = elf_getdata(symtab, NULL);
        entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
        if (!data || !data->d_buf || data->d_type != ELF_T_SYM || entsize == 0 ||
            symtab_sh.sh_link == 0 || symtab_sh.sh_link >= n_sections) {
                errbuf_set(err, "'%s': corrupt object: unreadable symbol table", f->path);
                return -EBADMSG;
        }
        count = data->d_size / entsize;
        if (count > INT32_MAX) {
                errbuf_set(err, "'%s': corrupt object: symbol table too large", f->path);
                return -EBADMSG;
        }
        v = calloc(MAX(count, (size_t)1), sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 1; i < count; i++) {
                GElf_Sym sym;
                Elf32_Word shndx_ext = 0;
                size_t shndx;
                const char *name;
                int type;
                bool func;

                if (!gelf_getsymshndx(data, xndx, (int)i, &sym, &shndx_ext))
                        continue;
                type = GELF_ST_TYPE(sym.st_info);
                if (type == STT_FILE || type == STT_SECTION)
                        continue;
                name = elf_strptr(elf, symtab_sh.sh_link, sym.st_name);
                if (!name || !*name)
                        continue;
                if (sym.st_shndx == SHN_XINDEX)
                        shndx = shndx_ext;
                else if (sym.st_shndx >= SHN_LORESERVE)
                        shndx = 0; /* absolute or common: not code */
                else
                        shndx = sym.st_shndx;
                func = type == STT_FUNC && sym.st_shndx != SHN_UNDEF;
                v[n++] = (struct obj_sym){
                        .name = name,
                        .defined = sym.st_shndx != SHN_UNDEF,
                        .func = func,
                        .valid = func && shndx != 0 && shndx < n_sections &&
                                 section_holds(elf, shndx, &sym),
                };
        }
        qsort(v, n, sizeof(*v), cmp_obj_sym);
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

/* Every replacement must be a defined function of the object (one), and
 * every bound symbol an undefined symbol of it, defined nowhere in it:
 * the loader resolves undefined symbols only, so a binding of a defined
 * one would be dead. The names in `f` live in f->strtab; those of the
 * object in libelf's data, which is gone after this returns. */
static int check_symbols(const struct lp_file *f, Elf *elf, struct errbuf *err)
{
        _cleanup_free_ struct obj_sym *syms = NULL;
        size_t n = 0;
        int r;

        r = load_obj_syms(f, elf, &syms, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < f->n_funcs; i++) {
                const struct lp_func *fn = &f->funcs[i];
                const struct obj_sym *o = NULL;
                size_t first, count, n_defs = 0;

                first = obj_sym_run(syms, n, fn->new_name, &count);
                for (size_t k = first; k < first + count; k++)
                        if (syms[k].func) {
                                o = &syms[k];
                                n_defs++;
                        }
                if (!o)
                        return CORRUPT(f, err,
                                       "function %zu ('%s'): replacement '%s' is not a function "
                                       "defined in the object",
                                       i, fn->name, fn->new_name);
                if (n_defs > 1)
                        return CORRUPT(f, err,
                                       "function %zu ('%s'): replacement '%s' is defined more "
                                       "than once",
                                       i, fn->name, fn->new_name);
                if (!o->valid)
                        return CORRUPT(f, err,
                                       "function %zu ('%s'): replacement '%s' is not inside a "
                                       "code section",
                                       i, fn->name, fn->new_name);
        }
        for (size_t i = 0; i < f->n_binds; i++) {
                const struct lp_bind *b = &f->binds[i];
                size_t first, count;

                first = obj_sym_run(syms, n, b->sym, &count);
                if (count == 0)
                        return CORRUPT(f, err,
                                       "binding %zu: symbol '%s' is not a symbol of the object",
                                       i, b->sym);
                for (size_t k = first; k < first + count; k++)
                        if (syms[k].defined)
                                return CORRUPT(f, err,
                                               "binding %zu: symbol '%s' is defined in the "
                                               "object, not undefined",
                                               i, b->sym);
        }
        return 0;
}

/* The one .liveup section's bytes, inside the image. */
static int find_meta(const struct lp_file *f, Elf *elf, const uint8_t **ret, size_t *ret_size,
                     struct errbuf *err)
{
        Elf_Scn *scn = NULL;
        size_t shstrndx;
        GElf_Shdr found = {};
        bool have = false;

        if (elf_getshdrstrndx(elf, &shstrndx) < 0) {
                errbuf_set(err, "'%s': corrupt ELF section headers: %s", f->path,
                           elf_errmsg(-1));
                return -ENOEXEC;
        }
        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                const char *name;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                name = elf_strptr(elf, shstrndx, sh.sh_name);
                if (!name || strcmp(name, LP_META_SECTION) != 0)
                        continue;
                if (have) {
                        errbuf_set(err, "'%s': corrupt patch: more than one %s section",
                                   f->path, LP_META_SECTION);
                        return -EBADMSG;
                }
                found = sh;
                have = true;
        }
        if (!have) {
                errbuf_set(err, "'%s': not a liveup patch (no %s section)", f->path,
                           LP_META_SECTION);
                return -ENOEXEC;
        }
        if (found.sh_type == SHT_NOBITS || (found.sh_flags & SHF_COMPRESSED)) {
                errbuf_set(err, "'%s': corrupt .liveup section: no data in the file",
                           f->path);
                return -EBADMSG;
        }
        if (found.sh_offset > f->image_size || found.sh_size > f->image_size - found.sh_offset) {
                errbuf_set(err, "'%s': corrupt .liveup section: extends past the end of the file",
                           f->path);
                return -EBADMSG;
        }
        *ret = (const uint8_t *)f->image + found.sh_offset;
        *ret_size = found.sh_size;
        return 0;
}

/* Check the ELF header: ELF, this byte order, this ISA, relocatable. */
static int check_elf_header(const struct lp_file *f, Elf *elf, struct errbuf *err)
{
        GElf_Ehdr eh;

        if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
                errbuf_set(err, "'%s': not an ELF file", f->path);
                return -ENOEXEC;
        }
        if (eh.e_machine != arch_elf_machine()) {
                errbuf_set(err, "'%s': ELF for machine %u, not this ISA", f->path,
                           (unsigned)eh.e_machine);
                return -ENOEXEC;
        }
        if (eh.e_type != ET_REL) {
                errbuf_set(err,
                           "'%s': not a liveup patch (ELF type %u, a patch is a relocatable "
                           "object)",
                           f->path, (unsigned)eh.e_type);
                return -ENOEXEC;
        }
        return 0;
}

/* Parse `image` (malloc'd, taken over, freed on failure too). */
static int parse_image(void *image, size_t size, const char *name, struct lp_file **ret,
                       struct errbuf *err)
{
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        _cleanup_free_ void *owned = image;
        _cleanup_free_ void *work = NULL;
        _cleanup_(elf_endp) Elf *elf = NULL;
        const unsigned char *id = image;
        const uint8_t *sec;
        size_t sec_size;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->path = strdup(name);
        if (!f->path)
                return -ENOMEM;
        f->image = TAKE_PTR(owned);
        f->image_size = size;

        /* Before libelf: it would convert data of the other byte order in
         * place, and the loader only handles this host's. */
        if (size < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0) {
                errbuf_set(err, "'%s': not an ELF file", f->path);
                return -ENOEXEC;
        }
        if (id[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB
                                                                       : ELFDATA2MSB)) {
                errbuf_set(err, "'%s': ELF file of the other byte order, not this ISA",
                           f->path);
                return -ENOEXEC;
        }

        (void)elf_library_init();
        work = malloc(size);
        if (!work)
                return -ENOMEM;
        memcpy(work, f->image, size);
        elf = elf_memory(work, size);
        if (!elf) {
                errbuf_set(err, "'%s': not an ELF file (%s)", f->path, elf_errmsg(-1));
                return -ENOEXEC;
        }
        r = check_elf_header(f, elf, err);
        if (r < 0)
                return r;
        r = find_meta(f, elf, &sec, &sec_size, err);
        if (r < 0)
                return r;
        r = parse_meta(f, sec, sec_size, err);
        if (r < 0)
                return r;
        r = check_symbols(f, elf, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int lp_file_parse(const void *data, size_t size, const char *name, struct lp_file **ret,
                  struct errbuf *err)
{
        void *copy;

        if (size > LP_MAX_FILE_SIZE) {
                errbuf_set(err, "'%s': too large for a patch (%zu bytes)", name, size);
                return -EFBIG;
        }
        copy = malloc(MAX(size, (size_t)1));
        if (!copy)
                return -ENOMEM;
        if (size > 0)
                memcpy(copy, data, size);
        return parse_image(copy, size, name, ret, err);
}

int lp_file_open(const char *path, struct lp_file **ret, struct errbuf *err)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;

                errbuf_set(err, "'%s': %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                errbuf_set(err, "'%s': not a regular file", path);
                return S_ISDIR(st.st_mode) ? -EISDIR : -ENOEXEC;
        }
        if ((uint64_t)st.st_size > LP_MAX_FILE_SIZE) {
                errbuf_set(err, "'%s': too large for a patch (%" PRIu64 " bytes)", path,
                           (uint64_t)st.st_size);
                return -EFBIG;
        }
        buf = malloc(MAX((size_t)st.st_size, (size_t)1));
        if (!buf)
                return -ENOMEM;
        /* Read what is there: the file may shrink or grow meanwhile. */
        while (len < (size_t)st.st_size) {
                ssize_t k = read(fd, buf + len, (size_t)st.st_size - len);

                if (k < 0) {
                        int r = -errno;

                        if (errno == EINTR)
                                continue;
                        errbuf_set(err, "'%s': %s", path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        return parse_image(TAKE_PTR(buf), len, path, ret, err);
}

/* ---- The writer --------------------------------------------------------- */

struct strtab_builder {
        char *buf;
        size_t len, cap;
};

/* Append `s` to the table; its offset in *ret. */
static int strtab_add(struct strtab_builder *b, const char *s, uint32_t *ret)
{
        size_t n = strlen(s) + 1;

        if (b->len + n > UINT32_MAX / 2)
                return -E2BIG;
        if (b->len + n > b->cap) {
                size_t ncap = MAX(b->cap * 2, b->len + n + 256);
                char *nb = realloc(b->buf, ncap);

                if (!nb)
                        return -ENOMEM;
                b->buf = nb;
                b->cap = ncap;
        }
        memcpy(b->buf + b->len, s, n);
        *ret = (uint32_t)b->len;
        b->len += n;
        return 0;
}

static bool good_string(const char *s)
{
        return s && *s && !has_control_chars(s);
}

static int cmp_name_ptr(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The writer's copy of the reader's rules for the bindings. */
static int check_binds(const struct lp_file *m)
{
        _cleanup_free_ const char **syms = NULL;

        if (m->n_binds == 0)
                return 0;
        if (m->n_binds > LP_MAX_BINDS || !m->binds)
                return -EINVAL;
        syms = calloc(m->n_binds, sizeof(*syms));
        if (!syms)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_binds; i++) {
                const struct lp_bind *b = &m->binds[i];
                uint32_t kind = b->flags & LP_BIND_KINDS;

                if (!good_string(b->sym) || !good_string(b->name))
                        return -EINVAL;
                if ((b->flags & ~LP_BIND_FLAGS_KNOWN) ||
                    (kind != LP_BIND_FUNC && kind != LP_BIND_DATA))
                        return -EINVAL;
                syms[i] = b->sym;
        }
        qsort(syms, m->n_binds, sizeof(*syms), cmp_name_ptr);
        for (size_t i = 1; i < m->n_binds; i++)
                if (strcmp(syms[i - 1], syms[i]) == 0)
                        return -EINVAL;
        return 0;
}

static int check_meta(const struct lp_file *m)
{
        _cleanup_free_ const char **names = NULL;

        if (!good_string(m->id) || !good_string(m->name) || !good_string(m->target))
                return -EINVAL;
        if (m->build_id_len == 0 || m->build_id_len > LP_BUILD_ID_MAX)
                return -EINVAL;
        if (m->flags & ~LP_FLAGS_KNOWN)
                return -EINVAL;
        if (m->n_funcs == 0 || m->n_funcs > LP_MAX_FUNCS || !m->funcs)
                return -EINVAL;
        names = calloc(m->n_funcs, sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_funcs; i++) {
                const struct lp_func *fn = &m->funcs[i];

                if (!good_string(fn->name) || !good_string(fn->new_name))
                        return -EINVAL;
                if (fn->why && !good_string(fn->why))
                        return -EINVAL;
                if (fn->flags & ~LP_FUNC_FLAGS_KNOWN)
                        return -EINVAL;
                if (fn->size == 0 || fn->size > LP_MAX_FUNC_BYTES ||
                    fn->addr + fn->size < fn->addr)
                        return -EINVAL;
                names[i] = fn->name;
        }
        qsort(names, m->n_funcs, sizeof(*names), cmp_name_ptr);
        for (size_t i = 1; i < m->n_funcs; i++)
                if (strcmp(names[i - 1], names[i]) == 0)
                        return -EINVAL;
        return check_binds(m);
}

static void strtab_builder_done(struct strtab_builder *b)
{
        free(b->buf);
        *b = (struct strtab_builder){};
}

/* Offset 0 of the table is the empty string, as in ELF string tables:
 * optional fields (why_str) use it for "none". */
int lp_meta_serialize(const struct lp_file *meta, void **ret, size_t *ret_size)
{
        _cleanup_(strtab_builder_done) struct strtab_builder st = {};
        struct lp_meta_header h = {};
        _cleanup_free_ struct lp_meta_func *funcs = NULL;
        _cleanup_free_ struct lp_meta_bind *binds = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t funcs_bytes, binds_bytes, total;
        uint32_t empty;
        int r;

        r = check_meta(meta);
        if (r < 0)
                return r;
        funcs = calloc(meta->n_funcs, sizeof(*funcs));
        binds = calloc(MAX(meta->n_binds, (size_t)1), sizeof(*binds));
        if (!funcs || !binds)
                return -ENOMEM;

        r = strtab_add(&st, "", &empty);
        if (r >= 0)
                r = strtab_add(&st, meta->id, &h.id_str);
        if (r >= 0)
                r = strtab_add(&st, meta->name, &h.name_str);
        if (r >= 0)
                r = strtab_add(&st, meta->target, &h.target_str);
        for (size_t i = 0; r >= 0 && i < meta->n_funcs; i++) {
                const struct lp_func *fn = &meta->funcs[i];
                struct lp_meta_func *m = &funcs[i];

                r = strtab_add(&st, fn->name, &m->name_str);
                if (r >= 0 && strcmp(fn->new_name, fn->name) == 0)
                        m->new_str = m->name_str;
                else if (r >= 0)
                        r = strtab_add(&st, fn->new_name, &m->new_str);
                if (r >= 0 && fn->why)
                        r = strtab_add(&st, fn->why, &m->why_str);
                m->name_str = htole32(m->name_str);
                m->new_str = htole32(m->new_str);
                m->addr = htole64(fn->addr);
                m->size = htole64(fn->size);
                m->hash = htole64(fn->hash);
                memcpy(m->entry, fn->entry, sizeof(m->entry));
                m->flags = htole32(fn->flags);
                m->why_str = htole32(m->why_str);
        }
        for (size_t i = 0; r >= 0 && i < meta->n_binds; i++) {
                const struct lp_bind *b = &meta->binds[i];
                struct lp_meta_bind *m = &binds[i];

                r = strtab_add(&st, b->sym, &m->sym_str);
                if (r >= 0 && strcmp(b->name, b->sym) == 0)
                        m->name_str = m->sym_str;
                else if (r >= 0)
                        r = strtab_add(&st, b->name, &m->name_str);
                m->sym_str = htole32(m->sym_str);
                m->name_str = htole32(m->name_str);
                m->addr = htole64(b->addr);
                m->flags = htole32(b->flags);
        }
        if (r < 0)
                return r;

        /* Header, functions, bindings, strings. The counts are bounded
         * (LP_MAX_FUNCS, LP_MAX_BINDS) and the strings by strtab_add(),
         * so every offset fits in 32 bits. */
        funcs_bytes = meta->n_funcs * sizeof(*funcs);
        binds_bytes = meta->n_binds * sizeof(*binds);
        total = sizeof(h) + funcs_bytes + binds_bytes + st.len;
        out = malloc(total);
        if (!out)
                return -ENOMEM;
        memcpy(h.magic, LP_META_MAGIC, sizeof(h.magic));
        h.version = htole32(meta->n_binds > 0 ? LP_META_VERSION_BINDS : LP_META_VERSION_MIN);
        h.header_size = htole32(sizeof(h));
        h.flags = htole32(meta->flags);
        h.n_funcs = htole32((uint32_t)meta->n_funcs);
        h.funcs_off = htole32(sizeof(h));
        h.func_size = htole32(sizeof(*funcs));
        h.strtab_off = htole32((uint32_t)(sizeof(h) + funcs_bytes + binds_bytes));
        h.strtab_size = htole32((uint32_t)st.len);
        h.id_str = htole32(h.id_str);
        h.name_str = htole32(h.name_str);
        h.target_str = htole32(h.target_str);
        h.build_id_len = htole32((uint32_t)meta->build_id_len);
        memcpy(h.build_id, meta->build_id, meta->build_id_len);
        h.created = htole64(meta->created);
        h.n_binds = htole32((uint32_t)meta->n_binds);
        h.binds_off = htole32((uint32_t)(sizeof(h) + funcs_bytes));
        h.bind_size = htole32(sizeof(*binds));

        memcpy(out, &h, sizeof(h));
        memcpy(out + sizeof(h), funcs, funcs_bytes);
        memcpy(out + sizeof(h) + funcs_bytes, binds, binds_bytes);
        memcpy(out + sizeof(h) + funcs_bytes + binds_bytes, st.buf, st.len);
        *ret = TAKE_PTR(out);
        *ret_size = total;
        return 0;
}
