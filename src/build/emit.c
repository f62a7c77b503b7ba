/* Writing the patch object of `liveup build --diff` (lb_emit, objdiff.h):
 * the included sections of several relocatable objects, after
 * lb_objdiff(), merged into one ET_REL that the .lpo loader takes.
 *
 * Output layout: the included sections in input order; one .eh_frame
 * with the CIEs and FDEs of the included functions; one SHT_RELA per
 * section that has relocations; .symtab, .strtab, .shstrtab.
 *
 * Symbols: section symbols; each included function and variable under a
 * name unique in the patch (its own when free, else NAME.lp.N: two
 * objects may have statics of one name); undefined symbols for EXTERN
 * references (by name: a global of the patch of that name wins, as a
 * linker would do) and for BIND references (one per target address,
 * named NAME.lpbind.N; the caller maps them to the target's addresses).
 * A reference to a local symbol of an included section becomes its
 * section's symbol plus the symbol's offset.
 *
 * Everything is built in memory first; libelf writes it in one
 * elf_update() at the end. A failure leaves no file (the caller writes
 * into a temporary folder). */
#include "build/objdiff.h"

#include "arch/arch.h"
#include "elf/elf.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

struct strtab {
        char *buf;
        size_t len, cap;
};

static int64_t strtab_add(struct strtab *t, const char *s)
{
        size_t n = strlen(s) + 1;

        if (t->len + n > t->cap) {
                size_t cap = MAX(t->cap * 2, t->len + n + 256);
                char *nb = realloc(t->buf, cap);
                if (!nb)
                        return -ENOMEM;
                t->buf = nb;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, s, n);
        t->len += n;
        return (int64_t)(t->len - n);
}

struct out_sec {
        struct lb_obj *obj;   /* NULL for the merged .eh_frame */
        size_t in;            /* input section index */
        const uint8_t *data;
        uint8_t *owned;       /* data we built (.eh_frame) */
        GElf_Shdr sh;
        const char *name;
        Elf64_Rela *relas;
        size_t n_relas;
        uint32_t secsym;      /* output index of its section symbol */
};

struct emit {
        struct lb_obj **objs;
        size_t n_objs;
        struct out_sec *secs; /* secs[0] unused, like ELF */
        size_t n_secs;
        size_t **sec_map;     /* per object: input section -> output, 0 none */
        Elf64_Sym *syms;
        char **sym_names;     /* parallel to syms, owned */
        size_t n_syms, cap_syms;
        size_t first_global;
        struct errbuf *err;
};

static void emit_done(struct emit *e)
{
        for (size_t i = 0; i < e->n_secs; i++) {
                free(e->secs[i].owned);
                free(e->secs[i].relas);
        }
        free(e->secs);
        for (size_t i = 0; e->sec_map && i < e->n_objs; i++)
                free(e->sec_map[i]);
        free(e->sec_map);
        for (size_t i = 0; i < e->n_syms; i++)
                free(e->sym_names[i]);
        free(e->sym_names);
        free(e->syms);
}

static int add_sym(struct emit *e, const char *name, unsigned char info, uint16_t shndx,
                   uint64_t value, uint64_t size, size_t *ret)
{
        if (e->n_syms == e->cap_syms) {
                size_t cap = e->cap_syms ? 2 * e->cap_syms : 64;
                Elf64_Sym *ns = reallocarray(e->syms, cap, sizeof(*ns));
                if (!ns)
                        return -ENOMEM;
                e->syms = ns;
                char **nn = reallocarray(e->sym_names, cap, sizeof(*nn));
                if (!nn)
                        return -ENOMEM;
                e->sym_names = nn;
                e->cap_syms = cap;
        }
        e->sym_names[e->n_syms] = strdup(name);
        if (!e->sym_names[e->n_syms])
                return -ENOMEM;
        e->syms[e->n_syms] = (Elf64_Sym){
                .st_info = info,
                .st_shndx = shndx,
                .st_value = value,
                .st_size = size,
        };
        if (ret)
                *ret = e->n_syms;
        e->n_syms++;
        return 0;
}

static int64_t find_sym(const struct emit *e, const char *name, size_t from)
{
        for (size_t i = from; i < e->n_syms; i++)
                if (strcmp(e->sym_names[i], name) == 0)
                        return (int64_t)i;
        return -1;
}

/* A name no symbol of the patch has yet: `base`, else base.TAG.N. */
static char *unique_name(const struct emit *e, const char *base, const char *tag)
{
        char *n;

        if (!tag && find_sym(e, base, 1) < 0)
                return strdup(base);
        for (unsigned k = 1;; k++) {
                if (asprintf(&n, "%s.%s.%u", base, tag ? tag : "lp", k) < 0)
                        return NULL;
                if (find_sym(e, n, 1) < 0)
                        return n;
                free(n);
        }
}

static int add_section(struct emit *e, struct lb_obj *o, size_t in)
{
        struct out_sec *ns = reallocarray(e->secs, e->n_secs + 1, sizeof(*ns));

        if (!ns)
                return -ENOMEM;
        e->secs = ns;
        ns[e->n_secs] = (struct out_sec){
                .obj = o,
                .in = in,
                .data = o ? o->secs[in].data : NULL,
                .sh = o ? o->secs[in].sh : (GElf_Shdr){},
                .name = o ? o->secs[in].name : ".eh_frame",
        };
        e->n_secs++;
        return 0;
}

/* The output symbol a relocation of object o against input symbol `in`
 * (with addend *addend, which may be adjusted) refers to. */
static int map_sym(struct emit *e, size_t oi, uint32_t in, int64_t *addend, uint32_t *ret)
{
        struct lb_obj *o = e->objs[oi];
        struct lb_sym *s = &o->syms[in];
        size_t k;

        if (in == 0) {
                *ret = 0;
                return 0;
        }
        if (s->shndx != SHN_UNDEF && s->shndx < o->n_secs) {
                k = e->sec_map[oi][s->shndx];
                if (k) {
                        if (s->type == STT_SECTION || s->bind == STB_LOCAL) {
                                *addend += (int64_t)(s->type == STT_SECTION ? 0 : s->value);
                                *ret = e->secs[k].secsym;
                                return 0;
                        }
                        /* A global of an included section. */
                        int64_t g = find_sym(e, s->out_name, e->first_global);
                        if (g < 0)
                                return -ENOENT;
                        *ret = (uint32_t)g;
                        return 0;
                }
                if (s->type == STT_SECTION) {
                        int64_t owner = o->secs[s->shndx].owner;
                        if (owner < 0)
                                return -ENOENT;
                        s = &o->syms[owner];
                }
        }
        if (!s->out_name)
                return -ENOENT;
        int64_t g = find_sym(e, s->out_name, e->first_global);
        if (g < 0)
                return -ENOENT;
        *ret = (uint32_t)g;
        return 0;
}

static int copy_relas(struct emit *e, size_t oi, const struct lb_sec *in, uint64_t from,
                      uint64_t to, int64_t shift, struct out_sec *out)
{
        for (size_t i = 0; i < in->n_relas; i++) {
                const struct lb_rela *r = &in->relas[i];
                int64_t addend = r->addend;
                uint32_t sym;
                Elf64_Rela *nr;
                int q;

                if (r->off < from || r->off >= to)
                        continue;
                q = map_sym(e, oi, r->sym, &addend, &sym);
                if (q < 0) {
                        errbuf_set(e->err, "%s: a relocation of %s refers to '%s', which the "
                                   "patch neither carries nor binds",
                                   e->objs[oi]->rel, in->name, e->objs[oi]->syms[r->sym].name);
                        return -EPERM;
                }
                nr = reallocarray(out->relas, out->n_relas + 1, sizeof(*nr));
                if (!nr)
                        return -ENOMEM;
                out->relas = nr;
                nr[out->n_relas++] = (Elf64_Rela){
                        .r_offset = (uint64_t)((int64_t)r->off + shift),
                        .r_info = ELF64_R_INFO(sym, r->type),
                        .r_addend = addend,
                };
        }
        return 0;
}

/* ---- .eh_frame ----------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return le32toh(v);
}

static void wr32(uint8_t *p, uint32_t v)
{
        v = htole32(v);
        memcpy(p, &v, 4);
}

static int buf_append(uint8_t **buf, size_t *len, const uint8_t *data, size_t n)
{
        uint8_t *nb = realloc(*buf, *len + n);

        if (!nb)
                return -ENOMEM;
        memcpy(nb + *len, data, n);
        *buf = nb;
        *len += n;
        return 0;
}

/* The section the FDE at `off` of object o's .eh_frame describes: the one
 * its pc_begin field (offset 8) is relocated against; 0 when none. */
static size_t fde_section(const struct lb_obj *o, const struct lb_sec *eh, uint64_t off)
{
        for (size_t i = 0; i < eh->n_relas; i++)
                if (eh->relas[i].off == off + 8) {
                        const struct lb_sym *s = &o->syms[eh->relas[i].sym];
                        return s->shndx < o->n_secs ? s->shndx : 0;
                }
        return 0;
}

static int build_eh_frame(struct emit *e, struct out_sec *out)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        int r = 0;

        for (size_t oi = 0; oi < e->n_objs; oi++) {
                struct lb_obj *o = e->objs[oi];
                const struct lb_sec *eh;
                uint64_t cie_in = UINT64_MAX;
                size_t cie_out = 0;

                if (o->eh_frame < 0)
                        continue;
                eh = &o->secs[o->eh_frame];
                if (!eh->data)
                        continue;
                for (uint64_t off = 0; off + 8 <= eh->sh.sh_size;) {
                        uint32_t n = rd32(eh->data + off), id;
                        uint64_t end;
                        size_t at;

                        if (n == 0)
                                break;
                        if (n == 0xffffffff || off + 4 + n > eh->sh.sh_size) {
                                errbuf_set(e->err, "%s: a .eh_frame record this version "
                                           "cannot read", o->rel);
                                r = -EBADMSG;
                                goto fail;
                        }
                        end = off + 4 + n;
                        id = rd32(eh->data + off + 4);
                        if (id != 0) {
                                uint64_t cie = off + 4 - id;
                                size_t sec = fde_section(o, eh, off);

                                if (sec && e->sec_map[oi][sec]) {
                                        if (cie != cie_in) {
                                                /* Its CIE first (once per run of FDEs). */
                                                uint32_t cn;
                                                if (cie + 4 > eh->sh.sh_size) {
                                                        r = -EBADMSG;
                                                        goto fail;
                                                }
                                                cn = rd32(eh->data + cie);
                                                if (cie + 4 + cn > eh->sh.sh_size) {
                                                        r = -EBADMSG;
                                                        goto fail;
                                                }
                                                cie_out = len;
                                                r = buf_append(&buf, &len, eh->data + cie, 4 + cn);
                                                if (r < 0)
                                                        goto fail;
                                                r = copy_relas(e, oi, eh, cie, cie + 4 + cn,
                                                               (int64_t)cie_out - (int64_t)cie, out);
                                                if (r < 0)
                                                        goto fail;
                                                cie_in = cie;
                                        }
                                        at = len;
                                        r = buf_append(&buf, &len, eh->data + off, end - off);
                                        if (r < 0)
                                                goto fail;
                                        wr32(buf + at + 4, (uint32_t)(at + 4 - cie_out));
                                        r = copy_relas(e, oi, eh, off, end,
                                                       (int64_t)at - (int64_t)off, out);
                                        if (r < 0)
                                                goto fail;
                                }
                        }
                        off = end;
                }
        }
        out->owned = buf;
        out->data = buf;
        out->sh = (GElf_Shdr){
                .sh_type = SHT_PROGBITS,
                .sh_flags = SHF_ALLOC,
                .sh_size = len,
                .sh_addralign = 8,
        };
        return 0;
fail:
        free(buf);
        if (r == -EBADMSG && !e->err->msg[0])
                errbuf_set(e->err, "a malformed .eh_frame");
        return r;
}

/* ---- Symbols ------------------------------------------------------------- */

static int make_symbols(struct emit *e)
{
        int r;

        r = add_sym(e, "", 0, SHN_UNDEF, 0, 0, NULL);
        if (r < 0)
                return r;
        for (size_t k = 1; k < e->n_secs; k++) {
                size_t idx;
                r = add_sym(e, "", ELF64_ST_INFO(STB_LOCAL, STT_SECTION), (uint16_t)k, 0, 0,
                            &idx);
                if (r < 0)
                        return r;
                e->secs[k].secsym = (uint32_t)idx;
        }
        /* Local functions and variables of the patch (by name, for readelf
         * and for the .liveup metadata's replacement names). */
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1)
                        e->first_global = e->n_syms;
                for (size_t oi = 0; oi < e->n_objs; oi++) {
                        struct lb_obj *o = e->objs[oi];

                        for (size_t i = 1; i < o->n_syms; i++) {
                                struct lb_sym *s = &o->syms[i];
                                size_t k;

                                if (s->disp != LB_DISP_KEEP || (s->bind == STB_LOCAL) != (pass == 0))
                                        continue;
                                k = e->sec_map[oi][s->shndx];
                                if (!k)
                                        continue;
                                free(s->out_name);
                                s->out_name = unique_name(e, s->name, NULL);
                                if (!s->out_name)
                                        return -ENOMEM;
                                r = add_sym(e, s->out_name, ELF64_ST_INFO(s->bind, s->type),
                                            (uint16_t)k, s->value, s->size, NULL);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        /* Undefined: by name, and bound ones (one per target address). */
        for (size_t oi = 0; oi < e->n_objs; oi++) {
                struct lb_obj *o = e->objs[oi];

                for (size_t i = 1; i < o->n_syms; i++) {
                        struct lb_sym *s = &o->syms[i];

                        if (s->disp == LB_DISP_EXTERN) {
                                free(s->out_name);
                                s->out_name = strdup(s->name);
                                if (!s->out_name)
                                        return -ENOMEM;
                                if (find_sym(e, s->name, e->first_global) >= 0)
                                        continue;
                                r = add_sym(e, s->name,
                                            ELF64_ST_INFO(s->bind == STB_WEAK ? STB_WEAK
                                                                              : STB_GLOBAL,
                                                          STT_NOTYPE),
                                            SHN_UNDEF, 0, 0, NULL);
                                if (r < 0)
                                        return r;
                        } else if (s->disp == LB_DISP_BIND) {
                                const char *have = NULL;

                                /* The same target address from another object. */
                                for (size_t oj = 0; oj < e->n_objs && !have; oj++)
                                        for (size_t j = 1; j < e->objs[oj]->n_syms; j++) {
                                                struct lb_sym *t = &e->objs[oj]->syms[j];
                                                if (t != s && t->disp == LB_DISP_BIND &&
                                                    t->out_name && t->bind_addr == s->bind_addr) {
                                                        have = t->out_name;
                                                        break;
                                                }
                                        }
                                free(s->out_name);
                                s->out_name = have ? strdup(have)
                                                   : unique_name(e, s->name, "lpbind");
                                if (!s->out_name)
                                        return -ENOMEM;
                                if (have)
                                        continue;
                                r = add_sym(e, s->out_name, ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE),
                                            SHN_UNDEF, 0, 0, NULL);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

/* ---- Writing ------------------------------------------------------------- */

static int write_elf(struct emit *e, const char *path)
{
        _cleanup_close_ int fd = -EBADF;
        struct strtab shstr = {}, str = {};
        Elf *elf = NULL;
        Elf64_Ehdr *eh;
        size_t n_rela = 0, base;
        int r = -EIO;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                errbuf_set(e->err, "cannot write '%s': %s", path, strerror(errno));
                return -errno;
        }
        (void)elf_library_init();
        elf = elf_begin(fd, ELF_C_WRITE, NULL);
        if (!elf || !(eh = elf64_newehdr(elf)))
                goto libelf;
        eh->e_ident[EI_DATA] = ELFDATA2LSB;
        eh->e_machine = (Elf64_Half)arch_elf_machine();
        eh->e_type = ET_REL;
        eh->e_version = EV_CURRENT;
        if (strtab_add(&shstr, "") < 0 || strtab_add(&str, "") < 0)
                goto nomem;

        /* Content sections, then their RELA sections, then the tables. */
        for (size_t k = 1; k < e->n_secs; k++)
                if (e->secs[k].n_relas)
                        n_rela++;
        base = e->n_secs; /* first RELA index */
        size_t symtab = base + n_rela, strtab = symtab + 1, shstrtab = strtab + 1;

        for (size_t k = 1; k < e->n_secs; k++) {
                struct out_sec *s = &e->secs[k];
                Elf_Scn *scn = elf_newscn(elf);
                Elf_Data *d;
                Elf64_Shdr *sh;
                int64_t nm = strtab_add(&shstr, s->name);

                if (!scn || nm < 0 || !(d = elf_newdata(scn)) || !(sh = elf64_getshdr(scn)))
                        goto libelf;
                d->d_buf = s->sh.sh_type == SHT_NOBITS ? NULL : (void *)s->data;
                d->d_size = s->sh.sh_size;
                d->d_type = ELF_T_BYTE;
                d->d_align = MAX(s->sh.sh_addralign, (uint64_t)1);
                sh->sh_name = (Elf64_Word)nm;
                sh->sh_type = s->sh.sh_type;
                sh->sh_flags = s->sh.sh_flags & ~(uint64_t)SHF_GROUP;
                sh->sh_addralign = MAX(s->sh.sh_addralign, (uint64_t)1);
                sh->sh_entsize = s->sh.sh_entsize;
                sh->sh_size = s->sh.sh_size;
        }
        for (size_t k = 1; k < e->n_secs; k++) {
                struct out_sec *s = &e->secs[k];
                _cleanup_free_ char *nm = NULL;
                Elf_Scn *scn;
                Elf_Data *d;
                Elf64_Shdr *sh;
                int64_t o;

                if (!s->n_relas)
                        continue;
                if (asprintf(&nm, ".rela%s", s->name) < 0) {
                        nm = NULL;
                        goto nomem;
                }
                o = strtab_add(&shstr, nm);
                scn = elf_newscn(elf);
                if (o < 0 || !scn || !(d = elf_newdata(scn)) || !(sh = elf64_getshdr(scn)))
                        goto libelf;
                d->d_buf = s->relas;
                d->d_size = s->n_relas * sizeof(Elf64_Rela);
                d->d_type = ELF_T_RELA;
                d->d_align = 8;
                sh->sh_name = (Elf64_Word)o;
                sh->sh_type = SHT_RELA;
                sh->sh_flags = SHF_INFO_LINK;
                sh->sh_link = (Elf64_Word)symtab;
                sh->sh_info = (Elf64_Word)k;
                sh->sh_entsize = sizeof(Elf64_Rela);
                sh->sh_addralign = 8;
        }
        for (size_t i = 0; i < e->n_syms; i++) {
                int64_t o = *e->sym_names[i] ? strtab_add(&str, e->sym_names[i]) : 0;
                if (o < 0)
                        goto nomem;
                e->syms[i].st_name = (Elf64_Word)o;
        }
        {
                struct { const char *name; uint32_t type; void *buf; size_t size; Elf_Type t;
                         size_t link, info, ent, align; } tabs[] = {
                        { ".symtab", SHT_SYMTAB, e->syms, e->n_syms * sizeof(Elf64_Sym),
                          ELF_T_SYM, strtab, e->first_global, sizeof(Elf64_Sym), 8 },
                        { ".strtab", SHT_STRTAB, NULL, 0, ELF_T_BYTE, 0, 0, 0, 1 },
                        { ".shstrtab", SHT_STRTAB, NULL, 0, ELF_T_BYTE, 0, 0, 0, 1 },
                };
                for (size_t t = 0; t < ELEMENTSOF(tabs); t++) {
                        int64_t o = strtab_add(&shstr, tabs[t].name);
                        Elf_Scn *scn = elf_newscn(elf);
                        Elf_Data *d;
                        Elf64_Shdr *sh;

                        if (o < 0 || !scn || !(d = elf_newdata(scn)) ||
                            !(sh = elf64_getshdr(scn)))
                                goto libelf;
                        if (t == 1) {
                                tabs[t].buf = str.buf;
                                tabs[t].size = str.len;
                        } else if (t == 2) {
                                tabs[t].buf = shstr.buf;
                                tabs[t].size = shstr.len;
                        }
                        d->d_buf = tabs[t].buf;
                        d->d_size = tabs[t].size;
                        d->d_type = tabs[t].t;
                        d->d_align = tabs[t].align;
                        sh->sh_name = (Elf64_Word)o;
                        sh->sh_type = tabs[t].type;
                        sh->sh_link = (Elf64_Word)tabs[t].link;
                        sh->sh_info = (Elf64_Word)tabs[t].info;
                        sh->sh_entsize = tabs[t].ent;
                        sh->sh_addralign = tabs[t].align;
                }
        }
        eh->e_shstrndx = (Elf64_Half)shstrtab;
        if (elf_update(elf, ELF_C_WRITE) < 0)
                goto libelf;
        r = 0;
        goto out;
nomem:
        r = -ENOMEM;
        goto out;
libelf:
        errbuf_set(e->err, "cannot write '%s': %s", path, elf_errmsg(-1));
        r = -EIO;
out:
        if (elf)
                elf_end(elf);
        free(shstr.buf);
        free(str.buf);
        return r;
}

int lb_emit(struct lb_obj **objs, size_t n_objs, const char *path, struct errbuf *err)
{
        struct emit e = { .objs = objs, .n_objs = n_objs, .err = err };
        bool any_eh = false;
        size_t eh_out = 0;
        int r;

        e.secs = calloc(1, sizeof(*e.secs));
        e.sec_map = calloc(MAX(n_objs, (size_t)1), sizeof(*e.sec_map));
        if (!e.secs || !e.sec_map) {
                r = -ENOMEM;
                goto out;
        }
        e.n_secs = 1;
        for (size_t oi = 0; oi < n_objs; oi++) {
                e.sec_map[oi] = calloc(MAX(objs[oi]->n_secs, (size_t)1), sizeof(size_t));
                if (!e.sec_map[oi]) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        for (size_t oi = 0; oi < n_objs; oi++) {
                struct lb_obj *o = objs[oi];

                for (size_t i = 1; i < o->n_secs; i++) {
                        if (!o->secs[i].include)
                                continue;
                        r = add_section(&e, o, i);
                        if (r < 0)
                                goto out;
                        e.sec_map[oi][i] = e.n_secs - 1;
                }
                if (o->eh_frame >= 0)
                        any_eh = true;
        }
        if (any_eh) {
                r = add_section(&e, NULL, 0);
                if (r < 0)
                        goto out;
                eh_out = e.n_secs - 1;
        }
        r = make_symbols(&e);
        if (r < 0)
                goto out;
        for (size_t k = 1; k < e.n_secs; k++) {
                struct out_sec *s = &e.secs[k];
                size_t oi;

                if (!s->obj)
                        continue;
                for (oi = 0; oi < n_objs && objs[oi] != s->obj; oi++)
                        ;
                r = copy_relas(&e, oi, &s->obj->secs[s->in], 0, UINT64_MAX, 0, s);
                if (r < 0)
                        goto out;
        }
        if (eh_out) {
                r = build_eh_frame(&e, &e.secs[eh_out]);
                if (r < 0)
                        goto out;
        }
        r = write_elf(&e, path);
out:
        emit_done(&e);
        return r;
}
