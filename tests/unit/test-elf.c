/* Unit tests of src/elf: opening and checking ELF files, build-ids,
 * sections, the merged symbol table (globals, ambiguous locals, symbols
 * from a separate debug file), address-to-symbol lookups, reading bytes at
 * a virtual address, and a process's view (this test process, the vdso,
 * and fixture programs started as children). Hostile input (garbage,
 * truncation, random corruption) must give an error, never a crash.
 *
 * The fixtures are built by fixtures/meson.build into FX_DIR. */
#include "tap.h"

#include "elf/elf-internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define FX_PIE FX_DIR "/fx-pie"
#define FX_NOPIE FX_DIR "/fx-nopie"
#define FX_LIB FX_DIR "/libfx.so"
#define FX_STRIPPED FX_DIR "/fx-pie.stripped"
#define FX_DEBUG FX_DIR "/fx-pie.debug"
#define FX_OBJ FX_DIR "/fx-a.o"

/* A function of this binary to find in our own process. */
__attribute__((noinline, used)) int test_elf_marker(int x);
__attribute__((noinline, used)) int test_elf_marker(int x)
{
        return x * 37 + (int)getpid();
}

/* A variable of this binary (file scope: a function-scope static gets a
 * ".N" suffix in .symtab). */
static int data_marker = 1;

/* Build-id as `readelf -n` prints it, or "" when none. */
static void readelf_build_id(const char *path, char *buf, size_t size)
{
        char cmd[PATH_MAX + 64], line[512];
        FILE *p;

        buf[0] = 0;
        snprintf(cmd, sizeof(cmd), "LC_ALL=C readelf -n '%s' 2>/dev/null", path);
        p = popen(cmd, "r");
        CHECK(p);
        while (fgets(line, sizeof(line), p)) {
                char *s = strstr(line, "Build ID: ");
                if (s) {
                        s += strlen("Build ID: ");
                        s[strcspn(s, " \n")] = 0;
                        snprintf(buf, size, "%s", s);
                }
        }
        pclose(p);
}

static int run(const char *cmd)
{
        int r = system(cmd);
        return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static const struct elf_symbol *must_lookup(const struct elf_file *f, const char *name)
{
        const struct elf_symbol *s = NULL;
        struct errbuf err = {};
        int r = elf_file_lookup(f, name, &s, &err);

        if (r < 0)
                fprintf(stderr, "lookup %s: %s\n", name, errbuf_or_strerror(&err, r));
        CHECK_OK(r);
        CHECK(s);
        return s;
}

static void exe_path(char *buf, size_t size)
{
        ssize_t n = readlink("/proc/self/exe", buf, size - 1);
        CHECK(n > 0);
        buf[n] = 0;
}

TEST(pie_header_and_build_id)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        struct errbuf err = {};
        char want[256];
        const uint8_t *id;
        size_t len;

        CHECK_OK(elf_file_open(FX_PIE, &f, &err));
        CHECK_STREQ(elf_file_path(f), FX_PIE);
        CHECK(elf_file_type(f) == ET_DYN);
        CHECK(elf_file_load_base(f) == 0);
        readelf_build_id(FX_PIE, want, sizeof(want));
        CHECK(want[0]);
        CHECK_STREQ(elf_file_build_id_hex(f), want);
        CHECK_OK(elf_file_build_id(f, &id, &len));
        CHECK(len * 2 == strlen(want));
        CHECK(elf_file_debug_path(f) == NULL); /* it has a .symtab */
}

TEST(nopie_header_and_build_id)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        char want[256];

        CHECK_OK(elf_file_open(FX_NOPIE, &f, NULL));
        CHECK(elf_file_type(f) == ET_EXEC);
        CHECK(elf_file_load_base(f) == 0x400000);
        readelf_build_id(FX_NOPIE, want, sizeof(want));
        CHECK(want[0]);
        CHECK_STREQ(elf_file_build_id_hex(f), want);
}

TEST(sections)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        struct elf_section sec;

        CHECK_OK(elf_file_open(FX_PIE, &f, NULL));
        CHECK_OK(elf_file_section(f, ".text", &sec));
        CHECK_STREQ(sec.name, ".text");
        CHECK(sec.type == SHT_PROGBITS);
        CHECK(sec.flags & SHF_EXECINSTR);
        CHECK(sec.size > 0 && sec.addr > 0);
        CHECK_OK(elf_file_section(f, ".note.gnu.build-id", &sec));
        CHECK(sec.type == SHT_NOTE);
        CHECK_ERR(elf_file_section(f, ".no-such-section", &sec), ENOENT);
}

TEST(lookup_globals)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        const struct elf_symbol *s, *t;
        uint64_t off;

        CHECK_OK(elf_file_open(FX_NOPIE, &f, NULL));
        s = must_lookup(f, "fx_main_work");
        CHECK(s->type == ELF_SYM_FUNC && !s->local && s->size > 0);
        CHECK(s->addr >= 0x400000);
        CHECK(s->file == NULL);
        s = must_lookup(f, "fx_global_counter");
        CHECK(s->type == ELF_SYM_OBJECT && !s->local && s->size == sizeof(int));
        /* A global and the symbol found at its address agree. */
        s = must_lookup(f, "fx_a_bump");
        CHECK_OK(elf_file_symbol_for(f, s->addr + 1, &t, &off));
        CHECK(t == s && off == 1);
        CHECK(elf_file_n_symbols(f) > 10);
        CHECK(elf_file_symbol_at_index(f, elf_file_n_symbols(f)) == NULL);
}

TEST(lookup_ambiguous_locals)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        const struct elf_symbol *s = NULL, *all[4];
        struct errbuf err = {};
        char want[64];

        CHECK_OK(elf_file_open(FX_PIE, &f, NULL));
        CHECK_ERR(elf_file_lookup(f, "helper", &s, &err), ENOTUNIQ);
        CHECK(s == NULL);
        fprintf(stderr, "# %s\n", err.msg);
        CHECK(strncmp(err.msg, "symbol 'helper' is ambiguous: 0x", 32) == 0);
        CHECK(strstr(err.msg, " (fx-a.c)"));
        CHECK(strstr(err.msg, ", 0x"));
        CHECK(strstr(err.msg, " (fx-b.c)"));

        CHECK(elf_file_lookup_all(f, "helper", all, ELEMENTSOF(all)) == 2);
        CHECK(all[0]->local && all[1]->local);
        CHECK(all[0]->addr != all[1]->addr);
        CHECK(all[0]->type == ELF_SYM_FUNC && all[0]->source == ELF_SRC_SYMTAB);
        CHECK(all[0]->file && all[1]->file);
        CHECK(strcmp(all[0]->file, all[1]->file) != 0);
        snprintf(want, sizeof(want), "0x%" PRIx64 " (%s)", all[0]->addr, all[0]->file);
        CHECK(strstr(err.msg, want));

        CHECK_ERR(elf_file_lookup(f, "counter", &s, &err), ENOTUNIQ);
        CHECK(elf_file_lookup_all(f, "counter", all, 1) == 2);
        CHECK(all[0]->type == ELF_SYM_OBJECT);
}

TEST(lookup_not_found)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        const struct elf_symbol *s = NULL;
        struct errbuf err = {};

        CHECK_OK(elf_file_open(FX_PIE, &f, NULL));
        CHECK_ERR(elf_file_lookup(f, "no_such_symbol", &s, &err), ENOENT);
        CHECK_STREQ(err.msg, "symbol 'no_such_symbol' not found in '" FX_PIE "'");
        CHECK(elf_file_lookup_all(f, "no_such_symbol", NULL, 0) == 0);
        /* Undefined references (printf from libc) are not symbols here. */
        CHECK_ERR(elf_file_lookup(f, "printf", &s, NULL), ENOENT);
}

TEST(shared_library_and_dedup)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        const struct elf_symbol *s, *all[4];
        struct errbuf err = {};

        CHECK_OK(elf_file_open(FX_LIB, &f, NULL));
        CHECK(elf_file_type(f) == ET_DYN);
        /* In both .dynsym and .symtab: one symbol. */
        CHECK(elf_file_lookup_all(f, "fx_lib_entry", all, ELEMENTSOF(all)) == 1);
        CHECK(all[0]->source == ELF_SRC_DYNSYM);
        s = must_lookup(f, "fx_lib_value");
        CHECK(s->type == ELF_SYM_OBJECT && !s->local);
        CHECK_ERR(elf_file_lookup(f, "helper", &s, &err), ENOTUNIQ);
}

TEST(symbol_for)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        const struct elf_symbol *s, *t;
        uint64_t off = 0;
        size_t n_checked = 0;

        CHECK_OK(elf_file_open(FX_PIE, &f, NULL));
        for (size_t i = 0; i < elf_file_n_symbols(f); i++) {
                s = elf_file_symbol_at_index(f, i);
                CHECK(s && s->name && s->name[0]);
                if (s->type != ELF_SYM_FUNC || s->size == 0)
                        continue;
                CHECK_OK(elf_file_symbol_for(f, s->addr + s->size - 1, &t, &off));
                CHECK(t->addr == s->addr && off == s->size - 1);
                n_checked++;
        }
        CHECK(n_checked >= 5);
        CHECK_ERR(elf_file_symbol_for(f, 0, &t, &off), ENOENT);
        CHECK_ERR(elf_file_symbol_for(f, UINT64_MAX, &t, &off), ENOENT);
        /* Just past the end of a function, before the next: not in it. */
        s = must_lookup(f, "fx_main_work");
        if (elf_file_symbol_for(f, s->addr + s->size, &t, &off) == 0)
                CHECK(t != s);
}

TEST(relocatable_object)
{
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        const struct elf_symbol *s;
        uint8_t b[4];

        CHECK_OK(elf_file_open(FX_OBJ, &f, NULL));
        CHECK(elf_file_type(f) == ET_REL);
        CHECK(elf_file_load_base(f) == 0);
        s = must_lookup(f, "helper"); /* one file: not ambiguous */
        CHECK(s->local && s->type == ELF_SYM_FUNC);
        CHECK_STREQ(s->file, "fx-a.c");
        CHECK_ERR(elf_file_lookup(f, "fx_b_bump", &s, NULL), ENOENT);
        CHECK_ERR(elf_file_read_vaddr(f, 0, b, sizeof(b)), EFAULT);
}

/* Lay out ROOT/.build-id/xx/rest.debug -> `target`. */
static void make_debug_root(char *root, const char *hex, const char *target)
{
        _cleanup_free_ char *top = NULL, *dir = NULL, *link = NULL;

        CHECK(mkdtemp(root));
        CHECK(asprintf(&top, "%s/.build-id", root) > 0);
        CHECK(mkdir(top, 0755) == 0);
        CHECK(asprintf(&dir, "%s/%.2s", top, hex) > 0);
        CHECK(mkdir(dir, 0755) == 0);
        CHECK(asprintf(&link, "%s/%s.debug", dir, hex + 2) > 0);
        CHECK(symlink(target, link) == 0);
}

TEST(separate_debug_file)
{
        _cleanup_(elf_file_freep) struct elf_file *plain = NULL, *f = NULL, *g = NULL;
        const struct elf_symbol *s, *all[4];
        char root[] = "/tmp/test-elf-debug-XXXXXX", cmd[PATH_MAX + 32];

        CHECK_OK(elf_file_open(FX_PIE, &plain, NULL));

        /* No debug file: only .dynsym, no statics. */
        CHECK(setenv("LIVEUP_DEBUG_ROOT", "/nonexistent", 1) == 0);
        CHECK_OK(elf_file_open(FX_STRIPPED, &g, NULL));
        CHECK(elf_file_debug_path(g) == NULL);
        CHECK_STREQ(elf_file_build_id_hex(g), elf_file_build_id_hex(plain));
        CHECK_ERR(elf_file_lookup(g, "helper", &s, NULL), ENOENT);

        make_debug_root(root, elf_file_build_id_hex(plain), FX_DEBUG);
        CHECK(setenv("LIVEUP_DEBUG_ROOT", root, 1) == 0);
        CHECK_OK(elf_file_open(FX_STRIPPED, &f, NULL));
        CHECK(elf_file_debug_path(f));
        CHECK(strncmp(elf_file_debug_path(f), root, strlen(root)) == 0);
        CHECK(elf_file_lookup_all(f, "helper", all, ELEMENTSOF(all)) == 2);
        CHECK(all[0]->source == ELF_SRC_DEBUG && all[0]->local && all[0]->file);
        /* Same addresses as in the unstripped file. */
        s = must_lookup(f, "fx_main_work");
        CHECK(s->addr == must_lookup(plain, "fx_main_work")->addr);
        CHECK(elf_file_n_symbols(f) == elf_file_n_symbols(plain));

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        run(cmd);
}

TEST(debug_file_with_wrong_build_id_is_ignored)
{
        _cleanup_(elf_file_freep) struct elf_file *plain = NULL, *f = NULL;
        const struct elf_symbol *s;
        char root[] = "/tmp/test-elf-debug-XXXXXX", cmd[PATH_MAX + 32];

        CHECK_OK(elf_file_open(FX_PIE, &plain, NULL));
        /* Right place, wrong file (another build-id). */
        make_debug_root(root, elf_file_build_id_hex(plain), FX_NOPIE);
        CHECK(setenv("LIVEUP_DEBUG_ROOT", root, 1) == 0);
        CHECK_OK(elf_file_open(FX_STRIPPED, &f, NULL));
        CHECK(elf_file_debug_path(f) == NULL);
        CHECK_ERR(elf_file_lookup(f, "helper", &s, NULL), ENOENT);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        run(cmd);
}

TEST(read_vaddr_matches_this_process)
{
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        struct elf_file *f = NULL;
        const struct procfs_object *o = NULL;
        const struct elf_symbol *s;
        uint64_t bias = 0;
        uint8_t buf[32];
        char exe[PATH_MAX];

        exe_path(exe, sizeof(exe));
        CHECK_OK(elf_proc_new(getpid(), &p, NULL));
        CHECK_OK(elf_proc_object(p, exe, NULL, &f, &bias, &o));
        CHECK_STREQ(o->path, exe);
        s = must_lookup(f, "test_elf_marker");
        CHECK(bias + s->addr == (uint64_t)(uintptr_t)test_elf_marker);
        CHECK(s->size > 0);
        CHECK_OK(elf_file_read_vaddr(f, s->addr, buf, MIN(sizeof(buf), s->size)));
        CHECK(memcmp(buf, (const void *)(uintptr_t)(bias + s->addr),
                     MIN(sizeof(buf), s->size)) == 0);
        /* Outside every PT_LOAD, or running off the end of one. */
        CHECK_ERR(elf_file_read_vaddr(f, 0x7fffffff0000ull, buf, 1), EFAULT);
        CHECK_ERR(elf_file_read_vaddr(f, s->addr, buf, SIZE_MAX), EFAULT);
}

TEST(proc_object_by_build_id_and_alias_path)
{
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        _cleanup_(elf_file_freep) struct elf_file *libc = NULL;
        struct elf_file *f = NULL, *g = NULL;
        const struct procfs_object *o = NULL;
        uint64_t bias = 0;
        char exe[PATH_MAX];

        exe_path(exe, sizeof(exe));
        CHECK_OK(elf_proc_new(getpid(), &p, NULL));
        CHECK_OK(elf_proc_object(p, exe, NULL, &f, NULL, NULL));
        CHECK_OK(elf_proc_object(p, NULL, elf_file_build_id_hex(f), &g, &bias, &o));
        CHECK(g == f);
        CHECK_STREQ(o->path, exe);
        CHECK_ERR(elf_proc_object(p, exe, "00112233", NULL, NULL, NULL), ENOENT);
        CHECK_ERR(elf_proc_object(p, "/nonexistent/lib.so", NULL, NULL, NULL, NULL), ENOENT);
        /* libc through the name it has in /lib (a symlink on merged /usr). */
        if (access("/lib/x86_64-linux-gnu/libc.so.6", F_OK) == 0) {
                CHECK_OK(elf_proc_object(p, "/lib/x86_64-linux-gnu/libc.so.6", NULL, &g, NULL,
                                         &o));
                CHECK(strstr(o->path, "libc.so.6"));
        }
}

TEST(proc_locate_self_and_libc)
{
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        struct elf_location loc;
        void *getpid_addr = dlsym(RTLD_DEFAULT, "getpid");
        char exe[PATH_MAX];
        void *anon;

        exe_path(exe, sizeof(exe));
        CHECK(getpid_addr);
        anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(anon != MAP_FAILED);
        CHECK_OK(elf_proc_new(getpid(), &p, NULL));
        CHECK(elf_proc_maps(p)->n > 5);

        CHECK_OK(elf_proc_locate(p, (uint64_t)(uintptr_t)test_elf_marker + 3, &loc));
        CHECK_STREQ(loc.object, exe);
        CHECK_STREQ(loc.function, "test_elf_marker");
        CHECK(loc.function_offset == 3);

        CHECK_OK(elf_proc_locate(p, (uint64_t)(uintptr_t)getpid_addr, &loc));
        CHECK(strstr(loc.object, "/libc.so.6"));
        CHECK_STREQ(loc.function, "getpid");
        CHECK(loc.function_offset == 0);
        CHECK(loc.object_offset < (uint64_t)(uintptr_t)getpid_addr);

        /* A static variable: an object of this binary. */
        CHECK_OK(elf_proc_locate(p, (uint64_t)(uintptr_t)&data_marker, &loc));
        CHECK_STREQ(loc.object, exe);
        CHECK_STREQ(loc.function, "data_marker");

        CHECK_ERR(elf_proc_locate(p, (uint64_t)(uintptr_t)anon, &loc), ENOENT);
        CHECK(loc.object == NULL);
        CHECK_ERR(elf_proc_locate(p, 0, &loc), ENOENT);
        munmap(anon, 4096);
}

TEST(proc_with_another_mapping_of_the_same_file)
{
        _cleanup_(elf_file_freep) struct elf_file *mine = NULL, *libc = NULL;
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        struct elf_location loc;
        void *getpid_addr = dlsym(RTLD_DEFAULT, "getpid");
        char exe[PATH_MAX];

        /* Opening a file maps it (read-only, from offset 0) a second time:
         * that mapping must not be taken for the loaded image. */
        exe_path(exe, sizeof(exe));
        CHECK_OK(elf_file_open(exe, &mine, NULL));
        CHECK(mine->raw);
        Dl_info info;
        CHECK(dladdr(getpid_addr, &info) && info.dli_fname);
        CHECK_OK(elf_file_open(info.dli_fname, &libc, NULL));
        CHECK_OK(elf_proc_new(getpid(), &p, NULL));

        CHECK_OK(elf_proc_locate(p, (uint64_t)(uintptr_t)test_elf_marker, &loc));
        CHECK_STREQ(loc.function, "test_elf_marker");
        CHECK_OK(elf_proc_locate(p, (uint64_t)(uintptr_t)getpid_addr, &loc));
        CHECK_STREQ(loc.function, "getpid");
        CHECK_OK(elf_proc_locate(p, (uint64_t)(uintptr_t)mine->raw + 0x40, &loc));
        CHECK_STREQ(loc.object, exe);
        CHECK(loc.function == NULL);
}

/* Exported lookups (the fast .gnu.hash path, and the full tables) find
 * what the dynamic linker finds: dlsym() in this process, for libc. */
TEST(lookup_exported_matches_the_dynamic_linker)
{
        static const char *const names[] = {
                "opendir", "readdir", "closedir", "printf", "malloc", "realpath",
                "pthread_cond_wait", "sched_setaffinity", "nanosleep", "fopen", "environ",
                "__libc_single_threaded", "qsort",
        };
        _cleanup_(elf_file_freep) struct elf_file *fast = NULL, *full = NULL;
        void *getpid_addr = dlsym(RTLD_DEFAULT, "getpid");
        struct elf_symbol s;
        Dl_info info;

        CHECK(dladdr(getpid_addr, &info) && info.dli_fname);
        CHECK_OK(elf_file_open(info.dli_fname, &fast, NULL));
        CHECK_OK(elf_file_open(info.dli_fname, &full, NULL));
        CHECK(elf_file_n_symbols(full) > 1000); /* builds the full tables */
        CHECK(fast->symbols_state == 0);
        /* libc's own definitions (under ASan, RTLD_DEFAULT finds its
         * interceptors first). */
        void *libc = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        CHECK(libc);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                void *want = dlsym(libc, names[i]);
                uint64_t base = (uint64_t)(uintptr_t)info.dli_fbase;

                CHECK(want);
                CHECK_OK(elf_file_lookup_exported(fast, names[i], &s));
                CHECK_STREQ(s.name, names[i]);
                CHECK(base + s.addr == (uint64_t)(uintptr_t)want);
                CHECK(!s.ifunc);
                CHECK_OK(elf_file_lookup_exported(full, names[i], &s));
                CHECK(base + s.addr == (uint64_t)(uintptr_t)want);
        }
        /* An IFUNC: the resolver, flagged (dlsym gives the implementation). */
        CHECK_OK(elf_file_lookup_exported(fast, "strlen", &s));
        CHECK(s.ifunc);
        {
                struct elf_symbol t;
                CHECK_OK(elf_file_lookup_exported(full, "strlen", &t));
                CHECK(t.ifunc);
                CHECK(t.addr == s.addr);
        }
        /* Not exported, or not there at all. */
        CHECK_ERR(elf_file_lookup_exported(fast, "no_such_symbol_here", &s), ENOENT);
        CHECK_ERR(elf_file_lookup_exported(full, "no_such_symbol_here", &s), ENOENT);
        /* The fast path never built the tables. */
        CHECK(fast->symbols_state == 0);
        dlclose(libc);
}

/* The IRELATIVE slot of an IFUNC holds, in a running process, what the
 * dynamic linker resolved it to: the same as dlsym() gives. */
TEST(irelative_slot_holds_the_resolved_ifunc)
{
        static const char *const names[] = { "strlen", "memcpy", "memset", "strcmp" };
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        void *getpid_addr = dlsym(RTLD_DEFAULT, "getpid");
        struct elf_symbol s;
        Dl_info info;
        void *libc;

        CHECK(dladdr(getpid_addr, &info) && info.dli_fname);
        CHECK_OK(elf_file_open(info.dli_fname, &f, NULL));
        libc = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
        CHECK(libc);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                uint64_t base = (uint64_t)(uintptr_t)info.dli_fbase, slot = 0, v;

                CHECK_OK(elf_file_lookup_exported(f, names[i], &s));
                CHECK(s.ifunc);
                CHECK_OK(elf_file_irelative_slot(f, s.addr, &slot));
                memcpy(&v, (const void *)(uintptr_t)(base + slot), sizeof(v));
                CHECK(v == (uint64_t)(uintptr_t)dlsym(libc, names[i]));
                CHECK(v != base + s.addr); /* the implementation, not the resolver */
        }
        /* Not an IFUNC: no slot. */
        CHECK_OK(elf_file_lookup_exported(f, "getpid", &s));
        uint64_t slot;
        CHECK_ERR(elf_file_irelative_slot(f, s.addr, &slot), ENOENT);
        dlclose(libc);
}

TEST(proc_vdso)
{
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        struct elf_file *f = NULL;
        const struct procfs_object *o = NULL;
        const struct elf_symbol *s;
        struct elf_location loc;
        uint64_t bias = 0;
        unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);

        if (!ehdr)
                tap_skip("no vdso");
        CHECK_OK(elf_proc_new(getpid(), &p, NULL));
        CHECK_OK(elf_proc_object(p, "[vdso]", NULL, &f, &bias, &o));
        CHECK(o->start == ehdr);
        CHECK(elf_file_type(f) == ET_DYN);
        s = must_lookup(f, "__vdso_clock_gettime");
        CHECK_OK(elf_proc_locate(p, bias + s->addr + 1, &loc));
        CHECK_STREQ(loc.object, "[vdso]");
        CHECK(loc.function);
        CHECK(strstr(loc.function, "clock_gettime"));
        CHECK(loc.function_offset == 1);
}

struct child {
        pid_t pid;
        int in, out;
        uint64_t reported; /* the address it printed */
};

/* Start a fixture program and wait until it says it is ready. */
static void child_start(const char *path, struct child *c)
{
        int in[2], out[2];
        char line[128] = {};
        ssize_t n;
        size_t len = 0;

        CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
        c->pid = fork();
        CHECK(c->pid >= 0);
        if (c->pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                execl(path, path, (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        c->in = in[1];
        c->out = out[0];
        while (len < sizeof(line) - 1 && !strchr(line, '\n')) {
                n = read(c->out, line + len, sizeof(line) - 1 - len);
                CHECK(n > 0);
                len += (size_t)n;
        }
        CHECK(sscanf(line, "ready %" SCNx64, &c->reported) == 1);
}

static void child_stop(struct child *c)
{
        int status;

        close(c->in);
        close(c->out);
        CHECK(waitpid(c->pid, &status, 0) == c->pid);
        CHECK(WIFEXITED(status));
}

static void check_fixture_process(const char *path, bool pie)
{
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        struct elf_file *f = NULL;
        const struct elf_symbol *s, *all[2];
        struct elf_location loc;
        struct child c;
        uint64_t bias = 0;
        uint8_t want[16], got[16];
        char mem[64];
        _cleanup_close_ int fd = -EBADF;

        child_start(path, &c);
        CHECK_OK(elf_proc_new(c.pid, &p, NULL));
        CHECK_OK(elf_proc_object(p, path, NULL, &f, &bias, NULL));
        CHECK(pie ? bias != 0 : bias == 0);
        s = must_lookup(f, "fx_main_work");
        CHECK(bias + s->addr == c.reported);

        CHECK_OK(elf_proc_locate(p, c.reported, &loc));
        CHECK_STREQ(loc.object, path);
        CHECK_STREQ(loc.function, "fx_main_work");
        CHECK(loc.function_offset == 0);
        CHECK(loc.object_offset == s->addr);

        /* The static helpers, each by its own address. */
        CHECK(elf_file_lookup_all(f, "helper", all, 2) == 2);
        for (int i = 0; i < 2; i++) {
                CHECK_OK(elf_proc_locate(p, bias + all[i]->addr + 2, &loc));
                CHECK_STREQ(loc.function, "helper");
                CHECK(loc.function_offset == 2);
        }

        /* The code in the file is the code in the process. */
        CHECK_OK(elf_file_read_vaddr(f, s->addr, want, sizeof(want)));
        snprintf(mem, sizeof(mem), "/proc/%d/mem", c.pid);
        fd = open(mem, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(pread(fd, got, sizeof(got), (off_t)c.reported) == (ssize_t)sizeof(got));
        CHECK(memcmp(want, got, sizeof(got)) == 0);
        child_stop(&c);
}

TEST(proc_fixture_pie)
{
        check_fixture_process(FX_PIE, true);
}

TEST(proc_fixture_nopie)
{
        check_fixture_process(FX_NOPIE, false);
}

TEST(proc_deleted_binary_via_map_files)
{
        _cleanup_(elf_proc_freep) struct elf_proc *p = NULL;
        struct elf_location loc;
        struct child c;
        char tmp[] = "/tmp/test-elf-fx-XXXXXX", cmd[PATH_MAX + 64];
        int fd = mkstemp(tmp);

        CHECK(fd >= 0);
        close(fd);
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 755 '%s'", FX_PIE, tmp, tmp);
        CHECK(run(cmd) == 0);
        child_start(tmp, &c);
        CHECK(unlink(tmp) == 0);
        CHECK_OK(elf_proc_new(c.pid, &p, NULL));
        CHECK_OK(elf_proc_locate(p, c.reported, &loc));
        CHECK_STREQ(loc.object, tmp);
        CHECK_STREQ(loc.function, "fx_main_work");
        child_stop(&c);
}

TEST(proc_no_such_process)
{
        struct elf_proc *p = NULL;
        struct errbuf err = {};

        CHECK(elf_proc_new(INT_MAX, &p, &err) < 0);
        CHECK(p == NULL);
        CHECK(strstr(err.msg, "pid"));
}

static void write_file(const char *path, const void *data, size_t size)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        CHECK(fd >= 0);
        CHECK(write(fd, data, size) == (ssize_t)size);
}

static uint8_t *read_whole(const char *path, size_t *ret_size)
{
        struct stat st;
        uint8_t *buf;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

        CHECK(fd >= 0 && fstat(fd, &st) == 0);
        buf = malloc((size_t)st.st_size);
        CHECK(buf);
        CHECK(read(fd, buf, (size_t)st.st_size) == st.st_size);
        *ret_size = (size_t)st.st_size;
        return buf;
}

TEST(not_elf_and_wrong_machine)
{
        struct elf_file *f = NULL;
        struct errbuf err = {};
        char path[] = "/tmp/test-elf-bad-XXXXXX", want[256];
        _cleanup_free_ uint8_t *img = NULL;
        size_t size;
        int fd = mkstemp(path);

        CHECK(fd >= 0);
        close(fd);
        write_file(path, "hello, world\n", 13);
        CHECK_ERR(elf_file_open(path, &f, &err), ENOEXEC);
        snprintf(want, sizeof(want), "'%s': not an ELF file", path);
        CHECK_STREQ(err.msg, want);

        write_file(path, "", 0);
        CHECK_ERR(elf_file_open(path, &f, &err), ENOEXEC);

        img = read_whole(FX_PIE, &size);
        img[18] = 183; /* e_machine = EM_AARCH64 */
        img[19] = 0;
        write_file(path, img, size);
        CHECK_ERR(elf_file_open(path, &f, &err), ENOEXEC);
        snprintf(want, sizeof(want), "'%s': ELF for machine 183, not this ISA", path);
        CHECK_STREQ(err.msg, want);
        CHECK(f == NULL);

        CHECK_ERR(elf_file_open("/nonexistent/file", &f, &err), ENOENT);
        CHECK_STREQ(err.msg, "'/nonexistent/file': No such file or directory");
        unlink(path);
}

/* Use whatever a damaged file yields, as a caller would. */
static void exercise(struct elf_file *f)
{
        const struct elf_symbol *s, *all[4];
        struct elf_section sec;
        uint8_t buf[64];
        uint64_t off;

        (void)elf_file_section(f, ".text", &sec);
        (void)elf_file_lookup(f, "helper", &s, NULL);
        (void)elf_file_lookup(f, "fx_main_work", &s, NULL);
        (void)elf_file_lookup_all(f, "counter", all, ELEMENTSOF(all));
        for (size_t i = 0; i < elf_file_n_symbols(f); i++) {
                s = elf_file_symbol_at_index(f, i);
                (void)strlen(s->name);
                (void)elf_file_symbol_for(f, s->addr, &s, &off);
                (void)elf_file_read_vaddr(f, s->addr, buf, sizeof(buf));
        }
}

TEST(truncated_files)
{
        _cleanup_free_ uint8_t *img = NULL;
        char path[] = "/tmp/test-elf-trunc-XXXXXX";
        size_t size;
        int fd = mkstemp(path);
        static const size_t cuts[] = { 1, 4, 16, 52, 63, 64, 100, 1000, 4096, 8192 };

        CHECK(fd >= 0);
        close(fd);
        img = read_whole(FX_PIE, &size);
        for (size_t i = 0; i <= ELEMENTSOF(cuts); i++) {
                size_t n = i < ELEMENTSOF(cuts) ? MIN(cuts[i], size) : size - 100;
                struct elf_file *f = NULL;
                struct errbuf err = {};
                int r;

                write_file(path, img, n);
                r = elf_file_open(path, &f, &err);
                if (r >= 0) {
                        exercise(f);
                        elf_file_free(f);
                } else
                        CHECK(err.msg[0]);
        }
        unlink(path);
}

TEST(corrupted_images_do_not_crash)
{
        _cleanup_free_ uint8_t *orig = NULL;
        size_t size;
        unsigned seed = 12345;
        int n_ok = 0, n_err = 0;

        orig = read_whole(FX_LIB, &size);
        for (int iter = 0; iter < 1500; iter++) {
                uint8_t *img = malloc(size);
                struct elf_file *f = NULL;
                int n_flips = 1 + (int)(rand_r(&seed) % 16);

                CHECK(img);
                memcpy(img, orig, size);
                for (int k = 0; k < n_flips; k++) {
                        size_t at;

                        /* Mostly the headers and tables, where it hurts. */
                        if (rand_r(&seed) % 2)
                                at = (size_t)rand_r(&seed) % MIN(size, (size_t)256);
                        else
                                at = (size_t)rand_r(&seed) % size;
                        img[at] = (uint8_t)rand_r(&seed);
                }
                if (elf_file_open_memory(img, size, "fuzz", &f, NULL) >= 0) {
                        exercise(f);
                        elf_file_free(f);
                        n_ok++;
                } else
                        n_err++;
        }
        fprintf(stderr, "# %d opened, %d refused\n", n_ok, n_err);
        CHECK(n_ok > 0);
}

TAP_MAIN()
