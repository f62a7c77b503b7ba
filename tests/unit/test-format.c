/* Tests of the .lpo reader and writer (src/livepatch/format.c).
 *
 * Patch objects are made here with libelf, so every field can be set to
 * exactly the bad value a test needs: an ET_REL object of this ISA with a
 * .text holding two functions, a .data holding a variable and a function
 * symbol that lies in data, an absolute "function", undefined symbols
 * (printf, and two that bindings tie to the target), and a .liveup section
 * with metadata from lp_meta_serialize() (or bytes the test crafted).
 * Every bad input must give its error code and a message naming the file,
 * never a crash (CI runs this under ASan/UBSan). */
#include "tap.h"

#include "arch/arch.h"
#include "livepatch/format.h"

#include <endian.h>
#include <fcntl.h>
#include <gelf.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define NAME "fix.lpo"

/* ---- Making objects ------------------------------------------------------ */

struct obj_spec {
        int type;             /* ET_REL unless set */
        int machine;          /* this ISA unless set */
        const void *meta;     /* .liveup contents; NULL: no .liveup */
        size_t meta_size;
        bool two_meta;        /* a second .liveup section */
};

static Elf_Scn *add_section(Elf *e, size_t name, uint32_t type, uint64_t flags,
                            const void *data, size_t size, Elf_Type dtype, size_t align)
{
        Elf_Scn *scn = elf_newscn(e);
        Elf_Data *d;
        GElf_Shdr sh;

        CHECK(scn);
        d = elf_newdata(scn);
        CHECK(d);
        d->d_buf = (void *)data;
        d->d_size = size;
        d->d_type = dtype;
        d->d_align = align;
        CHECK(gelf_getshdr(scn, &sh));
        sh.sh_name = name;
        sh.sh_type = type;
        sh.sh_flags = flags;
        sh.sh_addralign = align;
        CHECK(gelf_update_shdr(scn, &sh));
        return scn;
}

/* An ELF relocatable object as described by `s`; malloc'd image. */
static void *make_object(const struct obj_spec *s, size_t *ret_size)
{
        static const uint8_t text[16] = { 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3, 0x90, 0x90,
                                          0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3, 0x90, 0x90 };
        static const uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        /* Offsets into shstrtab below. */
        static const char shstrtab[] = "\0.text\0.data\0.liveup\0.symtab\0.strtab\0.shstrtab";
        enum { N_TEXT = 1, N_DATA = 7, N_LIVEUP = 13, N_SYMTAB = 21, N_STRTAB = 29,
               N_SHSTRTAB = 37 };
        static const char strtab[] = "\0local_fn\0data_obj\0fix_fn\0printf\0in_data\0abs_fn"
                                     "\0items_seen\0format_item";
        enum { S_LOCAL_FN = 1, S_DATA_OBJ = 10, S_FIX_FN = 19, S_PRINTF = 26, S_IN_DATA = 33,
               S_ABS_FN = 41, S_ITEMS_SEEN = 48, S_FORMAT_ITEM = 59 };
        Elf64_Sym syms[9] = {};
        Elf_Scn *text_scn, *data_scn, *symtab, *strtab_scn, *shstr;
        GElf_Ehdr eh;
        GElf_Shdr sh;
        struct stat st;
        void *image;
        Elf *e;
        int fd;

        CHECK(elf_version(EV_CURRENT) != EV_NONE);
        fd = memfd_create("obj", MFD_CLOEXEC);
        CHECK(fd >= 0);
        e = elf_begin(fd, ELF_C_WRITE, NULL);
        CHECK(e);
        CHECK(gelf_newehdr(e, ELFCLASS64));
        CHECK(gelf_getehdr(e, &eh));
        eh.e_ident[EI_DATA] = ELFDATA2LSB;
        eh.e_type = s->type ? s->type : ET_REL;
        eh.e_machine = s->machine ? s->machine : arch_elf_machine();
        eh.e_version = EV_CURRENT;
        CHECK(gelf_update_ehdr(e, &eh));

        text_scn = add_section(e, N_TEXT, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text,
                               sizeof(text), ELF_T_BYTE, 16);
        data_scn = add_section(e, N_DATA, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data,
                               sizeof(data), ELF_T_BYTE, 8);
        if (s->meta)
                add_section(e, N_LIVEUP, SHT_PROGBITS, 0, s->meta, s->meta_size, ELF_T_BYTE, 1);
        if (s->meta && s->two_meta)
                add_section(e, N_LIVEUP, SHT_PROGBITS, 0, s->meta, s->meta_size, ELF_T_BYTE, 1);

        /* Locals first (sh_info = first global). */
        syms[1] = (Elf64_Sym){ .st_name = S_LOCAL_FN,
                               .st_info = ELF64_ST_INFO(STB_LOCAL, STT_FUNC),
                               .st_shndx = (uint16_t)elf_ndxscn(text_scn),
                               .st_value = 0,
                               .st_size = 8 };
        syms[2] = (Elf64_Sym){ .st_name = S_DATA_OBJ,
                               .st_info = ELF64_ST_INFO(STB_LOCAL, STT_OBJECT),
                               .st_shndx = (uint16_t)elf_ndxscn(data_scn),
                               .st_size = 8 };
        syms[3] = (Elf64_Sym){ .st_name = S_FIX_FN,
                               .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                               .st_shndx = (uint16_t)elf_ndxscn(text_scn),
                               .st_value = 8,
                               .st_size = 8 };
        syms[4] = (Elf64_Sym){ .st_name = S_PRINTF,
                               .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE),
                               .st_shndx = SHN_UNDEF };
        syms[5] = (Elf64_Sym){ .st_name = S_IN_DATA,
                               .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                               .st_shndx = (uint16_t)elf_ndxscn(data_scn),
                               .st_size = 4 };
        syms[6] = (Elf64_Sym){ .st_name = S_ABS_FN,
                               .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
                               .st_shndx = SHN_ABS,
                               .st_value = 0x1000,
                               .st_size = 4 };
        /* What a patch built from a diff leaves undefined: the target's
         * statics it refers to, bound to their addresses. */
        syms[7] = (Elf64_Sym){ .st_name = S_ITEMS_SEEN,
                               .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE),
                               .st_shndx = SHN_UNDEF };
        syms[8] = (Elf64_Sym){ .st_name = S_FORMAT_ITEM,
                               .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_NOTYPE),
                               .st_shndx = SHN_UNDEF };
        symtab = add_section(e, N_SYMTAB, SHT_SYMTAB, 0, syms, sizeof(syms), ELF_T_SYM, 8);
        strtab_scn = add_section(e, N_STRTAB, SHT_STRTAB, 0, strtab, sizeof(strtab),
                                 ELF_T_BYTE, 1);
        shstr = add_section(e, N_SHSTRTAB, SHT_STRTAB, 0, shstrtab, sizeof(shstrtab),
                            ELF_T_BYTE, 1);
        CHECK(gelf_getshdr(symtab, &sh));
        sh.sh_link = (uint32_t)elf_ndxscn(strtab_scn);
        sh.sh_info = 3;
        sh.sh_entsize = sizeof(Elf64_Sym);
        CHECK(gelf_update_shdr(symtab, &sh));
        CHECK(gelf_getehdr(e, &eh));
        eh.e_shstrndx = (uint16_t)elf_ndxscn(shstr);
        CHECK(gelf_update_ehdr(e, &eh));

        CHECK(elf_update(e, ELF_C_WRITE) > 0);
        elf_end(e);
        CHECK(fstat(fd, &st) == 0);
        image = malloc((size_t)st.st_size);
        CHECK(image);
        CHECK(pread(fd, image, (size_t)st.st_size, 0) == st.st_size);
        close(fd);
        *ret_size = (size_t)st.st_size;
        return image;
}

/* ---- Metadata ------------------------------------------------------------ */

static struct lp_func good_funcs[2] = {
        { .name = "parse_header", .new_name = "fix_fn", .addr = 0x1139, .size = 57,
          .hash = 0x1122334455667788ull, .entry = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 } },
        { .name = "count_items", .new_name = "local_fn", .addr = 0x1200, .size = 23,
          .hash = 42, .flags = LP_FUNC_LOCAL },
};

static struct lp_file good_meta(void)
{
        struct lp_file m = {
                .id = "fix-1a2b3c4d",
                .name = "fix",
                .target = "/usr/bin/victim",
                .build_id = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04 },
                .build_id_len = 8,
                .flags = LP_FLAG_CUMULATIVE,
                .created = 1763800000,
                .funcs = good_funcs,
                .n_funcs = 2,
        };
        return m;
}

static uint8_t *good_section(size_t *ret_size)
{
        struct lp_file m = good_meta();
        void *sec = NULL;

        CHECK_OK(lp_meta_serialize(&m, &sec, ret_size));
        return sec;
}

/* As `build --diff` writes them: a reason for a function, and bindings
 * of the object's undefined symbols to the target's statics. */
static struct lp_func why_funcs[2] = {
        { .name = "parse_header", .new_name = "fix_fn", .addr = 0x1139, .size = 57,
          .hash = 0x1122334455667788ull, .entry = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55 },
          .why = "changed in src/http.c" },
        { .name = "count_items", .new_name = "local_fn", .addr = 0x1200, .size = 23,
          .hash = 42, .flags = LP_FUNC_LOCAL },
};

static struct lp_bind good_binds[2] = {
        { .sym = "items_seen", .name = "items_seen", .addr = 0x4010,
          .flags = LP_BIND_DATA | LP_BIND_LOCAL },
        { .sym = "format_item", .name = "format_item.constprop.0", .addr = 0x1180,
          .flags = LP_BIND_FUNC | LP_BIND_LOCAL },
};

static struct lp_file bound_meta(void)
{
        struct lp_file m = good_meta();

        m.funcs = why_funcs;
        m.binds = good_binds;
        m.n_binds = 2;
        return m;
}

static uint8_t *bound_section(size_t *ret_size)
{
        struct lp_file m = bound_meta();
        void *sec = NULL;

        CHECK_OK(lp_meta_serialize(&m, &sec, ret_size));
        return sec;
}

/* Parse an object wrapping `sec`; the result code, message in err. */
static int parse_section(const void *sec, size_t size, struct lp_file **ret, struct errbuf *err)
{
        struct obj_spec s = { .meta = sec, .meta_size = size };
        _cleanup_free_ void *img = NULL;
        size_t n;

        img = make_object(&s, &n);
        return lp_file_parse(img, n, NAME, ret, err);
}

/* Expect failure `code` with a message naming the file and containing
 * `what`. */
static void expect_section_error(const void *sec, size_t size, int code, const char *what)
{
        struct lp_file *f = NULL;
        struct errbuf err = {};
        int r;

        r = parse_section(sec, size, &f, &err);
        if (r != -code || !strstr(err.msg, what) || strncmp(err.msg, "'" NAME "': ", 11) != 0) {
                fprintf(stderr, "got %d '%s', expected %d with '%s'\n", r, err.msg, -code,
                        what);
                _exit(1);
        }
        CHECK(f == NULL);
}

/* Header fields, little-endian, in a section copy. */
static void put32(uint8_t *sec, size_t off, uint32_t v)
{
        v = htole32(v);
        memcpy(sec + off, &v, sizeof(v));
}

static void put64(uint8_t *sec, size_t off, uint64_t v)
{
        v = htole64(v);
        memcpy(sec + off, &v, sizeof(v));
}

static uint32_t get32(const uint8_t *sec, size_t off)
{
        uint32_t v;

        memcpy(&v, sec + off, sizeof(v));
        return le32toh(v);
}

#define HOFF(field) offsetof(struct lp_meta_header, field)
#define FOFF(i, field) (sizeof(struct lp_meta_header) + (i) * sizeof(struct lp_meta_func) + \
                        offsetof(struct lp_meta_func, field))
/* In bound_section(): after its two function entries. */
#define BOFF(i, field) (sizeof(struct lp_meta_header) + 2 * sizeof(struct lp_meta_func) + \
                        (i) * sizeof(struct lp_meta_bind) + offsetof(struct lp_meta_bind, field))

/* `sec` laid out again with a header of hx bytes, function entries of fx
 * and binding entries of bx bytes, in the writer's order. Bytes past the
 * fields we know are 0xa5 (a newer minor version's fields); a header
 * shorter than ours loses the fields past hx (an older version's). */
static uint8_t *relayout(const uint8_t *sec, size_t hx, size_t fx, size_t bx, size_t *ret_size)
{
        const size_t hs = sizeof(struct lp_meta_header), fs = sizeof(struct lp_meta_func);
        const size_t bs = sizeof(struct lp_meta_bind);
        uint32_t nf = get32(sec, HOFF(n_funcs)), nb = get32(sec, HOFF(n_binds));
        uint32_t funcs_off = get32(sec, HOFF(funcs_off)), binds_off = get32(sec, HOFF(binds_off));
        uint32_t strtab_off = get32(sec, HOFF(strtab_off));
        uint32_t strtab_size = get32(sec, HOFF(strtab_size));
        size_t total = hx + nf * fx + nb * bx + strtab_size;
        uint8_t *out = malloc(total);

        CHECK(out && fx >= fs && bx >= bs);
        memset(out, 0xa5, total);
        memcpy(out, sec, MIN(hs, hx));
        for (size_t i = 0; i < nf; i++)
                memcpy(out + hx + i * fx, sec + funcs_off + i * fs, fs);
        for (size_t i = 0; i < nb; i++)
                memcpy(out + hx + nf * fx + i * bx, sec + binds_off + i * bs, bs);
        memcpy(out + hx + nf * fx + nb * bx, sec + strtab_off, strtab_size);
        put32(out, HOFF(header_size), (uint32_t)hx);
        put32(out, HOFF(funcs_off), (uint32_t)hx);
        put32(out, HOFF(func_size), (uint32_t)fx);
        put32(out, HOFF(strtab_off), (uint32_t)(hx + nf * fx + nb * bx));
        if (hx >= hs) {
                put32(out, HOFF(binds_off), (uint32_t)(hx + nf * fx));
                put32(out, HOFF(bind_size), (uint32_t)bx);
        }
        *ret_size = total;
        return out;
}

/* ---- Tests --------------------------------------------------------------- */

TEST(hash_vectors)
{
        /* FNV-1a 64 reference values. */
        CHECK(lp_hash("", 0) == 0xcbf29ce484222325ull);
        CHECK(lp_hash("a", 1) == 0xaf63dc4c8601ec8cull);
        CHECK(lp_hash("foobar", 6) == 0x85944171f73967e8ull);
}

TEST(round_trip)
{
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size;

        sec = good_section(&size);
        CHECK_OK(parse_section(sec, size, &f, &err));
        CHECK_STREQ(f->path, NAME);
        CHECK_STREQ(f->id, "fix-1a2b3c4d");
        CHECK_STREQ(f->name, "fix");
        CHECK_STREQ(f->target, "/usr/bin/victim");
        CHECK(f->build_id_len == 8);
        CHECK_STREQ(f->build_id_hex, "deadbeef01020304");
        CHECK(f->flags == LP_FLAG_CUMULATIVE);
        CHECK(f->created == 1763800000);
        CHECK(f->n_funcs == 2);
        for (size_t i = 0; i < 2; i++) {
                CHECK_STREQ(f->funcs[i].name, good_funcs[i].name);
                CHECK_STREQ(f->funcs[i].new_name, good_funcs[i].new_name);
                CHECK(f->funcs[i].addr == good_funcs[i].addr);
                CHECK(f->funcs[i].size == good_funcs[i].size);
                CHECK(f->funcs[i].hash == good_funcs[i].hash);
                CHECK(f->funcs[i].flags == good_funcs[i].flags);
                CHECK(memcmp(f->funcs[i].entry, good_funcs[i].entry, LP_ENTRY_BYTES) == 0);
        }
        CHECK(f->image && f->image_size > size);
        /* The image is the file as it was. */
        CHECK(memcmp(f->image, "\177ELF", 4) == 0);
        /* No bindings: version 1, which a liveup without them reads. */
        CHECK(get32(sec, HOFF(version)) == 1);
        CHECK(f->version == 1);
        CHECK(f->funcs[0].why == NULL && f->funcs[1].why == NULL);
        CHECK(f->n_binds == 0 && f->binds == NULL);
        CHECK(lp_file_find_bind(f, "items_seen") == NULL);
}

TEST(round_trip_bindings_and_reasons)
{
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        struct lp_file m = bound_meta();
        struct errbuf err = {};
        size_t size;

        sec = bound_section(&size);
        CHECK(get32(sec, HOFF(version)) == LP_META_VERSION_BINDS);
        CHECK(get32(sec, HOFF(n_binds)) == 2);
        CHECK(get32(sec, HOFF(bind_size)) == sizeof(struct lp_meta_bind));
        /* A target name equal to the symbol shares its string. */
        CHECK(get32(sec, BOFF(0, sym_str)) == get32(sec, BOFF(0, name_str)));
        CHECK(get32(sec, FOFF(1, why_str)) == 0);
        CHECK_OK(parse_section(sec, size, &f, &err));
        CHECK(f->version == LP_META_VERSION_BINDS);
        CHECK_STREQ(f->funcs[0].why, "changed in src/http.c");
        CHECK(f->funcs[1].why == NULL);
        CHECK(f->n_funcs == 2 && f->funcs[1].addr == 0x1200);
        CHECK(f->n_binds == 2);
        for (size_t i = 0; i < 2; i++) {
                CHECK_STREQ(f->binds[i].sym, good_binds[i].sym);
                CHECK_STREQ(f->binds[i].name, good_binds[i].name);
                CHECK(f->binds[i].addr == good_binds[i].addr);
                CHECK(f->binds[i].flags == good_binds[i].flags);
        }
        CHECK(lp_file_find_bind(f, "items_seen") == &f->binds[0]);
        CHECK(lp_file_find_bind(f, "format_item") == &f->binds[1]);
        /* By the object's symbol, not the target's name. */
        CHECK(lp_file_find_bind(f, "format_item.constprop.0") == NULL);
        CHECK(lp_file_find_bind(f, "printf") == NULL);
        CHECK(lp_file_find_bind(f, "") == NULL);
        /* The writer's input has no index: searched one by one. */
        CHECK(lp_file_find_bind(&m, "format_item") == &good_binds[1]);
        CHECK(lp_file_find_bind(&m, "printf") == NULL);
}

/* A reason alone does not need version 2: a version 1 reader ignores it
 * (it was a reserved field). */
TEST(reasons_without_bindings_stay_version_1)
{
        struct lp_file m = good_meta();
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size;

        m.funcs = why_funcs;
        CHECK_OK(lp_meta_serialize(&m, (void **)&sec, &size));
        CHECK(get32(sec, HOFF(version)) == 1);
        CHECK(get32(sec, HOFF(n_binds)) == 0);
        CHECK_OK(parse_section(sec, size, &f, &err));
        CHECK(f->version == 1);
        CHECK_STREQ(f->funcs[0].why, "changed in src/http.c");
        CHECK(f->funcs[1].why == NULL);
}

/* A file from before the bindings: a 128-byte header, reserved (now
 * why_str) 0. */
TEST(old_layout_reads)
{
        _cleanup_free_ uint8_t *sec = NULL, *old = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size, old_size;

        sec = good_section(&size);
        old = relayout(sec, LP_META_HEADER_SIZE_V1, sizeof(struct lp_meta_func),
                       sizeof(struct lp_meta_bind), &old_size);
        CHECK(old_size == size - (sizeof(struct lp_meta_header) - LP_META_HEADER_SIZE_V1));
        CHECK_OK(parse_section(old, old_size, &f, &err));
        CHECK(f->version == 1 && f->n_funcs == 2 && f->n_binds == 0);
        CHECK_STREQ(f->funcs[1].name, "count_items");
        CHECK(f->funcs[0].why == NULL && f->funcs[1].why == NULL);
        CHECK_STREQ(f->target, "/usr/bin/victim");
}

TEST(bindings_need_version_2)
{
        _cleanup_free_ uint8_t *sec = NULL, *good = NULL, *old = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size, good_size, old_size;

        /* An old reader would resolve them by name: version 1 with
         * bindings is corrupt. */
        sec = bound_section(&size);
        put32(sec, HOFF(version), 1);
        expect_section_error(sec, size, EBADMSG,
                             "2 bindings in a version 1 file (bindings need version 2)");
        /* Version 2 has the whole header. */
        put32(sec, HOFF(version), 2);
        put32(sec, HOFF(header_size), LP_META_HEADER_SIZE_V1);
        expect_section_error(sec, size, EBADMSG, "header size 128 is not 144 to 4096");
        good = good_section(&good_size);
        old = relayout(good, LP_META_HEADER_SIZE_V1, sizeof(struct lp_meta_func),
                       sizeof(struct lp_meta_bind), &old_size);
        put32(old, HOFF(version), 2);
        expect_section_error(old, old_size, EBADMSG, "header size 128 is not 144");
        /* Version 2 without bindings is read (the writer does not make
         * it). */
        put32(good, HOFF(version), 2);
        CHECK_OK(parse_section(good, good_size, &f, &err));
        CHECK(f->version == 2 && f->n_binds == 0);
}

TEST(same_replacement_name_shares_string)
{
        struct lp_func fn = { .name = "fix_fn", .new_name = "fix_fn", .addr = 1, .size = 5 };
        struct lp_file m = good_meta();
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size;

        m.funcs = &fn;
        m.n_funcs = 1;
        CHECK_OK(lp_meta_serialize(&m, (void **)&sec, &size));
        CHECK(get32(sec, FOFF(0, name_str)) == get32(sec, FOFF(0, new_str)));
        CHECK_OK(parse_section(sec, size, &f, &err));
        CHECK_STREQ(f->funcs[0].new_name, "fix_fn");
}

TEST(open_from_file)
{
        struct obj_spec s = {};
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_free_ void *img = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        char dir[] = "/tmp/test-format.XXXXXX", path[64];
        struct errbuf err = {};
        size_t n, size;
        int fd;

        sec = good_section(&size);
        s.meta = sec;
        s.meta_size = size;
        img = make_object(&s, &n);
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/fix.lpo", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        CHECK(write(fd, img, n) == (ssize_t)n);
        close(fd);
        CHECK_OK(lp_file_open(path, &f, &err));
        CHECK_STREQ(f->path, path);
        CHECK(f->image_size == n && memcmp(f->image, img, n) == 0);
        CHECK_ERR(lp_file_open(dir, &f, &err), EISDIR);
        unlink(path);
        rmdir(dir);
        err = (struct errbuf){};
        CHECK_ERR(lp_file_open(path, &f, &err), ENOENT);
        CHECK(strstr(err.msg, path));
}

TEST(truncated_at_every_length)
{
        struct obj_spec s = {};
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_free_ uint8_t *img = NULL;
        size_t n, size;

        sec = good_section(&size);
        s.meta = sec;
        s.meta_size = size;
        img = make_object(&s, &n);
        for (size_t len = 0; len < n; len++) {
                struct lp_file *f = NULL;
                struct errbuf err = {};
                int r;

                r = lp_file_parse(img, len, NAME, &f, &err);
                if (r >= 0 || (r != -ENOEXEC && r != -EBADMSG) ||
                    strncmp(err.msg, "'" NAME "': ", 11) != 0) {
                        fprintf(stderr, "length %zu of %zu: %d '%s'\n", len, n, r, err.msg);
                        _exit(1);
                }
                CHECK(f == NULL);
        }
}

static void truncate_every_length(const uint8_t *sec, size_t size)
{
        for (size_t len = 0; len < size; len++) {
                struct lp_file *f = NULL;
                struct errbuf err = {};
                int r;

                r = parse_section(sec, len, &f, &err);
                if (r != -EBADMSG || !strstr(err.msg, "corrupt .liveup section")) {
                        fprintf(stderr, "section length %zu of %zu: %d '%s'\n", len, size, r,
                                err.msg);
                        _exit(1);
                }
        }
}

TEST(truncated_section_every_length)
{
        _cleanup_free_ uint8_t *sec = NULL, *bound = NULL;
        size_t size, bound_size;

        sec = good_section(&size);
        truncate_every_length(sec, size);
        bound = bound_section(&bound_size);
        truncate_every_length(bound, bound_size);
}

/* Every byte of sec[0..end), each to several values: a clean result or
 * a clean error. */
static void flip_bytes(const uint8_t *sec, size_t size, size_t end)
{
        static const uint8_t values[] = { 0x00, 0xff, 0x7f, 0x80, 0x01 };

        for (size_t off = 0; off < end; off++)
                for (size_t v = 0; v < ELEMENTSOF(values) + 1; v++) {
                        _cleanup_free_ uint8_t *bad = malloc(size);
                        struct lp_file *f = NULL;
                        struct errbuf err = {};
                        int r;

                        CHECK(bad);
                        memcpy(bad, sec, size);
                        bad[off] = v < ELEMENTSOF(values) ? values[v] : (uint8_t)(sec[off] ^ 1);
                        r = parse_section(bad, size, &f, &err);
                        if (r >= 0) {
                                lp_file_free(f);
                                continue;
                        }
                        if ((r != -EBADMSG && r != -EPROTONOSUPPORT) || !err.msg[0]) {
                                fprintf(stderr, "offset %zu value %zu: %d '%s'\n", off, v, r,
                                        err.msg);
                                _exit(1);
                        }
                }
}

TEST(header_byte_flips)
{
        _cleanup_free_ uint8_t *sec = NULL, *bound = NULL;
        size_t size, bound_size;

        /* The header and the first function entry; with bindings, the
         * header and both tables. */
        sec = good_section(&size);
        flip_bytes(sec, size, sizeof(struct lp_meta_header) + sizeof(struct lp_meta_func));
        bound = bound_section(&bound_size);
        flip_bytes(bound, bound_size, get32(bound, HOFF(strtab_off)));
}

TEST(bad_magic)
{
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = good_section(&size);
        sec[0] = 'X';
        expect_section_error(sec, size, EBADMSG, "bad magic");
}

TEST(version_99)
{
        _cleanup_free_ uint8_t *sec = NULL;
        struct errbuf err = {};
        struct lp_file *f = NULL;
        size_t size;

        sec = good_section(&size);
        put32(sec, HOFF(version), 99);
        CHECK_ERR(parse_section(sec, size, &f, &err), EPROTONOSUPPORT);
        CHECK(strstr(err.msg, "version 99"));
        CHECK(strncmp(err.msg, "'" NAME "': ", 11) == 0);
}

TEST(unknown_flags)
{
        _cleanup_free_ uint8_t *sec = NULL;
        struct errbuf err = {};
        struct lp_file *f = NULL;
        size_t size;

        sec = good_section(&size);
        put32(sec, HOFF(flags), 0x80);
        CHECK_ERR(parse_section(sec, size, &f, &err), EPROTONOSUPPORT);
        put32(sec, HOFF(flags), 0);
        put32(sec, FOFF(1, flags), 0x100);
        CHECK_ERR(parse_section(sec, size, &f, &err), EPROTONOSUPPORT);
        CHECK(strstr(err.msg, "count_items"));
}

TEST(header_size)
{
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = good_section(&size);
        put32(sec, HOFF(header_size), LP_META_HEADER_SIZE_V1 - 8);
        expect_section_error(sec, size, EBADMSG, "header size 120 is not 128 to 4096");
        put32(sec, HOFF(header_size), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "header size");
        put32(sec, HOFF(header_size), (uint32_t)size + 8);
        expect_section_error(sec, size, EBADMSG, "truncated header");
        /* The header must fit even when the tables are placed after it. */
        put32(sec, HOFF(header_size), sizeof(struct lp_meta_header) + 8);
        expect_section_error(sec, size, EBADMSG, "function table");
}

/* A newer minor version: a longer header and longer function and binding
 * entries, with unknown trailing fields. */
TEST(newer_minor_version_accepted)
{
        _cleanup_free_ uint8_t *sec = NULL, *big = NULL, *bound = NULL, *bigb = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL, *g = NULL;
        const size_t hs = sizeof(struct lp_meta_header), fs = sizeof(struct lp_meta_func);
        const size_t bs = sizeof(struct lp_meta_bind);
        struct errbuf err = {};
        size_t size, big_size, bound_size, bigb_size;

        sec = good_section(&size);
        big = relayout(sec, hs + 32, fs + 24, bs, &big_size);
        CHECK_OK(parse_section(big, big_size, &f, &err));
        CHECK(f->n_funcs == 2);
        CHECK_STREQ(f->funcs[1].name, "count_items");
        CHECK(f->funcs[1].addr == 0x1200);
        CHECK_STREQ(f->target, "/usr/bin/victim");

        bound = bound_section(&bound_size);
        bigb = relayout(bound, hs + 8, fs + 8, bs + 16, &bigb_size);
        CHECK_OK(parse_section(bigb, bigb_size, &g, &err));
        CHECK(g->n_binds == 2);
        CHECK_STREQ(g->binds[1].name, "format_item.constprop.0");
        CHECK(g->binds[1].addr == 0x1180);
        CHECK_STREQ(g->funcs[0].why, "changed in src/http.c");
}

TEST(function_count)
{
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = good_section(&size);
        put32(sec, HOFF(n_funcs), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "function count");
        put32(sec, HOFF(n_funcs), LP_MAX_FUNCS);
        expect_section_error(sec, size, EBADMSG, "function table");
        put32(sec, HOFF(n_funcs), 0);
        expect_section_error(sec, size, EBADMSG, "no functions");
        put32(sec, HOFF(n_funcs), 2);
        put32(sec, HOFF(func_size), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "function entry size");
        put32(sec, HOFF(func_size), 8);
        expect_section_error(sec, size, EBADMSG, "function entry size");
}

TEST(table_offsets)
{
        _cleanup_free_ uint8_t *sec = NULL;
        uint32_t strtab_off, strtab_size;
        size_t size;

        sec = good_section(&size);
        strtab_off = get32(sec, HOFF(strtab_off));
        strtab_size = get32(sec, HOFF(strtab_size));

        put32(sec, HOFF(funcs_off), 0xfffffff0u);
        expect_section_error(sec, size, EBADMSG, "function table");
        put32(sec, HOFF(funcs_off), 4); /* inside the header */
        expect_section_error(sec, size, EBADMSG, "function table");
        put32(sec, HOFF(funcs_off), sizeof(struct lp_meta_header));

        put32(sec, HOFF(strtab_off), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "string table");
        put32(sec, HOFF(strtab_off), strtab_off);
        put32(sec, HOFF(strtab_size), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "string table");
        put32(sec, HOFF(strtab_size), 0);
        expect_section_error(sec, size, EBADMSG, "string table");
        put32(sec, HOFF(strtab_size), strtab_size);
        put32(sec, HOFF(strtab_off), sizeof(struct lp_meta_header) + 8);
        expect_section_error(sec, size, EBADMSG, "overlaps");
}

TEST(string_offsets)
{
        _cleanup_free_ uint8_t *sec = NULL;
        uint32_t strtab_size;
        size_t size;

        sec = good_section(&size);
        strtab_size = get32(sec, HOFF(strtab_size));

        put32(sec, HOFF(id_str), strtab_size);
        expect_section_error(sec, size, EBADMSG, "patch id offset out of range");
        put32(sec, HOFF(id_str), 0); /* the empty string */
        expect_section_error(sec, size, EBADMSG, "patch id is empty");
        put32(sec, HOFF(id_str), 1);

        put32(sec, HOFF(target_str), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "target path offset out of range");
        put32(sec, HOFF(target_str), get32(sec, HOFF(name_str)));

        put32(sec, FOFF(1, name_str), strtab_size + 100);
        expect_section_error(sec, size, EBADMSG, "function 1 name offset out of range");
        put32(sec, FOFF(1, name_str), 1);
        put32(sec, FOFF(0, new_str), strtab_size);
        expect_section_error(sec, size, EBADMSG, "function 0 replacement name offset");
}

TEST(missing_nul)
{
        _cleanup_free_ uint8_t *sec = NULL;
        uint32_t strtab_off, strtab_size;
        size_t size;

        sec = good_section(&size);
        strtab_off = get32(sec, HOFF(strtab_off));
        strtab_size = get32(sec, HOFF(strtab_size));
        /* The last string is "local_fn", function 1's replacement. */
        CHECK(strcmp((char *)sec + strtab_off + strtab_size - 9, "local_fn") == 0);
        put32(sec, HOFF(strtab_size), strtab_size - 1);
        expect_section_error(sec, size, EBADMSG,
                             "function 1 replacement name is not NUL-terminated");
        /* A control character in a string. */
        put32(sec, HOFF(strtab_size), strtab_size);
        sec[strtab_off + strtab_size - 3] = '\033';
        expect_section_error(sec, size, EBADMSG, "control characters");
}

TEST(build_id_length)
{
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = good_section(&size);
        put32(sec, HOFF(build_id_len), LP_BUILD_ID_MAX + 1);
        expect_section_error(sec, size, EBADMSG, "build-id length");
        put32(sec, HOFF(build_id_len), 0);
        expect_section_error(sec, size, EBADMSG, "build-id length");
}

TEST(function_fields)
{
        _cleanup_free_ uint8_t *sec = NULL;
        uint32_t n0;
        size_t size;

        sec = good_section(&size);
        put64(sec, FOFF(0, size), 0);
        expect_section_error(sec, size, EBADMSG, "function 0 ('parse_header') size");
        put64(sec, FOFF(0, size), 1ull << 40);
        expect_section_error(sec, size, EBADMSG, "size");
        put64(sec, FOFF(0, size), 0x100);
        put64(sec, FOFF(0, addr), UINT64_MAX - 0x10);
        expect_section_error(sec, size, EBADMSG, "wraps");
        put64(sec, FOFF(0, addr), 0x1000);
        /* Both entries replace parse_header. */
        n0 = get32(sec, FOFF(0, name_str));
        put32(sec, FOFF(1, name_str), n0);
        expect_section_error(sec, size, EBADMSG, "'parse_header' is replaced twice");
}

static void expect_replacement_error(const char *new_name, const char *what)
{
        struct lp_func fn = { .name = "parse_header", .new_name = new_name, .addr = 0x1139,
                              .size = 57 };
        struct lp_file m = good_meta();
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        m.funcs = &fn;
        m.n_funcs = 1;
        CHECK_OK(lp_meta_serialize(&m, (void **)&sec, &size));
        expect_section_error(sec, size, EBADMSG, what);
}

TEST(replacement_symbols)
{
        expect_replacement_error("printf", "replacement 'printf' is not a function defined");
        expect_replacement_error("data_obj", "replacement 'data_obj' is not a function defined");
        expect_replacement_error("no_such_fn", "replacement 'no_such_fn' is not a function");
        expect_replacement_error("in_data", "replacement 'in_data' is not inside a code section");
        expect_replacement_error("abs_fn", "replacement 'abs_fn' is not inside a code section");
}

TEST(binding_table)
{
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        uint32_t binds_off, strtab_off;
        struct errbuf err = {};
        size_t size;

        sec = bound_section(&size);
        binds_off = get32(sec, HOFF(binds_off));
        strtab_off = get32(sec, HOFF(strtab_off));
        CHECK(binds_off == sizeof(struct lp_meta_header) + 2 * sizeof(struct lp_meta_func));

        put32(sec, HOFF(n_binds), LP_MAX_BINDS + 1);
        expect_section_error(sec, size, EBADMSG, "binding count 65537 is more than 65536");
        put32(sec, HOFF(n_binds), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "binding count");
        put32(sec, HOFF(n_binds), LP_MAX_BINDS);
        expect_section_error(sec, size, EBADMSG, "binding table (65536 entries at");
        put32(sec, HOFF(n_binds), 2);

        put32(sec, HOFF(bind_size), 8);
        expect_section_error(sec, size, EBADMSG, "binding entry size 8 is not 24 to 4096");
        put32(sec, HOFF(bind_size), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "binding entry size");
        put32(sec, HOFF(bind_size), sizeof(struct lp_meta_bind));

        put32(sec, HOFF(binds_off), 0xfffffff0u);
        expect_section_error(sec, size, EBADMSG,
                             "binding table (2 entries at 4294967280) out of range");
        put32(sec, HOFF(binds_off), 4); /* inside the header */
        expect_section_error(sec, size, EBADMSG, "binding table (2 entries at 4) out of range");
        put32(sec, HOFF(binds_off), (uint32_t)size - 8); /* past the end */
        expect_section_error(sec, size, EBADMSG, "binding table");
        put32(sec, HOFF(binds_off), sizeof(struct lp_meta_header) + 8);
        expect_section_error(sec, size, EBADMSG, "binding table overlaps the function table");
        put32(sec, HOFF(binds_off), strtab_off - 8);
        expect_section_error(sec, size, EBADMSG, "binding table overlaps the string table");
        put32(sec, HOFF(binds_off), binds_off);

        /* Without bindings, where the table would be does not matter. */
        put32(sec, HOFF(n_binds), 0);
        put32(sec, HOFF(binds_off), 0xffffffffu);
        put32(sec, HOFF(bind_size), 0);
        CHECK_OK(parse_section(sec, size, &f, &err));
        CHECK(f->n_binds == 0 && lp_file_find_bind(f, "items_seen") == NULL);
}

TEST(binding_strings)
{
        _cleanup_free_ uint8_t *sec = NULL;
        uint32_t strtab_off, strtab_size, sym1;
        size_t size;

        sec = bound_section(&size);
        strtab_off = get32(sec, HOFF(strtab_off));
        strtab_size = get32(sec, HOFF(strtab_size));
        sym1 = get32(sec, BOFF(1, sym_str));

        put32(sec, BOFF(1, sym_str), strtab_size);
        expect_section_error(sec, size, EBADMSG, "binding 1 symbol offset out of range");
        put32(sec, BOFF(1, sym_str), 0);
        expect_section_error(sec, size, EBADMSG, "binding 1 symbol is empty");
        put32(sec, BOFF(1, sym_str), sym1);
        put32(sec, BOFF(0, name_str), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "binding 0 target name offset out of range");
        put32(sec, BOFF(0, name_str), 0);
        expect_section_error(sec, size, EBADMSG, "binding 0 target name is empty");
        put32(sec, BOFF(0, name_str), get32(sec, BOFF(0, sym_str)));

        /* The last string is binding 1's target name. */
        CHECK(strcmp((char *)sec + strtab_off + strtab_size - 24, "format_item.constprop.0") ==
              0);
        put32(sec, HOFF(strtab_size), strtab_size - 1);
        expect_section_error(sec, size, EBADMSG, "binding 1 target name is not NUL-terminated");
        put32(sec, HOFF(strtab_size), strtab_size);
        sec[strtab_off + strtab_size - 3] = '\n';
        expect_section_error(sec, size, EBADMSG, "binding 1 target name has control characters");
}

TEST(function_reason)
{
        _cleanup_free_ uint8_t *sec = NULL;
        uint32_t strtab_off, why;
        size_t size;

        sec = bound_section(&size);
        strtab_off = get32(sec, HOFF(strtab_off));
        why = get32(sec, FOFF(0, why_str));
        CHECK(strcmp((char *)sec + strtab_off + why, "changed in src/http.c") == 0);
        put32(sec, FOFF(0, why_str), get32(sec, HOFF(strtab_size)));
        expect_section_error(sec, size, EBADMSG, "function 0 reason offset out of range");
        put32(sec, FOFF(0, why_str), why);
        sec[strtab_off + why + 7] = '\033';
        expect_section_error(sec, size, EBADMSG, "function 0 reason has control characters");
}

TEST(binding_flags)
{
        _cleanup_free_ uint8_t *sec = NULL;
        struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size;

        sec = bound_section(&size);
        put32(sec, BOFF(0, flags), 0);
        expect_section_error(sec, size, EBADMSG,
                             "binding 0 ('items_seen') flags 0x0: not exactly one of function "
                             "and data");
        put32(sec, BOFF(0, flags), LP_BIND_FUNC | LP_BIND_DATA);
        expect_section_error(sec, size, EBADMSG, "binding 0 ('items_seen') flags 0x3");
        put32(sec, BOFF(0, flags), LP_BIND_LOCAL);
        expect_section_error(sec, size, EBADMSG, "binding 0 ('items_seen') flags 0x4");
        /* A flag from a newer version: refused like the others. */
        put32(sec, BOFF(0, flags), LP_BIND_DATA | 0x80);
        CHECK_ERR(parse_section(sec, size, &f, &err), EPROTONOSUPPORT);
        CHECK(strstr(err.msg, "binding of 'items_seen' uses flags 0x80"));
        CHECK(f == NULL);
}

TEST(binding_twice)
{
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = bound_section(&size);
        put32(sec, BOFF(1, sym_str), get32(sec, BOFF(0, sym_str)));
        expect_section_error(sec, size, EBADMSG, "symbol 'items_seen' is bound twice");
}

/* One binding of `sym` in an object; ok or the error `what`. */
static void expect_binding(const char *sym, const char *what)
{
        struct lp_bind b = { .sym = sym, .name = "count", .addr = 0x4020, .flags = LP_BIND_DATA };
        struct lp_file m = good_meta();
        _cleanup_free_ uint8_t *sec = NULL;
        struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t size;

        m.binds = &b;
        m.n_binds = 1;
        CHECK_OK(lp_meta_serialize(&m, (void **)&sec, &size));
        if (!what) {
                CHECK_OK(parse_section(sec, size, &f, &err));
                CHECK(lp_file_find_bind(f, sym)->addr == 0x4020);
                lp_file_free(f);
                return;
        }
        expect_section_error(sec, size, EBADMSG, what);
}

TEST(binding_symbols)
{
        expect_binding("printf", NULL);
        expect_binding("items_seen", NULL);
        expect_binding("data_obj", "binding 0: symbol 'data_obj' is defined in the object");
        expect_binding("fix_fn", "binding 0: symbol 'fix_fn' is defined in the object");
        expect_binding("abs_fn", "binding 0: symbol 'abs_fn' is defined in the object");
        expect_binding("no_such_sym", "binding 0: symbol 'no_such_sym' is not a symbol of the "
                                      "object");
        /* The section's name is not a symbol. */
        expect_binding(".text", "symbol '.text' is not a symbol of the object");
}

TEST(not_elf)
{
        static const char text[] = "this is not an ELF file, just some text\n";
        struct lp_file *f = NULL;
        struct errbuf err = {};

        CHECK_ERR(lp_file_parse(text, sizeof(text), NAME, &f, &err), ENOEXEC);
        CHECK_STREQ(err.msg, "'" NAME "': not an ELF file");
        CHECK_ERR(lp_file_parse("", 0, NAME, &f, &err), ENOEXEC);
        CHECK_ERR(lp_file_parse("\177ELF", 4, NAME, &f, &err), ENOEXEC);
}

static void expect_object_error(const struct obj_spec *s, int code, const char *what)
{
        _cleanup_free_ void *img = NULL;
        struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t n;
        int r;

        img = make_object(s, &n);
        r = lp_file_parse(img, n, NAME, &f, &err);
        if (r != -code || !strstr(err.msg, what)) {
                fprintf(stderr, "got %d '%s', expected %d with '%s'\n", r, err.msg, -code,
                        what);
                _exit(1);
        }
}

TEST(wrong_object_kind)
{
        _cleanup_free_ uint8_t *sec = NULL;
        struct obj_spec s = {};
        size_t size;

        sec = good_section(&size);
        s = (struct obj_spec){ .meta = sec, .meta_size = size, .type = ET_EXEC };
        expect_object_error(&s, ENOEXEC, "a patch is a relocatable object");
        s = (struct obj_spec){ .meta = sec, .meta_size = size, .type = ET_DYN };
        expect_object_error(&s, ENOEXEC, "a patch is a relocatable object");
        s = (struct obj_spec){ .meta = sec,
                               .meta_size = size,
                               .machine = arch_elf_machine() == EM_AARCH64 ? EM_X86_64
                                                                           : EM_AARCH64 };
        expect_object_error(&s, ENOEXEC, "not this ISA");
        s = (struct obj_spec){ .meta = NULL };
        expect_object_error(&s, ENOEXEC, "'" NAME "': not a liveup patch (no .liveup section)");
        s = (struct obj_spec){ .meta = sec, .meta_size = size, .two_meta = true };
        expect_object_error(&s, EBADMSG, "more than one .liveup section");
}

TEST(other_byte_order)
{
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_free_ uint8_t *img = NULL;
        struct obj_spec s = {};
        struct lp_file *f = NULL;
        struct errbuf err = {};
        size_t n, size;

        sec = good_section(&size);
        s.meta = sec;
        s.meta_size = size;
        img = make_object(&s, &n);
        img[EI_DATA] = img[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
        CHECK_ERR(lp_file_parse(img, n, NAME, &f, &err), ENOEXEC);
}

/* Random damage anywhere in the file, fixed seed: a clean result or a
 * clean error, never a crash (ASan watches). */
static void damage(const uint8_t *sec, size_t size, uint64_t seed)
{
        _cleanup_free_ uint8_t *img = NULL;
        struct obj_spec s = { .meta = sec, .meta_size = size };
        size_t n;

        img = make_object(&s, &n);
        for (int iter = 0; iter < 20000; iter++) {
                _cleanup_free_ uint8_t *bad = malloc(n);
                struct lp_file *f = NULL;
                struct errbuf err = {};
                int k, r;

                CHECK(bad);
                memcpy(bad, img, n);
                k = 1 + iter % 8;
                for (int j = 0; j < k; j++) {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        bad[(seed >> 8) % n] = (uint8_t)seed;
                }
                r = lp_file_parse(bad, n, NAME, &f, &err);
                if (r >= 0) {
                        lp_file_free(f);
                        continue;
                }
                if ((r != -ENOEXEC && r != -EBADMSG && r != -EPROTONOSUPPORT) || !err.msg[0]) {
                        fprintf(stderr, "iteration %d: %d '%s'\n", iter, r, err.msg);
                        _exit(1);
                }
        }
}

TEST(random_damage)
{
        _cleanup_free_ uint8_t *sec = NULL, *bound = NULL;
        size_t size, bound_size;

        sec = good_section(&size);
        damage(sec, size, 0x2545f4914f6cdd1dull);
        bound = bound_section(&bound_size);
        damage(bound, bound_size, 0x9e3779b97f4a7c15ull);
}

TEST(serialize_refuses_bad_metadata)
{
        struct lp_func dup[2] = { good_funcs[0], good_funcs[0] };
        struct lp_func bad_fn = good_funcs[0];
        struct lp_file m;
        void *sec = NULL;
        size_t size;

        m = good_meta();
        m.id = "";
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        m.name = "a\nb";
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        m.target = NULL;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        m.build_id_len = 0;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m.build_id_len = LP_BUILD_ID_MAX + 1;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        m.n_funcs = 0;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        m.flags = 0x40;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        m.funcs = dup;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m = good_meta();
        bad_fn.size = 0;
        m.funcs = &bad_fn;
        m.n_funcs = 1;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        bad_fn = good_funcs[0];
        bad_fn.why = "";
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        bad_fn.why = "changed\tin a.c";
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        CHECK(sec == NULL);
}

TEST(serialize_refuses_bad_bindings)
{
        struct lp_bind dup[2] = { good_binds[0], good_binds[0] };
        struct lp_bind b;
        struct lp_file m = bound_meta();
        void *sec = NULL;
        size_t size;

        m.binds = &b;
        m.n_binds = 1;
        b = good_binds[0];
        b.sym = NULL;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        b = good_binds[0];
        b.name = "";
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        b = good_binds[0];
        b.sym = "a\033b";
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        b = good_binds[0];
        b.flags = LP_BIND_LOCAL;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        b.flags = LP_BIND_FUNC | LP_BIND_DATA;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        b.flags = LP_BIND_FUNC | 0x100;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m.binds = dup;
        m.n_binds = 2;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m.binds = NULL;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        m.binds = good_binds;
        m.n_binds = LP_MAX_BINDS + 1;
        CHECK_ERR(lp_meta_serialize(&m, &sec, &size), EINVAL);
        CHECK(sec == NULL);
}

TAP_MAIN()
