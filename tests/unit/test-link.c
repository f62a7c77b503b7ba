/* Tests of the patch linker: compile real patch objects with gcc (as
 * `liveup build` does), link them for an address in this very process,
 * copy them there and call them. The patch uses this program's functions
 * and variables, libc functions and data far away, its own statics and
 * strings: every relocation kind gcc emits for such code, at -O0 and -O2,
 * with the image near the program (direct rel32) and far from it (stubs
 * and GOT slots), and with its data part apart from its code (as when
 * both are carved from an arena). */
#include "tap.h"

#include "livepatch/link.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

int host_counter = 100;
__attribute__((noinline)) int host_add(int a, int b);
__attribute__((noinline)) int host_add(int a, int b)
{
        return a + b;
}

static const char patch_src[] =
        "#include <string.h>\n"
        "#include <unistd.h>\n"
        "extern int host_counter;\n"
        "extern int host_add(int, int);\n"
        "extern char **environ;\n"
        "static int local_data = 5;\n"
        "static int bss_data;\n"
        "const char *msg = \"hello\";\n"
        "static int helper(int x) { return x * 3; }\n"
        "int (*fnptr)(int) = helper;\n"
        "int patched(int x)\n"
        "{\n"
        "        host_counter += x;\n"
        "        bss_data++;\n"
        "        return host_add(x, local_data) + (int)strlen(msg) + fnptr(1) + bss_data;\n"
        "}\n"
        "long call_far(void) { return (long)getpid(); }\n"
        "long read_far_data(void) { return (long)environ; }\n";

static char *compile(const char *opt)
{
        static char dir[] = "/tmp/liveup-test-link.XXXXXX";
        char src[128], obj[128], cmd[512];
        int fd;

        if (!mkdtemp(dir) && errno != EEXIST)
                return NULL;
        snprintf(src, sizeof(src), "%s/patch.c", dir);
        snprintf(obj, sizeof(obj), "%s/patch%s.o", dir, opt);
        fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        CHECK(write(fd, patch_src, sizeof(patch_src) - 1) == (ssize_t)sizeof(patch_src) - 1);
        close(fd);
        snprintf(cmd, sizeof(cmd),
                 "gcc -c %s -fPIC -ffunction-sections -fdata-sections -fno-common -o %s %s",
                 opt, obj, src);
        CHECK(system(cmd) == 0);
        return strdup(obj);
}

static void *read_all(const char *path, size_t *ret_size)
{
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        void *buf;

        CHECK(fd >= 0);
        CHECK(fstat(fd, &st) == 0);
        buf = malloc((size_t)st.st_size);
        CHECK(buf);
        CHECK(read(fd, buf, (size_t)st.st_size) == st.st_size);
        close(fd);
        *ret_size = (size_t)st.st_size;
        return buf;
}

static int resolve(void *userdata, const char *name, uint64_t *ret, struct errbuf *err)
{
        void *p;

        if (strcmp(name, "host_counter") == 0)
                p = &host_counter;
        else if (strcmp(name, "host_add") == 0)
                p = (void *)host_add;
        else
                p = dlsym(RTLD_DEFAULT, name);
        if (!p) {
                errbuf_set(err, "symbol '%s' not found", name);
                return -ENOENT;
        }
        *ret = (uint64_t)(uintptr_t)p;
        return 0;
}

/* split: the data part 64 MiB above the code, not right after it. */
static void link_and_call(const char *opt, bool near, bool split)
{
        _cleanup_free_ char *obj = compile(opt);
        _cleanup_(lp_image_freep) struct lp_image *img = NULL;
        struct errbuf e = {};
        size_t osize, size, text_size;
        _cleanup_free_ void *o = read_all(obj, &osize);
        void *hint, *mem, *data = NULL;
        uint64_t a;

        CHECK_OK(lp_link_size(o, osize, &size, &text_size, NULL, &e));
        hint = near ? (void *)(((uintptr_t)host_add + (256u << 20)) & ~(uintptr_t)4095) : NULL;
        mem = mmap(hint, split ? (64u << 20) + size - text_size : size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(mem != MAP_FAILED);
        if (split) {
                data = (uint8_t *)mem + (64u << 20);
                CHECK_OK(lp_link_split(o, osize, (uint64_t)(uintptr_t)mem,
                                       (uint64_t)(uintptr_t)data, resolve, NULL, &img, &e));
                CHECK(img->text_size == text_size);
                CHECK(img->data_base == (uint64_t)(uintptr_t)data);
                CHECK(lp_image_addr(img, text_size) == (uint64_t)(uintptr_t)data);
                memcpy(mem, img->buf, img->text_size);
                memcpy(data, img->buf + img->text_size, img->size - img->text_size);
        } else {
                CHECK_OK(lp_link(o, osize, (uint64_t)(uintptr_t)mem, resolve, NULL, &img, &e));
                CHECK(img->data_base == (uint64_t)(uintptr_t)mem + img->text_size);
                memcpy(mem, img->buf, img->size);
        }
        CHECK(img->size == size);
        CHECK(mprotect(mem, img->text_size, PROT_READ | PROT_EXEC) == 0);
        if (near)
                CHECK(img->n_stubs >= 1); /* strlen/getpid live far away */

        CHECK_OK(lp_image_lookup(img, "patched", &a, NULL));
        int (*patched)(int) = (int (*)(int))(uintptr_t)a;
        host_counter = 100;
        /* host_add(7, 5) + strlen("hello") + helper(1) + ++bss */
        CHECK(patched(7) == 12 + 5 + 3 + 1);
        CHECK(host_counter == 107);
        CHECK(patched(1) == 6 + 5 + 3 + 2);

        CHECK_OK(lp_image_lookup(img, "call_far", &a, NULL));
        CHECK(((long (*)(void))(uintptr_t)a)() == (long)getpid());
        CHECK_OK(lp_image_lookup(img, "read_far_data", &a, NULL));
        CHECK(((long (*)(void))(uintptr_t)a)() == (long)environ);
        CHECK_ERR(lp_image_lookup(img, "nonexistent", &a, NULL), ENOENT);
        /* Its own data symbols are in the data part. */
        CHECK_OK(lp_image_lookup(img, "msg", &a, NULL));
        CHECK(a >= img->data_base && a < img->data_base + img->size - img->text_size);
        munmap(mem, split ? (64u << 20) + size - text_size : size);
}

TEST(link_o2_near)
{
        link_and_call("-O2", true, false);
}

TEST(link_o0_near)
{
        link_and_call("-O0", true, false);
}

TEST(link_o2_anywhere)
{
        link_and_call("-O2", false, false);
}

TEST(link_o0_anywhere)
{
        link_and_call("-O0", false, false);
}

TEST(link_o2_split)
{
        link_and_call("-O2", true, true);
}

TEST(link_o0_split_anywhere)
{
        link_and_call("-O0", false, true);
}

/* ---- The linked .eh_frame -------------------------------------------------- */

struct fde {
        uint64_t start, range;
};

static uint64_t uleb(const uint8_t **p, const uint8_t *end)
{
        uint64_t v = 0;
        unsigned shift = 0;

        for (;;) {
                CHECK(*p < end && shift < 64);
                uint8_t b = *(*p)++;
                v |= (uint64_t)(b & 0x7f) << shift;
                shift += 7;
                if (!(b & 0x80))
                        return v;
        }
}

/* The FDEs of an .eh_frame that lives at `vaddr`, decoded by hand (not
 * with libdw: this checks the bytes the linker wrote). gcc's CIEs for C
 * say "zR" with FDE addresses pc-relative, signed 4 bytes. */
static size_t decode_fdes(const uint8_t *buf, size_t size, uint64_t vaddr, struct fde *out,
                          size_t max)
{
        size_t off = 0, n = 0;
        uint8_t enc = 0xff;

        while (off + 8 <= size) {
                uint32_t len, id;

                memcpy(&len, buf + off, 4);
                if (len == 0)
                        break; /* terminator */
                CHECK(len != 0xffffffffu && len <= size - off - 4);
                memcpy(&id, buf + off + 4, 4);
                const uint8_t *p = buf + off + 8, *end = buf + off + 4 + len;
                if (id == 0) {
                        /* CIE: version, augmentation, code and data alignment,
                         * return-address column, augmentation data. */
                        CHECK(*p == 1 || *p == 3);
                        uint8_t version = *p++;
                        CHECK(end - p > 3 && strcmp((const char *)p, "zR") == 0);
                        p += 3;
                        (void)uleb(&p, end);
                        (void)uleb(&p, end); /* sleb: the size is the same */
                        if (version == 1)
                                p++;
                        else
                                (void)uleb(&p, end);
                        CHECK(uleb(&p, end) == 1);
                        CHECK(p < end);
                        enc = *p;
                } else {
                        int32_t rel;
                        uint32_t range;

                        /* DW_EH_PE_pcrel | DW_EH_PE_sdata4 */
                        CHECK(enc == 0x1b);
                        CHECK(end - p >= 8 && n < max);
                        memcpy(&rel, p, 4);
                        memcpy(&range, p + 4, 4);
                        out[n].start = vaddr + (uint64_t)(p - buf) + (uint64_t)(int64_t)rel;
                        out[n].range = range;
                        n++;
                }
                off += 4 + len;
        }
        return n;
}

/* Every function of the patch has an FDE, and after linking the FDE
 * covers the function where it was linked: the .eh_frame relocations
 * (R_X86_64_PC32 against each .text.* section) were applied like any
 * other. In the object itself those fields are 0. */
static void check_eh_frame(const char *opt, bool near, bool split)
{
        _cleanup_free_ char *obj = compile(opt);
        _cleanup_(lp_image_freep) struct lp_image *img = NULL;
        struct errbuf e = {};
        size_t osize, size, n, n_funcs = 0;
        _cleanup_free_ void *o = read_all(obj, &osize);
        struct fde fdes[32];
        uint64_t base;

        CHECK_OK(lp_link_size(o, osize, &size, NULL, NULL, &e));
        base = near ? ((uint64_t)(uintptr_t)host_add + (256u << 20)) & ~4095ull : 0x10000000;
        CHECK_OK(lp_link_split(o, osize, base, split ? base + (64u << 20) : 0, resolve, NULL,
                               &img, &e));
        CHECK(img->eh_frame_size > 0);
        CHECK(img->eh_frame_off >= img->text_size);
        CHECK(img->eh_frame_off + img->eh_frame_size <= img->size);
        n = decode_fdes(img->buf + img->eh_frame_off, img->eh_frame_size,
                        lp_image_addr(img, img->eh_frame_off), fdes, ELEMENTSOF(fdes));
        for (size_t i = 0; i < img->n_syms; i++) {
                const struct lp_image_sym *s = &img->syms[i];
                bool found = false;

                if (!s->func)
                        continue;
                n_funcs++;
                CHECK(s->addr >= base && s->addr + s->size <= base + img->text_size);
                for (size_t k = 0; k < n; k++)
                        if (fdes[k].start == s->addr && fdes[k].range == s->size)
                                found = true;
                if (!found)
                        printf("# no FDE for %s at 0x%llx (%llu bytes)\n", s->name,
                               (unsigned long long)s->addr, (unsigned long long)s->size);
                CHECK(found);
        }
        /* patched, helper, call_far, read_far_data */
        CHECK(n_funcs == 4);
        CHECK(n == n_funcs);
}

TEST(eh_frame_o2_near)
{
        check_eh_frame("-O2", true, false);
}

TEST(eh_frame_o0_anywhere)
{
        check_eh_frame("-O0", false, false);
}

/* The FDEs (in the data part) still point at the code, 64 MiB below. */
TEST(eh_frame_o2_split)
{
        check_eh_frame("-O2", true, true);
}

static int resolve_none(void *userdata, const char *name, uint64_t *ret, struct errbuf *err)
{
        errbuf_set(err, "symbol '%s' not found in the target", name);
        return -ENOENT;
}

TEST(missing_symbol_is_named)
{
        _cleanup_free_ char *obj = compile("-O2");
        _cleanup_(lp_image_freep) struct lp_image *img = NULL;
        struct errbuf e = {};
        size_t osize;
        _cleanup_free_ void *o = read_all(obj, &osize);

        CHECK_ERR(lp_link(o, osize, 0x10000000, resolve_none, NULL, &img, &e), ENOENT);
        CHECK(strstr(e.msg, "not found in the target") != NULL);
        CHECK(img == NULL);
}

TEST(rejects_garbage_and_truncation)
{
        _cleanup_free_ char *obj = compile("-O2");
        struct errbuf e = {};
        size_t osize, size;
        _cleanup_free_ uint8_t *o = read_all(obj, &osize);

        CHECK(lp_link_size("junk", 4, &size, NULL, NULL, &e) < 0);
        /* Every truncation fails cleanly or links; none crashes. */
        for (size_t n = 0; n < osize; n += 7) {
                struct lp_image *img = NULL;
                int r = lp_link(o, n, 0x10000000, resolve, NULL, &img, &e);
                if (r == 0)
                        lp_image_free(img);
        }
        /* Flipped bytes, likewise. */
        for (size_t i = 0; i < osize; i += 3) {
                struct lp_image *img = NULL;
                o[i] ^= 0xa5;
                if (lp_link(o, osize, 0x10000000, resolve, NULL, &img, &e) == 0)
                        lp_image_free(img);
                o[i] ^= 0xa5;
        }
}

TAP_MAIN()
