/* Tests of the .lpo reader and writer (src/livepatch/format.c).
 *
 * Patch objects are made here with libelf, so every field can be set to
 * exactly the bad value a test needs: an ET_REL object of this ISA with a
 * .text holding two functions, a .data holding a variable and a function
 * symbol that lies in data, an absolute "function", an undefined symbol,
 * and a .liveup section with metadata from lp_meta_serialize() (or bytes
 * the test crafted). Every bad input must give its error code and a
 * message naming the file, never a crash (CI runs this under ASan/UBSan). */
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
        static const char strtab[] = "\0local_fn\0data_obj\0fix_fn\0printf\0in_data\0abs_fn";
        enum { S_LOCAL_FN = 1, S_DATA_OBJ = 10, S_FIX_FN = 19, S_PRINTF = 26, S_IN_DATA = 33,
               S_ABS_FN = 41 };
        Elf64_Sym syms[7] = {};
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

TEST(truncated_section_every_length)
{
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = good_section(&size);
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

TEST(header_byte_flips)
{
        static const uint8_t values[] = { 0x00, 0xff, 0x7f, 0x80, 0x01 };
        _cleanup_free_ uint8_t *sec = NULL;
        size_t size;

        sec = good_section(&size);
        /* Every byte of the header and the first function entry, each to
         * several values: a clean result or a clean error. */
        for (size_t off = 0; off < sizeof(struct lp_meta_header) + sizeof(struct lp_meta_func);
             off++)
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
        put32(sec, HOFF(header_size), sizeof(struct lp_meta_header) - 8);
        expect_section_error(sec, size, EBADMSG, "header size");
        put32(sec, HOFF(header_size), 0xffffffffu);
        expect_section_error(sec, size, EBADMSG, "header size");
        put32(sec, HOFF(header_size), (uint32_t)size + 8);
        expect_section_error(sec, size, EBADMSG, "truncated header");
        /* The header must fit even when the tables are placed after it. */
        put32(sec, HOFF(header_size), sizeof(struct lp_meta_header) + 8);
        expect_section_error(sec, size, EBADMSG, "function table");
}

/* A newer minor version: a longer header and longer function entries,
 * with unknown trailing fields. */
TEST(newer_minor_version_accepted)
{
        _cleanup_free_ uint8_t *sec = NULL, *big = NULL;
        _cleanup_(lp_file_freep) struct lp_file *f = NULL;
        const size_t hs = sizeof(struct lp_meta_header), fs = sizeof(struct lp_meta_func);
        const size_t hx = hs + 32, fx = fs + 24;
        struct errbuf err = {};
        size_t size, strtab_size, big_size;
        uint32_t strtab_off;

        sec = good_section(&size);
        strtab_off = get32(sec, HOFF(strtab_off));
        strtab_size = get32(sec, HOFF(strtab_size));
        big_size = hx + 2 * fx + strtab_size;
        big = malloc(big_size);
        CHECK(big);
        memset(big, 0xa5, big_size); /* unknown fields: any value */
        memcpy(big, sec, hs);
        for (size_t i = 0; i < 2; i++)
                memcpy(big + hx + i * fx, sec + hs + i * fs, fs);
        memcpy(big + hx + 2 * fx, sec + strtab_off, strtab_size);
        put32(big, HOFF(header_size), (uint32_t)hx);
        put32(big, HOFF(funcs_off), (uint32_t)hx);
        put32(big, HOFF(func_size), (uint32_t)fx);
        put32(big, HOFF(strtab_off), (uint32_t)(hx + 2 * fx));
        CHECK_OK(parse_section(big, big_size, &f, &err));
        CHECK(f->n_funcs == 2);
        CHECK_STREQ(f->funcs[1].name, "count_items");
        CHECK(f->funcs[1].addr == 0x1200);
        CHECK_STREQ(f->target, "/usr/bin/victim");
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
TEST(random_damage)
{
        _cleanup_free_ uint8_t *sec = NULL;
        _cleanup_free_ uint8_t *img = NULL;
        struct obj_spec s = {};
        uint64_t seed = 0x2545f4914f6cdd1dull;
        size_t n, size;

        sec = good_section(&size);
        s.meta = sec;
        s.meta_size = size;
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
        CHECK(sec == NULL);
}

TAP_MAIN()
