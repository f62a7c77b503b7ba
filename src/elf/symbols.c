/* The merged symbol table of an ELF file and the lookups over it.
 *
 * Symbols come from .dynsym, .symtab and, when the file has no .symtab,
 * the .symtab of its separate debug file (file.c finds it). Undefined,
 * absolute, section and file symbols are left out; STT_FILE entries only
 * name the source file of the locals that follow them. Two entries with
 * the same name and address (a function in both .dynsym and .symtab) are
 * one symbol.
 *
 * Two indexes are built once, at open time, and never change:
 * - f->symbols, sorted by (name, address): name lookups are a binary
 *   search to the run of equal names;
 * - f->by_addr, the functions and objects that have a size, sorted by
 *   address with one symbol per address (aliases are resolved to the most
 *   telling name): elf_file_symbol_for() is a binary search. Zero-size
 *   symbols are not in it (we do not guess where they end), and neither
 *   are TLS symbols, whose values are offsets into the TLS block.
 *
 * For ET_REL files st_value is an offset into the symbol's section and is
 * reported as is (unlinked sections all have sh_addr 0). */
#include "elf/elf-internal.h"
#include "arch/arch.h"
#include "base/log.h"

#include <inttypes.h>
#include <limits.h>
#include <string.h>

/* In a .gnu.version entry, the bit that marks a non-default version. */
#define VERSYM_HIDDEN 0x8000

struct sym_builder {
        struct elf_symbol *syms;
        bool *hidden;
        size_t n, cap;
};

static int builder_push(struct sym_builder *b, const struct elf_symbol *s, bool hidden)
{
        if (b->n == b->cap) {
                size_t ncap = b->cap ? b->cap * 2 : 256;
                struct elf_symbol *ns;
                bool *nh;

                ns = reallocarray(b->syms, ncap, sizeof(*ns));
                if (!ns)
                        return -ENOMEM;
                b->syms = ns;
                nh = reallocarray(b->hidden, ncap, sizeof(*nh));
                if (!nh)
                        return -ENOMEM;
                b->hidden = nh;
                b->cap = ncap;
        }
        b->syms[b->n] = *s;
        b->hidden[b->n] = hidden;
        b->n++;
        return 0;
}

static enum elf_sym_type map_type(unsigned t)
{
        switch (t) {
        case STT_FUNC:
        case STT_GNU_IFUNC:
                return ELF_SYM_FUNC;
        case STT_OBJECT:
        case STT_COMMON:
                return ELF_SYM_OBJECT;
        case STT_TLS:
                return ELF_SYM_TLS;
        default:
                return ELF_SYM_OTHER;
        }
}

/* The .gnu.version data that belongs to the dynamic symbol table with
 * section index `dynsym_index`, or NULL. */
static Elf_Data *find_versym(Elf *elf, size_t dynsym_index)
{
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_GNU_versym ||
                    sh.sh_link != dynsym_index)
                        continue;
                d = elf_getdata(scn, NULL);
                if (d && d->d_buf && d->d_type == ELF_T_HALF)
                        return d;
        }
        return NULL;
}

/* Append the defined symbols of one symbol table section. */
static int load_table(struct sym_builder *b, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh,
                      enum elf_sym_source source)
{
        Elf_Data *data, *versym = NULL;
        size_t entsize, count, n_versym = 0, n_sections = 0;
        const char *cur_file = NULL;

        data = elf_getdata(scn, NULL);
        if (!data || !data->d_buf || data->d_type != ELF_T_SYM)
                return 0;
        entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
        if (entsize == 0)
                return 0;
        count = data->d_size / entsize;
        if (elf_getshdrnum(elf, &n_sections) < 0 || sh->sh_link == 0 ||
            sh->sh_link >= n_sections)
                return 0; /* no string table: no names */
        if (sh->sh_type == SHT_DYNSYM) {
                versym = find_versym(elf, elf_ndxscn(scn));
                if (versym)
                        n_versym = versym->d_size / sizeof(GElf_Versym);
        }

        for (size_t i = 1; i < count && i <= INT_MAX; i++) {
                GElf_Sym sym;
                GElf_Versym ver = 0;
                const char *name;
                unsigned type, bind;
                int r;

                if (!gelf_getsym(data, (int)i, &sym))
                        continue;
                type = GELF_ST_TYPE(sym.st_info);
                bind = GELF_ST_BIND(sym.st_info);
                name = elf_strptr(elf, sh->sh_link, sym.st_name);
                if (type == STT_FILE) {
                        cur_file = name && *name ? name : NULL;
                        continue;
                }
                if (type == STT_SECTION || sym.st_shndx == SHN_UNDEF ||
                    sym.st_shndx == SHN_ABS || !name || !*name)
                        continue;
                if (versym && i < n_versym && !gelf_getversym(versym, (int)i, &ver))
                        ver = 0;
                r = builder_push(b,
                                 &(struct elf_symbol){
                                         .name = name,
                                         .addr = sym.st_value,
                                         .size = sym.st_size,
                                         .type = map_type(type),
                                         .local = bind == STB_LOCAL,
                                         .weak = bind == STB_WEAK,
                                         .ifunc = type == STT_GNU_IFUNC,
                                         .source = source,
                                         .file = bind == STB_LOCAL ? cur_file : NULL,
                                 },
                                 (ver & VERSYM_HIDDEN) != 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_tables(struct sym_builder *b, Elf *elf, bool debug)
{
        Elf_Scn *scn = NULL;
        int r;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                enum elf_sym_source source;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                if (sh.sh_type == SHT_DYNSYM && !debug)
                        source = ELF_SRC_DYNSYM;
                else if (sh.sh_type == SHT_SYMTAB)
                        source = debug ? ELF_SRC_DEBUG : ELF_SRC_SYMTAB;
                else
                        continue;
                r = load_table(b, elf, scn, &sh, source);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Which of two entries describing the same symbol is the better one to
 * keep: default version, global, sized, typed, then the earlier source. */
static int cmp_quality(const struct elf_symbol *a, bool ha, const struct elf_symbol *b, bool hb)
{
        if (ha != hb)
                return ha ? 1 : -1;
        if (a->local != b->local)
                return a->local ? 1 : -1;
        if ((a->size == 0) != (b->size == 0))
                return a->size == 0 ? 1 : -1;
        if ((a->type == ELF_SYM_OTHER) != (b->type == ELF_SYM_OTHER))
                return a->type == ELF_SYM_OTHER ? 1 : -1;
        if (a->source != b->source)
                return a->source < b->source ? -1 : 1;
        return 0;
}

/* Sorting needs the hidden flag next to the symbol. */
struct sym_sort {
        struct elf_symbol s;
        bool hidden;
};

static int cmp_by_name(const void *x, const void *y)
{
        const struct sym_sort *a = x, *b = y;
        int c = strcmp(a->s.name, b->s.name);

        if (c != 0)
                return c;
        if (a->s.addr != b->s.addr)
                return a->s.addr < b->s.addr ? -1 : 1;
        return cmp_quality(&a->s, a->hidden, &b->s, b->hidden);
}

/* How good a name a symbol is for its address, for elf_file_symbol_for()
 * among aliases: functions over objects, default versions, globals over
 * locals, then the public name: the fewest leading underscores ("getpid",
 * a weak alias, rather than the strong "__getpid"), strong over weak. */
static int cmp_alias(const struct elf_symbol *a, bool ha, const struct elf_symbol *b, bool hb)
{
        size_t ua = strspn(a->name, "_"), ub = strspn(b->name, "_");

        if (a->type != b->type)
                return a->type == ELF_SYM_FUNC ? -1 : b->type == ELF_SYM_FUNC ? 1 : 0;
        if (ha != hb)
                return ha ? 1 : -1;
        if (a->local != b->local)
                return a->local ? 1 : -1;
        if (ua != ub)
                return ua < ub ? -1 : 1;
        if (a->weak != b->weak)
                return a->weak ? 1 : -1;
        if (a->size != b->size)
                return a->size > b->size ? -1 : 1;
        return strcmp(a->name, b->name);
}

/* Sorts pointers into f->symbols; the file (passed through qsort_r, so
 * that files can be opened in parallel) has the `hidden` flags. */
static int cmp_by_addr(const void *x, const void *y, void *userdata)
{
        const struct elf_file *f = userdata;
        const struct elf_symbol *a = *(const struct elf_symbol *const *)x;
        const struct elf_symbol *b = *(const struct elf_symbol *const *)y;

        if (a->addr != b->addr)
                return a->addr < b->addr ? -1 : 1;
        return cmp_alias(a, f->hidden[a - f->symbols], b, f->hidden[b - f->symbols]);
}

static uint64_t sym_end(const struct elf_symbol *s)
{
        uint64_t end = s->addr + s->size;

        return end < s->addr ? UINT64_MAX : end;
}

/* Sort by name, fold duplicates, and store in f. */
static int finish_by_name(struct elf_file *f, struct sym_builder *b)
{
        _cleanup_free_ struct sym_sort *tmp = NULL;
        size_t n = 0;

        if (b->n == 0)
                return 0;
        tmp = calloc(b->n, sizeof(*tmp));
        if (!tmp)
                return -ENOMEM;
        for (size_t i = 0; i < b->n; i++)
                tmp[i] = (struct sym_sort){ b->syms[i], b->hidden[i] };
        qsort(tmp, b->n, sizeof(*tmp), cmp_by_name);

        for (size_t i = 0; i < b->n; i++) {
                struct elf_symbol *s = &tmp[i].s;

                if (n > 0 && b->syms[n - 1].addr == s->addr &&
                    strcmp(b->syms[n - 1].name, s->name) == 0) {
                        /* The kept entry is the better one (sort order);
                         * take what it lacks from the other. */
                        struct elf_symbol *k = &b->syms[n - 1];

                        if (!k->file && k->local)
                                k->file = s->file;
                        if (k->size == 0)
                                k->size = s->size;
                        if (k->type == ELF_SYM_OTHER)
                                k->type = s->type;
                        continue;
                }
                b->syms[n] = *s;
                b->hidden[n] = tmp[i].hidden;
                n++;
        }
        f->symbols = TAKE_PTR(b->syms);
        f->hidden = TAKE_PTR(b->hidden);
        f->n_symbols = n;
        return 0;
}

static int build_by_addr(struct elf_file *f)
{
        size_t n = 0, k = 0;

        for (size_t i = 0; i < f->n_symbols; i++) {
                const struct elf_symbol *s = &f->symbols[i];

                if ((s->type == ELF_SYM_FUNC || s->type == ELF_SYM_OBJECT) && s->size > 0)
                        n++;
        }
        if (n == 0)
                return 0;
        f->by_addr = calloc(n, sizeof(*f->by_addr));
        f->max_end = calloc(n, sizeof(*f->max_end));
        if (!f->by_addr || !f->max_end)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_symbols; i++) {
                const struct elf_symbol *s = &f->symbols[i];

                if ((s->type == ELF_SYM_FUNC || s->type == ELF_SYM_OBJECT) && s->size > 0)
                        f->by_addr[k++] = s;
        }
        qsort_r(f->by_addr, n, sizeof(*f->by_addr), cmp_by_addr, f);

        /* One symbol per address: the first after sorting is the best. */
        k = 0;
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && f->by_addr[k - 1]->addr == f->by_addr[i]->addr)
                        continue;
                f->by_addr[k] = f->by_addr[i];
                f->max_end[k] = sym_end(f->by_addr[k]);
                if (k > 0)
                        f->max_end[k] = MAX(f->max_end[k], f->max_end[k - 1]);
                k++;
        }
        f->n_by_addr = k;
        return 0;
}

int elf_symbols_ensure(const struct elf_file *cf)
{
        /* The tables are a cache of the file's contents: building them
         * does not change what the (const) file is. */
        struct elf_file *f = (struct elf_file *)cf;
        int r;

        if (f->symbols_state != 0)
                return f->symbols_state < 0 ? f->symbols_state : 0;
        r = 0;
        if (f->type != ET_REL && !elf_has_symtab(f->elf))
                r = elf_file_open_debug(f);
        if (r >= 0)
                r = elf_symbols_load(f);
        if (r < 0)
                log_debug("'%s': cannot load the symbol table: %s", f->path, strerror(-r));
        f->symbols_state = r < 0 ? r : 1;
        return r < 0 ? r : 0;
}

int elf_symbols_load(struct elf_file *f)
{
        struct sym_builder b = {};
        int r;

        r = load_tables(&b, f->elf, false);
        if (r >= 0 && f->debug_elf)
                r = load_tables(&b, f->debug_elf, true);
        if (r >= 0)
                r = finish_by_name(f, &b);
        free(b.syms);
        free(b.hidden);
        if (r < 0)
                return r;
        return build_by_addr(f);
}

void elf_symbols_free(struct elf_file *f)
{
        free(f->symbols);
        free(f->hidden);
        free(f->by_addr);
        free(f->max_end);
        f->symbols = NULL;
        f->hidden = NULL;
        f->by_addr = NULL;
        f->max_end = NULL;
        f->n_symbols = f->n_by_addr = 0;
}

size_t elf_file_n_symbols(const struct elf_file *f)
{
        if (elf_symbols_ensure(f) < 0)
                return 0;
        return f->n_symbols;
}

const struct elf_symbol *elf_file_symbol_at_index(const struct elf_file *f, size_t i)
{
        if (elf_symbols_ensure(f) < 0)
                return NULL;
        return i < f->n_symbols ? &f->symbols[i] : NULL;
}

/* The run [*ret_lo, *ret_hi) of symbols called `name`. */
static void name_range(const struct elf_file *f, const char *name, size_t *ret_lo,
                       size_t *ret_hi)
{
        size_t lo = 0, hi = f->n_symbols;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (strcmp(f->symbols[mid].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        hi = lo;
        while (hi < f->n_symbols && strcmp(f->symbols[hi].name, name) == 0)
                hi++;
        *ret_lo = lo;
        *ret_hi = hi;
}

/* Rank of a global for a lookup by name: lower is better. */
static unsigned global_rank(const struct elf_file *f, size_t i)
{
        const struct elf_symbol *s = &f->symbols[i];

        return (f->hidden[i] ? 4u : 0u) + (s->weak ? 2u : 0u) +
               (s->type == ELF_SYM_OTHER ? 1u : 0u);
}

int elf_file_lookup(const struct elf_file *f, const char *name, const struct elf_symbol **ret,
                    struct errbuf *err)
{
        size_t lo, hi, best = SIZE_MAX, n_addrs = 0;
        char list[768];
        size_t len = 0;
        int r;

        r = elf_symbols_ensure(f);
        if (r < 0) {
                errbuf_set(err, "'%s': %s symbol table", f->path,
                           r == -ENOMEM ? "out of memory loading the" : "corrupt");
                return r;
        }
        name_range(f, name, &lo, &hi);
        if (lo == hi) {
                errbuf_set(err, "symbol '%s' not found in '%s'", name, f->path);
                return -ENOENT;
        }

        for (size_t i = lo; i < hi; i++)
                if (!f->symbols[i].local &&
                    (best == SIZE_MAX || global_rank(f, i) < global_rank(f, best)))
                        best = i;
        if (best != SIZE_MAX) {
                *ret = &f->symbols[best];
                return 0;
        }

        /* Locals only; within the run they are sorted by address. */
        list[0] = 0;
        for (size_t i = lo; i < hi; i++) {
                const struct elf_symbol *s = &f->symbols[i];

                if (i > lo && s->addr == f->symbols[i - 1].addr)
                        continue;
                n_addrs++;
                if (best == SIZE_MAX)
                        best = i;
                if (len < sizeof(list)) {
                        int k = snprintf(list + len, sizeof(list) - len, "%s0x%" PRIx64 "%s%s%s",
                                         n_addrs > 1 ? ", " : "", s->addr,
                                         s->file ? " (" : "", s->file ? s->file : "",
                                         s->file ? ")" : "");
                        len = k < 0 ? sizeof(list) : len + (size_t)k;
                }
        }
        if (n_addrs > 1) {
                errbuf_set(err, "symbol '%s' is ambiguous: %s%s", name, list,
                           len >= sizeof(list) ? "..." : "");
                return -ENOTUNIQ;
        }
        *ret = &f->symbols[best];
        return 0;
}

size_t elf_file_lookup_all(const struct elf_file *f, const char *name,
                           const struct elf_symbol **ret, size_t max)
{
        size_t lo, hi;

        if (elf_symbols_ensure(f) < 0)
                return 0;
        name_range(f, name, &lo, &hi);
        for (size_t i = lo; i < hi && i - lo < max; i++)
                ret[i - lo] = &f->symbols[i];
        return hi - lo;
}

int elf_file_symbol_for(const struct elf_file *f, uint64_t addr, const struct elf_symbol **ret,
                        uint64_t *ret_offset)
{
        size_t lo, hi;
        int r;

        r = elf_symbols_ensure(f);
        if (r < 0)
                return r;
        lo = 0;
        hi = f->n_by_addr;
        /* The last symbol starting at or below addr... */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (f->by_addr[mid]->addr <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        /* ...or, when it ends before addr, an earlier one that encloses
         * it (a symbol nested in another); max_end bounds the walk. */
        for (size_t i = lo; i > 0; i--) {
                const struct elf_symbol *s = f->by_addr[i - 1];

                if (f->max_end[i - 1] <= addr)
                        break;
                if (addr < sym_end(s)) {
                        *ret = s;
                        if (ret_offset)
                                *ret_offset = addr - s->addr;
                        return 0;
                }
        }
        return -ENOENT;
}

/* ---- Exported symbols through .gnu.hash ----------------------------------- */

/* The GNU hash of a symbol name (the dynamic linker's: h = h * 33 + c). */
static uint32_t gnu_hash(const char *name)
{
        uint32_t h = 5381;

        for (const unsigned char *c = (const unsigned char *)name; *c; c++)
                h = h * 33 + *c;
        return h;
}

static Elf_Scn *find_section(Elf *elf, uint32_t type, GElf_Shdr *ret)
{
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn)))
                if (gelf_getshdr(scn, ret) && ret->sh_type == type)
                        return scn;
        return NULL;
}

/* Look `name` up in the .gnu.hash of f's .dynsym, as the dynamic linker
 * does: 1 found, 0 not there, -ENOTSUP when the file has no usable hash
 * table (the caller falls back to the full tables). Every index read from
 * the file is checked. */
static int gnu_hash_lookup(const struct elf_file *f, const char *name, struct elf_symbol *ret)
{
        Elf *elf = f->elf;
        GElf_Shdr hsh, dsh;
        Elf_Scn *hscn, *dscn;
        Elf_Data *hd, *dd, *versym;
        const uint32_t *words, *buckets, *chains;
        uint32_t nbuckets, symoffset, bloom_size, h;
        size_t n_words, n_syms, n_versym = 0, chain_base;
        bool have_hidden = false;
        struct elf_symbol hidden = {};

        hscn = find_section(elf, SHT_GNU_HASH, &hsh);
        if (!hscn)
                return -ENOTSUP;
        dscn = elf_getscn(elf, hsh.sh_link);
        if (!dscn || !gelf_getshdr(dscn, &dsh) || dsh.sh_type != SHT_DYNSYM)
                return -ENOTSUP;
        hd = elf_rawdata(hscn, NULL);
        dd = elf_getdata(dscn, NULL);
        if (!hd || !hd->d_buf || !dd || !dd->d_buf || dd->d_type != ELF_T_SYM ||
            gelf_getclass(elf) != ELFCLASS64 || (uintptr_t)hd->d_buf % 4)
                return -ENOTSUP;
        words = hd->d_buf;
        n_words = hd->d_size / 4;
        if (n_words < 4)
                return -ENOTSUP;
        nbuckets = words[0];
        symoffset = words[1];
        bloom_size = words[2];
        /* The header, the 64-bit bloom words, the buckets. */
        if (nbuckets == 0 || bloom_size > n_words || 4 + 2 * (size_t)bloom_size > n_words ||
            nbuckets > n_words - 4 - 2 * (size_t)bloom_size)
                return -ENOTSUP;
        buckets = words + 4 + 2 * (size_t)bloom_size;
        chains = buckets + nbuckets;
        chain_base = 4 + 2 * (size_t)bloom_size + nbuckets;
        n_syms = dd->d_size / sizeof(Elf64_Sym);
        versym = find_versym(elf, elf_ndxscn(dscn));
        if (versym)
                n_versym = versym->d_size / sizeof(GElf_Versym);

        h = gnu_hash(name);
        for (size_t i = buckets[h % nbuckets]; i >= symoffset && i < n_syms; i++) {
                size_t ci = i - symoffset;
                uint32_t h2;
                GElf_Sym sym;
                const char *sname;
                unsigned type, bind;
                bool is_hidden;

                if (ci >= n_words - chain_base)
                        break;
                h2 = chains[ci];
                if ((h | 1) == (h2 | 1) && gelf_getsym(dd, (int)i, &sym) &&
                    (sname = elf_strptr(elf, dsh.sh_link, sym.st_name)) &&
                    strcmp(sname, name) == 0) {
                        type = GELF_ST_TYPE(sym.st_info);
                        bind = GELF_ST_BIND(sym.st_info);
                        is_hidden = versym && i < n_versym &&
                                    (((const GElf_Versym *)versym->d_buf)[i] & VERSYM_HIDDEN);
                        if (sym.st_shndx != SHN_UNDEF && bind != STB_LOCAL &&
                            type != STT_TLS && type != STT_SECTION && type != STT_FILE) {
                                struct elf_symbol s = {
                                        .name = sname,
                                        .addr = sym.st_value,
                                        .size = sym.st_size,
                                        .type = map_type(type),
                                        .weak = bind == STB_WEAK,
                                        .ifunc = type == STT_GNU_IFUNC,
                                        .source = ELF_SRC_DYNSYM,
                                };
                                if (!is_hidden) {
                                        *ret = s;
                                        return 1;
                                }
                                if (!have_hidden) {
                                        hidden = s;
                                        have_hidden = true;
                                }
                        }
                }
                if (h2 & 1)
                        break;
        }
        /* Only an older version ("name@VERSION"): what the full tables
         * would give as last choice. */
        if (have_hidden) {
                *ret = hidden;
                return 1;
        }
        return 0;
}

int elf_file_lookup_exported(const struct elf_file *f, const char *name, struct elf_symbol *ret)
{
        const struct elf_symbol *cands[8];
        size_t k, best = SIZE_MAX;
        int r;

        if (f->symbols_state == 0) {
                r = gnu_hash_lookup(f, name, ret);
                if (r >= 0)
                        return r > 0 ? 0 : -ENOENT;
        }
        /* Tables already built, or no hash table: the full tables. */
        r = elf_symbols_ensure(f);
        if (r < 0)
                return r;
        k = MIN(elf_file_lookup_all(f, name, cands, ELEMENTSOF(cands)), ELEMENTSOF(cands));
        for (size_t j = 0; j < k; j++) {
                if (cands[j]->local || cands[j]->type == ELF_SYM_TLS ||
                    cands[j]->source != ELF_SRC_DYNSYM)
                        continue;
                /* The default version before an older one. */
                if (best == SIZE_MAX ||
                    (f->hidden[cands[best] - f->symbols] && !f->hidden[cands[j] - f->symbols]))
                        best = j;
        }
        if (best == SIZE_MAX)
                return -ENOENT;
        *ret = *cands[best];
        return 0;
}

/* ---- IFUNC slots ----------------------------------------------------------- */

int elf_file_irelative_slot(const struct elf_file *f, uint64_t resolver, uint64_t *ret_slot)
{
        uint32_t irelative = arch_reloc_irelative();
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(f->elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;

                /* The dynamic relocations: allocated RELA sections. */
                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
                    !(sh.sh_flags & SHF_ALLOC) || sh.sh_entsize != sizeof(Elf64_Rela))
                        continue;
                d = elf_getdata(scn, NULL);
                if (!d || !d->d_buf)
                        continue;
                for (size_t k = 0; k < d->d_size / sizeof(Elf64_Rela) && k <= INT_MAX; k++) {
                        GElf_Rela rel;

                        if (!gelf_getrela(d, (int)k, &rel))
                                break;
                        if (GELF_R_TYPE(rel.r_info) == irelative &&
                            (uint64_t)rel.r_addend == resolver) {
                                *ret_slot = rel.r_offset;
                                return 0;
                        }
                }
        }
        return -ENOENT;
}
