/* The .lpo patch file: reading and validating it (lp_file_open/parse) and
 * writing its .liveup metadata section (lp_meta_serialize). Layout and
 * field meanings are in format.h.
 *
 * The reader treats every byte as hostile; a file that passes has:
 *   - an ELF header of this ISA, this host's byte order, type ET_REL;
 *   - exactly one .liveup section, inside the file, not compressed;
 *   - a header with our magic and version, header_size and func_size at
 *     least our structs' sizes (larger: a newer minor version appended
 *     fields; we read what we know), no flag we do not know;
 *   - a function table and a string table inside the section, after the
 *     header, not overlapping, with counts and sizes that cannot
 *     overflow (all arithmetic is done in 64 bits on 32-bit fields);
 *   - every string offset inside the string table, the string
 *     NUL-terminated there, non-empty and free of control characters;
 *   - a build-id of 1 to LP_BUILD_ID_MAX bytes, 1 to LP_MAX_FUNCS
 *     functions, no target function named twice, each with a non-empty
 *     address range that does not wrap;
 *   - for every function, a replacement that is a defined STT_FUNC
 *     symbol of the object, lying inside an allocated executable section.
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
_Static_assert(sizeof(struct lp_meta_header) == 128, "lp_meta_header layout");
_Static_assert(offsetof(struct lp_meta_header, build_id) == 56, "lp_meta_header layout");
_Static_assert(offsetof(struct lp_meta_header, created) == 120, "lp_meta_header layout");
_Static_assert(sizeof(struct lp_meta_func) == 56, "lp_meta_func layout");
_Static_assert(offsetof(struct lp_meta_func, entry) == 32, "lp_meta_func layout");

#define LP_FLAGS_KNOWN ((uint32_t)LP_FLAG_CUMULATIVE)
#define LP_FUNC_FLAGS_KNOWN ((uint32_t)LP_FUNC_LOCAL)
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
}

static void func_from_le(struct lp_meta_func *m)
{
        m->name_str = le32toh(m->name_str);
        m->new_str = le32toh(m->new_str);
        m->addr = le64toh(m->addr);
        m->size = le64toh(m->size);
        m->hash = le64toh(m->hash);
        m->flags = le32toh(m->flags);
        m->reserved = le32toh(m->reserved);
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
        uint64_t funcs_end, strtab_end;
        int r;

        /* Magic, version and header_size come first in every version. */
        if (size < offsetof(struct lp_meta_header, flags))
                return CORRUPT(f, err, "truncated header (%zu bytes)", size);
        if (memcmp(sec, LP_META_MAGIC, sizeof(h.magic)) != 0)
                return CORRUPT(f, err, "bad magic");
        memcpy(&h.version, sec + offsetof(struct lp_meta_header, version), sizeof(h.version));
        h.version = le32toh(h.version);
        if (h.version != LP_META_VERSION) {
                errbuf_set(err, "'%s': patch format version %u, this liveup reads version %u",
                           f->path, h.version, LP_META_VERSION);
                return -EPROTONOSUPPORT;
        }
        memcpy(&h.header_size, sec + offsetof(struct lp_meta_header, header_size),
               sizeof(h.header_size));
        h.header_size = le32toh(h.header_size);
        if (h.header_size < sizeof(h) || h.header_size > LP_MAX_HEADER_SIZE)
                return CORRUPT(f, err, "header size %u is not %zu to %u", h.header_size,
                               sizeof(h), LP_MAX_HEADER_SIZE);
        if (h.header_size > size)
                return CORRUPT(f, err, "truncated header (%zu of %u bytes)", size,
                               h.header_size);
        memcpy(&h, sec, sizeof(h));
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
        return check_unique_names(f, err);
}

/* ---- The ELF object around it ------------------------------------------- */

/* A defined function of the object, for looking replacements up. */
struct obj_func {
        const char *name;
        bool valid;      /* inside an allocated executable section */
        bool duplicate;  /* another defined function has this name */
};

static int cmp_obj_func(const void *a, const void *b)
{
        return strcmp(((const struct obj_func *)a)->name, ((const struct obj_func *)b)->name);
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

/* The object's defined functions, sorted by name. */
static int load_obj_funcs(const struct lp_file *f, Elf *elf, struct obj_func **ret,
                          size_t *ret_n, struct errbuf *err)
{
        _cleanup_free_ struct obj_func *v = NULL;
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

                if (!gelf_getsymshndx(data, xndx, (int)i, &sym, &shndx_ext))
                        continue;
                if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF)
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
                v[n++] = (struct obj_func){
                        .name = name,
                        .valid = shndx != 0 && shndx < n_sections &&
                                 section_holds(elf, shndx, &sym),
                };
        }
        qsort(v, n, sizeof(*v), cmp_obj_func);
        for (size_t i = 1; i < n; i++)
                if (strcmp(v[i - 1].name, v[i].name) == 0)
                        v[i - 1].duplicate = v[i].duplicate = true;
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

/* Every replacement must be a defined function of the object. The names
 * in `f` live in f->strtab; those of the object in libelf's data, which
 * is gone after this returns. */
static int check_replacements(const struct lp_file *f, Elf *elf, struct errbuf *err)
{
        _cleanup_free_ struct obj_func *funcs = NULL;
        size_t n = 0;
        int r;

        r = load_obj_funcs(f, elf, &funcs, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < f->n_funcs; i++) {
                const struct lp_func *fn = &f->funcs[i];
                struct obj_func key = { .name = fn->new_name };
                const struct obj_func *o;

                o = n > 0 ? bsearch(&key, funcs, n, sizeof(*funcs), cmp_obj_func) : NULL;
                if (!o)
                        return CORRUPT(f, err,
                                       "function %zu ('%s'): replacement '%s' is not a function "
                                       "defined in the object",
                                       i, fn->name, fn->new_name);
                if (o->duplicate)
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
        r = check_replacements(f, elf, err);
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
        return 0;
}

int lp_meta_serialize(const struct lp_file *meta, void **ret, size_t *ret_size)
{
        struct strtab_builder st = {};
        struct lp_meta_header h = {};
        _cleanup_free_ struct lp_meta_func *funcs = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t funcs_bytes, total;
        uint32_t empty;
        int r;

        r = check_meta(meta);
        if (r < 0)
                return r;
        funcs = calloc(meta->n_funcs, sizeof(*funcs));
        if (!funcs)
                return -ENOMEM;

        /* Offset 0 is the empty string, as in ELF string tables. */
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
                m->name_str = htole32(m->name_str);
                m->new_str = htole32(m->new_str);
                m->addr = htole64(fn->addr);
                m->size = htole64(fn->size);
                m->hash = htole64(fn->hash);
                memcpy(m->entry, fn->entry, sizeof(m->entry));
                m->flags = htole32(fn->flags);
        }
        if (r < 0) {
                free(st.buf);
                return r;
        }

        funcs_bytes = meta->n_funcs * sizeof(*funcs);
        total = sizeof(h) + funcs_bytes + st.len;
        out = malloc(total);
        if (!out) {
                free(st.buf);
                return -ENOMEM;
        }
        memcpy(h.magic, LP_META_MAGIC, sizeof(h.magic));
        h.version = htole32(LP_META_VERSION);
        h.header_size = htole32(sizeof(h));
        h.flags = htole32(meta->flags);
        h.n_funcs = htole32((uint32_t)meta->n_funcs);
        h.funcs_off = htole32(sizeof(h));
        h.func_size = htole32(sizeof(*funcs));
        h.strtab_off = htole32((uint32_t)(sizeof(h) + funcs_bytes));
        h.strtab_size = htole32((uint32_t)st.len);
        h.id_str = htole32(h.id_str);
        h.name_str = htole32(h.name_str);
        h.target_str = htole32(h.target_str);
        h.build_id_len = htole32((uint32_t)meta->build_id_len);
        memcpy(h.build_id, meta->build_id, meta->build_id_len);
        h.created = htole64(meta->created);

        memcpy(out, &h, sizeof(h));
        memcpy(out + sizeof(h), funcs, funcs_bytes);
        memcpy(out + sizeof(h) + funcs_bytes, st.buf, st.len);
        free(st.buf);
        *ret = TAKE_PTR(out);
        *ret_size = total;
        return 0;
}
