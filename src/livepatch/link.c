/* The patch linker; see link.h for the image layout.
 *
 * Invariants:
 * - Every offset, size and index read from the object is checked before
 *   use (the object comes from a file the user gave us).
 * - A branch whose target is within reach of a rel32 goes there directly
 *   (no cost per call); only out-of-reach ones (e.g. into a library mapped
 *   far away) go through a stub. Each far symbol gets one stub and one
 *   GOT slot at most.
 * - The image is complete when lp_link() returns: the caller only copies
 *   it.
 * - A section lies wholly in the code part (executable ones) or wholly in
 *   the data part (the rest), so its address in the target is that of its
 *   part plus its offset in the part (section_addr()). */
#include "livepatch/link.h"
#include "arch/arch.h"
#include "elf/elf.h"

#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <string.h>

#define PAGE 4096u
#define MAX_ALIGN PAGE

struct section_place {
        bool placed;
        bool exec;
        uint64_t off; /* in the image */
        uint64_t size;
};

struct far_slot {
        uint64_t target;
        uint64_t addr;
};

struct linker {
        Elf *elf;
        void *copy;
        size_t n_sections;
        struct section_place *places;
        Elf_Scn *symtab;
        GElf_Shdr symtab_shdr;
        Elf_Data *symdata;
        size_t n_syms;
        uint64_t *sym_cache;
        bool *sym_cached;

        size_t text_end;   /* end of executable sections */
        size_t stub_off;   /* start of the stub area */
        size_t max_stubs;
        size_t text_size;  /* page-aligned */
        size_t rw_start;   /* where writable sections begin */
        bool has_writable; /* some section is writable (.data, .bss) */
        size_t data_end;
        size_t got_off;
        size_t max_got;
        size_t size;       /* page-aligned total */

        struct far_slot *stubs, *got;
        size_t n_stubs, n_got;
};

static void linker_done(struct linker *l)
{
        if (l->elf)
                elf_end(l->elf);
        free(l->copy);
        free(l->places);
        free(l->sym_cache);
        free(l->sym_cached);
        free(l->stubs);
        free(l->got);
}

static int open_object(struct linker *l, const void *image, size_t size, struct errbuf *err)
{
        GElf_Ehdr eh;

        if (elf_library_init() < 0)
                return -ENOTSUP;
        l->copy = malloc(size ? size : 1);
        if (!l->copy)
                return -ENOMEM;
        memcpy(l->copy, image, size);
        l->elf = elf_memory(l->copy, size);
        if (!l->elf || elf_kind(l->elf) != ELF_K_ELF || !gelf_getehdr(l->elf, &eh)) {
                errbuf_set(err, "not an ELF object");
                return -ENOEXEC;
        }
        if (eh.e_type != ET_REL || eh.e_machine != arch_elf_machine()) {
                errbuf_set(err, "not a relocatable object of this ISA");
                return -ENOEXEC;
        }
        if (elf_getshdrnum(l->elf, &l->n_sections) < 0 || l->n_sections > 65535) {
                errbuf_set(err, "corrupt section table");
                return -EBADMSG;
        }
        l->places = calloc(l->n_sections ? l->n_sections : 1, sizeof(*l->places));
        if (!l->places)
                return -ENOMEM;
        return 0;
}

static int place_section(struct linker *l, size_t *off, size_t idx, const GElf_Shdr *sh,
                         struct errbuf *err)
{
        uint64_t align = sh->sh_addralign ? sh->sh_addralign : 1;

        if (align > MAX_ALIGN || (align & (align - 1))) {
                errbuf_set(err, "section %zu has an unsupported alignment %" PRIu64, idx, align);
                return -EBADMSG;
        }
        if (sh->sh_size > (1u << 30)) {
                errbuf_set(err, "section %zu is too large", idx);
                return -EBADMSG;
        }
        *off = ALIGN_UP(*off, (size_t)align);
        l->places[idx] = (struct section_place){
                .placed = true,
                .exec = sh->sh_flags & SHF_EXECINSTR,
                .off = *off,
                .size = sh->sh_size,
        };
        *off += sh->sh_size;
        return 0;
}

/* Place sections and count what may need stubs and GOT slots. */
static int layout(struct linker *l, struct errbuf *err)
{
        size_t off = 0, n_branch = 0, n_gotrel = 0;
        int r;

        /* Pass 0: code; pass 1: read-only data; pass 2: writable data. */
        for (int pass = 0; pass < 3; pass++) {
                for (size_t i = 1; i < l->n_sections; i++) {
                        Elf_Scn *scn = elf_getscn(l->elf, i);
                        GElf_Shdr sh;

                        if (!scn || !gelf_getshdr(scn, &sh)) {
                                errbuf_set(err, "corrupt section %zu", i);
                                return -EBADMSG;
                        }
                        if (pass == 0 && sh.sh_type == SHT_SYMTAB) {
                                if (l->symtab) {
                                        errbuf_set(err, "more than one symbol table");
                                        return -EBADMSG;
                                }
                                l->symtab = scn;
                                l->symtab_shdr = sh;
                        }
                        if (pass == 0 && sh.sh_type == SHT_REL) {
                                errbuf_set(err, "REL relocations are not used on this ISA");
                                return -EBADMSG;
                        }
                        if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_GROUP)
                                continue;
                        if (sh.sh_flags & SHF_TLS) {
                                errbuf_set(err, "the patch defines thread-local variables, "
                                                "which are not supported");
                                return -EOPNOTSUPP;
                        }
                        bool exec = sh.sh_flags & SHF_EXECINSTR;
                        bool write = sh.sh_flags & SHF_WRITE;
                        if ((pass == 0) != exec || (pass == 1 && write) || (pass == 2 && !write))
                                continue;
                        r = place_section(l, &off, i, &sh, err);
                        if (r < 0)
                                return r;
                }
                if (pass == 0) {
                        l->text_end = off;
                        /* Count branch and GOT relocations (upper bounds). */
                        for (size_t i = 1; i < l->n_sections; i++) {
                                Elf_Scn *scn = elf_getscn(l->elf, i);
                                GElf_Shdr sh;
                                Elf_Data *d;

                                if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA)
                                        continue;
                                if (!sh.sh_entsize || sh.sh_entsize != sizeof(GElf_Rela) ||
                                    !(d = elf_getdata(scn, NULL))) {
                                        errbuf_set(err, "corrupt relocation section %zu", i);
                                        return -EBADMSG;
                                }
                                size_t n = d->d_size / sizeof(GElf_Rela);
                                for (size_t k = 0; k < n; k++) {
                                        GElf_Rela rel;
                                        if (!gelf_getrela(d, (int)k, &rel))
                                                return -EBADMSG;
                                        switch (arch_reloc_classify(
                                                (uint32_t)GELF_R_TYPE(rel.r_info))) {
                                        case ARCH_RELOC_BRANCH:
                                                n_branch++;
                                                break;
                                        case ARCH_RELOC_GOT:
                                                n_gotrel++;
                                                break;
                                        default:
                                                break;
                                        }
                                }
                        }
                        off = ALIGN_UP(off, 16);
                        l->stub_off = off;
                        l->max_stubs = n_branch;
                        off += n_branch * arch_stub_size();
                        l->text_size = ALIGN_UP(off, PAGE);
                        off = l->text_size;
                }
                if (pass == 1)
                        l->rw_start = off;
        }
        l->has_writable = off > l->rw_start;
        off = ALIGN_UP(off, 8);
        l->data_end = off;
        l->got_off = off;
        l->max_got = n_gotrel;
        off += n_gotrel * 8;
        l->size = ALIGN_UP(MAX(off, (size_t)PAGE), PAGE);
        if (l->text_size == 0)
                l->text_size = 0;

        if (!l->symtab) {
                errbuf_set(err, "the object has no symbol table");
                return -EBADMSG;
        }
        if (l->symtab_shdr.sh_entsize != sizeof(Elf64_Sym) ||
            !(l->symdata = elf_getdata(l->symtab, NULL))) {
                errbuf_set(err, "corrupt symbol table");
                return -EBADMSG;
        }
        l->n_syms = l->symdata->d_size / sizeof(Elf64_Sym);
        l->sym_cache = calloc(l->n_syms ? l->n_syms : 1, sizeof(*l->sym_cache));
        l->sym_cached = calloc(l->n_syms ? l->n_syms : 1, sizeof(*l->sym_cached));
        l->stubs = calloc(l->max_stubs ? l->max_stubs : 1, sizeof(*l->stubs));
        l->got = calloc(l->max_got ? l->max_got : 1, sizeof(*l->got));
        if (!l->sym_cache || !l->sym_cached || !l->stubs || !l->got)
                return -ENOMEM;
        return 0;
}

/* Where placed section `idx` starts in the target. */
static uint64_t section_addr(const struct linker *l, const struct lp_image *img, size_t idx)
{
        const struct section_place *sp = &l->places[idx];

        if (sp->exec)
                return img->base + sp->off;
        return img->data_base + (sp->off - l->text_size);
}

uint64_t lp_image_addr(const struct lp_image *img, size_t off)
{
        if (off < img->text_size)
                return img->base + off;
        return img->data_base + (off - img->text_size);
}

static const char *sym_name(struct linker *l, const GElf_Sym *sym)
{
        const char *n;

        if (GELF_ST_TYPE(sym->st_info) == STT_SECTION) {
                Elf_Scn *scn = elf_getscn(l->elf, sym->st_shndx);
                GElf_Shdr sh;
                size_t shstrndx;
                if (scn && gelf_getshdr(scn, &sh) && elf_getshdrstrndx(l->elf, &shstrndx) == 0 &&
                    (n = elf_strptr(l->elf, shstrndx, sh.sh_name)))
                        return n;
                return "(section)";
        }
        n = elf_strptr(l->elf, l->symtab_shdr.sh_link, sym->st_name);
        return n ? n : "(bad name)";
}

/* Address of symbol `idx` in the target. */
static int sym_value(struct linker *l, size_t idx, const struct lp_image *img,
                     lp_resolve_fn resolve, void *userdata, uint64_t *ret, const char **ret_name,
                     struct errbuf *err)
{
        GElf_Sym sym;
        const char *name;
        int r;

        if (idx >= l->n_syms || !gelf_getsym(l->symdata, (int)idx, &sym)) {
                errbuf_set(err, "relocation refers to symbol %zu, which does not exist", idx);
                return -EBADMSG;
        }
        name = sym_name(l, &sym);
        *ret_name = name;
        if (l->sym_cached[idx]) {
                *ret = l->sym_cache[idx];
                return 0;
        }
        if (sym.st_shndx == SHN_UNDEF) {
                uint64_t addr = 0;
                if (!*name) {
                        errbuf_set(err, "relocation against an unnamed undefined symbol");
                        return -EBADMSG;
                }
                r = resolve(userdata, name, &addr, err);
                if (r < 0) {
                        if (r == -ENOENT && GELF_ST_BIND(sym.st_info) == STB_WEAK)
                                addr = 0; /* an absent weak symbol is 0 */
                        else
                                return r;
                }
                *ret = addr;
        } else if (sym.st_shndx == SHN_ABS) {
                *ret = sym.st_value;
        } else if (sym.st_shndx == SHN_COMMON) {
                errbuf_set(err, "symbol '%s' is a common symbol; build with -fno-common", name);
                return -EBADMSG;
        } else if (sym.st_shndx >= SHN_LORESERVE || sym.st_shndx >= l->n_sections ||
                   !l->places[sym.st_shndx].placed) {
                errbuf_set(err, "symbol '%s' lies in a section that is not loaded", name);
                return -EBADMSG;
        } else {
                if (sym.st_value > l->places[sym.st_shndx].size) {
                        errbuf_set(err, "symbol '%s' lies outside its section", name);
                        return -EBADMSG;
                }
                *ret = section_addr(l, img, sym.st_shndx) + sym.st_value;
        }
        l->sym_cache[idx] = *ret;
        l->sym_cached[idx] = true;
        return 0;
}

static uint64_t far_slot(struct far_slot *slots, size_t *n, size_t max, uint64_t target,
                         uint64_t first_addr, size_t slot_size, bool *ret_new)
{
        for (size_t i = 0; i < *n; i++)
                if (slots[i].target == target) {
                        *ret_new = false;
                        return slots[i].addr;
                }
        if (*n >= max)
                return 0;
        slots[*n] = (struct far_slot){ target, first_addr + *n * slot_size };
        *ret_new = true;
        return slots[(*n)++].addr;
}

static bool fits_rel32(uint64_t from, uint64_t to)
{
        int64_t d = (int64_t)(to - from);
        return d >= INT32_MIN && d <= INT32_MAX;
}

static int relocate_section(struct linker *l, struct lp_image *img, size_t rela_idx,
                            const GElf_Shdr *rsh, lp_resolve_fn resolve, void *userdata,
                            struct errbuf *err)
{
        Elf_Scn *scn = elf_getscn(l->elf, rela_idx);
        Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
        size_t target = rsh->sh_info;
        int r;

        if (rsh->sh_link != elf_ndxscn(l->symtab)) {
                errbuf_set(err, "relocation section %zu uses another symbol table", rela_idx);
                return -EBADMSG;
        }
        if (target == 0 || target >= l->n_sections) {
                errbuf_set(err, "relocation section %zu applies to no section", rela_idx);
                return -EBADMSG;
        }
        if (!l->places[target].placed)
                return 0; /* debug info and the like: not loaded */
        if (!d)
                return -EBADMSG;

        const struct section_place *sp = &l->places[target];
        size_t n = d->d_size / sizeof(GElf_Rela);
        for (size_t k = 0; k < n; k++) {
                GElf_Rela rel;
                uint32_t type;
                uint64_t s, v, place;
                const char *name = "?";
                size_t width;

                if (!gelf_getrela(d, (int)k, &rel))
                        return -EBADMSG;
                type = (uint32_t)GELF_R_TYPE(rel.r_info);
                width = arch_reloc_width(type);
                if (rel.r_offset > sp->size || sp->size - rel.r_offset < width) {
                        errbuf_set(err, "relocation %zu of section %zu is outside it", k, target);
                        return -EBADMSG;
                }
                enum arch_reloc_kind kind = arch_reloc_classify(type);
                if (kind == ARCH_RELOC_NONE)
                        continue;
                r = sym_value(l, GELF_R_SYM(rel.r_info), img, resolve, userdata, &s, &name, err);
                if (r < 0)
                        return r;
                if (kind == ARCH_RELOC_TLS) {
                        errbuf_set(err, "the patch uses thread-local variable '%s' (%s), which "
                                   "is not supported", name, arch_reloc_name(type));
                        return -EOPNOTSUPP;
                }
                if (kind == ARCH_RELOC_UNSUPPORTED) {
                        errbuf_set(err, "relocation %s against '%s' is not supported",
                                   arch_reloc_name(type), name);
                        return -EOPNOTSUPP;
                }
                place = section_addr(l, img, target) + rel.r_offset;
                v = s + (uint64_t)rel.r_addend;
                if (kind == ARCH_RELOC_BRANCH && !fits_rel32(place, v)) {
                        bool fresh;
                        uint64_t first = lp_image_addr(img, l->stub_off);
                        uint64_t stub = far_slot(l->stubs, &l->n_stubs, l->max_stubs, s, first,
                                                 arch_stub_size(), &fresh);
                        if (!stub)
                                return -EBADMSG;
                        if (fresh) {
                                int len = arch_encode_jump_abs(
                                        s, img->buf + l->stub_off + (stub - first),
                                        arch_stub_size());
                                if (len < 0)
                                        return len;
                        }
                        v = stub + (uint64_t)rel.r_addend;
                } else if (kind == ARCH_RELOC_GOT) {
                        bool fresh;
                        uint64_t first = lp_image_addr(img, l->got_off);
                        uint64_t slot = far_slot(l->got, &l->n_got, l->max_got, s, first, 8,
                                                 &fresh);
                        if (!slot)
                                return -EBADMSG;
                        if (fresh)
                                memcpy(img->buf + l->got_off + (slot - first), &s, 8);
                        v = slot + (uint64_t)rel.r_addend;
                }
                r = arch_reloc_apply(type, img->buf + sp->off + rel.r_offset, place, v);
                if (r == -ERANGE) {
                        errbuf_set(err, "relocation %s to '%s' at 0x%" PRIx64 " is out of "
                                   "reach of 0x%" PRIx64, arch_reloc_name(type), name, s,
                                   place);
                        return r;
                }
                if (r < 0) {
                        errbuf_set(err, "cannot apply relocation %s to '%s'",
                                   arch_reloc_name(type), name);
                        return r;
                }
        }
        return 0;
}

static int copy_sections(struct linker *l, struct lp_image *img, struct errbuf *err)
{
        for (size_t i = 1; i < l->n_sections; i++) {
                Elf_Scn *scn;
                GElf_Shdr sh;
                Elf_Data *d;

                if (!l->places[i].placed)
                        continue;
                scn = elf_getscn(l->elf, i);
                if (!scn || !gelf_getshdr(scn, &sh))
                        return -EBADMSG;
                if (sh.sh_type == SHT_NOBITS)
                        continue; /* zero already */
                d = elf_getdata(scn, NULL);
                if (!d || !d->d_buf)
                        continue;
                if (d->d_size > l->places[i].size) {
                        errbuf_set(err, "section %zu data is larger than the section", i);
                        return -EBADMSG;
                }
                memcpy(img->buf + l->places[i].off, d->d_buf, d->d_size);
        }
        return 0;
}

/* Where the object's .eh_frame landed in the image (see link.h). Found by
 * name, as unwinders find it (its type is SHT_PROGBITS or, from newer
 * assemblers, SHT_X86_64_UNWIND). */
static void find_eh_frame(struct linker *l, struct lp_image *img)
{
        size_t shstrndx, found = 0, n = 0;

        if (elf_getshdrstrndx(l->elf, &shstrndx) < 0)
                return;
        for (size_t i = 1; i < l->n_sections; i++) {
                Elf_Scn *scn = elf_getscn(l->elf, i);
                GElf_Shdr sh;
                const char *name;

                if (!l->places[i].placed || !scn || !gelf_getshdr(scn, &sh) ||
                    sh.sh_type == SHT_NOBITS || sh.sh_size == 0)
                        continue;
                name = elf_strptr(l->elf, shstrndx, sh.sh_name);
                if (name && strcmp(name, ".eh_frame") == 0) {
                        found = i;
                        n++;
                }
        }
        if (n != 1)
                return;
        img->eh_frame_off = l->places[found].off;
        img->eh_frame_size = l->places[found].size;
}

static int collect_symbols(struct linker *l, struct lp_image *img)
{
        img->syms = calloc(l->n_syms ? l->n_syms : 1, sizeof(*img->syms));
        if (!img->syms)
                return -ENOMEM;
        for (size_t i = 1; i < l->n_syms; i++) {
                GElf_Sym sym;
                int type;

                if (!gelf_getsym(l->symdata, (int)i, &sym))
                        return -EBADMSG;
                type = GELF_ST_TYPE(sym.st_info);
                if ((type != STT_FUNC && type != STT_OBJECT) || sym.st_shndx == SHN_UNDEF ||
                    sym.st_shndx >= l->n_sections || !l->places[sym.st_shndx].placed)
                        continue;
                const char *name = elf_strptr(l->elf, l->symtab_shdr.sh_link, sym.st_name);
                if (!name || !*name)
                        continue;
                struct lp_image_sym *s = &img->syms[img->n_syms];
                s->name = strdup(name);
                if (!s->name)
                        return -ENOMEM;
                s->addr = section_addr(l, img, sym.st_shndx) + sym.st_value;
                s->size = sym.st_size;
                s->func = type == STT_FUNC;
                s->local = GELF_ST_BIND(sym.st_info) == STB_LOCAL;
                img->n_syms++;
        }
        return 0;
}

int lp_link_size(const void *elf_image, size_t elf_size, size_t *ret_size, size_t *ret_text_size,
                 bool *ret_writable, struct errbuf *err)
{
        struct linker l = {};
        int r;

        r = open_object(&l, elf_image, elf_size, err);
        if (r >= 0)
                r = layout(&l, err);
        if (r >= 0) {
                *ret_size = l.size;
                if (ret_text_size)
                        *ret_text_size = l.text_size;
                if (ret_writable)
                        *ret_writable = l.has_writable;
        }
        linker_done(&l);
        return r < 0 ? r : 0;
}

int lp_link(const void *elf_image, size_t elf_size, uint64_t base, lp_resolve_fn resolve,
            void *userdata, struct lp_image **ret, struct errbuf *err)
{
        return lp_link_split(elf_image, elf_size, base, 0, resolve, userdata, ret, err);
}

int lp_link_split(const void *elf_image, size_t elf_size, uint64_t base, uint64_t data_base,
                  lp_resolve_fn resolve, void *userdata, struct lp_image **ret,
                  struct errbuf *err)
{
        _cleanup_(lp_image_freep) struct lp_image *img = NULL;
        struct linker l = {};
        int r;

        if (base % PAGE || data_base % PAGE)
                return -EINVAL;
        r = open_object(&l, elf_image, elf_size, err);
        if (r < 0)
                goto out;
        r = layout(&l, err);
        if (r < 0)
                goto out;
        img = calloc(1, sizeof(*img));
        if (!img) {
                r = -ENOMEM;
                goto out;
        }
        img->size = l.size;
        img->text_size = l.text_size;
        img->base = base;
        img->data_base = data_base ? data_base : base + l.text_size;
        img->buf = calloc(1, l.size);
        if (!img->buf) {
                r = -ENOMEM;
                goto out;
        }
        r = copy_sections(&l, img, err);
        if (r < 0)
                goto out;
        for (size_t i = 1; i < l.n_sections; i++) {
                Elf_Scn *scn = elf_getscn(l.elf, i);
                GElf_Shdr sh;

                if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA)
                        continue;
                r = relocate_section(&l, img, i, &sh, resolve, userdata, err);
                if (r < 0)
                        goto out;
        }
        r = collect_symbols(&l, img);
        if (r < 0)
                goto out;
        find_eh_frame(&l, img);
        img->n_stubs = l.n_stubs;
        img->n_got = l.n_got;
        *ret = TAKE_PTR(img);
        r = 0;
out:
        if (r == -EBADMSG && err && !err->msg[0])
                errbuf_set(err, "corrupt relocatable object");
        linker_done(&l);
        return r;
}

int lp_image_lookup(const struct lp_image *img, const char *name, uint64_t *ret_addr,
                    uint64_t *ret_size)
{
        const struct lp_image_sym *found = NULL;

        for (size_t i = 0; i < img->n_syms; i++) {
                if (strcmp(img->syms[i].name, name) != 0)
                        continue;
                /* A global wins over a local of the same name. */
                if (!found || (found->local && !img->syms[i].local))
                        found = &img->syms[i];
        }
        if (!found)
                return -ENOENT;
        if (ret_addr)
                *ret_addr = found->addr;
        if (ret_size)
                *ret_size = found->size;
        return 0;
}

void lp_image_free(struct lp_image *img)
{
        if (!img)
                return;
        for (size_t i = 0; i < img->n_syms; i++)
                free(img->syms[i].name);
        free(img->syms);
        free(img->buf);
        free(img);
}
