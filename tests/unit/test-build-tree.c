/* Tests of the two builds of `liveup build --diff` (src/build/tree.c) and
 * of the compiler wrapper (src/build/wrapper.c), with real processes: a
 * small C project with a Makefile is written to a temporary folder, built
 * by make through the wrapper (the liveup executable, $LIVEUP, which
 * meson passes), and the objects of both trees are checked as ELF files
 * (one .text.<function> section per function shows the wrapper's flags).
 *
 * The project: src/util.c (its object made by "cd src && cc -c util.c",
 * without -o, so gcc's default object name is exercised), src/main.c (by
 * make's built-in rule, with -o), src/util.h included by both, and
 * src/table.c, which main.c #includes but the Makefile does not list: an
 * incremental build misses a change to it, which tree.c must notice.
 *
 * Every test sets $TMPDIR to a folder of its own and checks that the
 * scratch folder is gone afterwards, failures included. Each runs in its
 * own forked child (tests/tap.h). */
#include "tap.h"

#include "base/util.h"
#include "build/tree.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

/* ---- Helpers ------------------------------------------------------------ */

static const char *liveup(void)
{
        const char *p = getenv("LIVEUP");

        if (!p || access(p, X_OK) < 0)
                tap_skip("LIVEUP is not set to the liveup executable");
        return p;
}

static void need_tools(void)
{
        static const char *const tools[] = { "/usr/bin/make", "/usr/bin/patch", "/usr/bin/cp" };

        for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                if (access(tools[i], X_OK) < 0)
                        tap_skip("make, patch or cp is missing");
}

static char *join(const char *a, const char *b)
{
        char *p = NULL;

        if (asprintf(&p, "%s/%s", a, b) < 0)
                p = NULL;
        CHECK(p);
        return p;
}

static void write_file(const char *dir, const char *rel, const char *text)
{
        _cleanup_free_ char *p = join(dir, rel), *parent = NULL;
        FILE *f;

        /* The parent folder first (one level below `dir` is all we need). */
        parent = strndup(p, (size_t)(strrchr(p, '/') - p));
        CHECK(parent);
        if (mkdir(parent, 0755) < 0)
                CHECK(errno == EEXIST);
        f = fopen(p, "we");
        CHECK(f);
        CHECK(fputs(text, f) >= 0);
        CHECK(fclose(f) == 0);
}

static bool exists(const char *dir, const char *rel)
{
        _cleanup_free_ char *p = join(dir, rel);

        return access(p, F_OK) == 0;
}

static void rm_rf(const char *path)
{
        pid_t pid = fork();
        int status;

        CHECK(pid >= 0);
        if (pid == 0) {
                execl("/bin/rm", "rm", "-rf", "--", path, (char *)NULL);
                _exit(127);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static bool dir_is_empty(const char *path)
{
        _cleanup_closedir_ DIR *d = opendir(path);
        struct dirent *de;

        CHECK(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        fprintf(stderr, "left over: %s/%s\n", path, de->d_name);
                        return false;
                }
        return true;
}

/* Whether the ELF file `path` has a section called `name`. */
static bool has_section(const char *path, const char *name)
{
        _cleanup_free_ char *buf = NULL;
        const Elf64_Ehdr *eh;
        const Elf64_Shdr *sh;
        const char *strtab;
        size_t len;

        CHECK_OK(read_file_str(path, &buf, &len));
        eh = (const Elf64_Ehdr *)buf;
        CHECK(len >= sizeof(*eh) && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
        CHECK(eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_type == ET_REL);
        CHECK(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(*sh) <= len);
        sh = (const Elf64_Shdr *)(buf + eh->e_shoff);
        CHECK(eh->e_shstrndx < eh->e_shnum);
        CHECK(sh[eh->e_shstrndx].sh_offset + sh[eh->e_shstrndx].sh_size <= len);
        strtab = buf + sh[eh->e_shstrndx].sh_offset;
        for (size_t i = 0; i < eh->e_shnum; i++)
                if (sh[i].sh_name < sh[eh->e_shstrndx].sh_size &&
                    strcmp(strtab + sh[i].sh_name, name) == 0)
                        return true;
        return false;
}

static bool same_file(const char *a, const char *b)
{
        _cleanup_free_ char *x = NULL, *y = NULL;
        size_t nx, ny;

        CHECK_OK(read_file_str(a, &x, &nx));
        CHECK_OK(read_file_str(b, &y, &ny));
        return nx == ny && memcmp(x, y, nx) == 0;
}

static const struct lb_object_pair *find_obj(const struct lb_trees *t, const char *rel)
{
        for (size_t i = 0; i < t->n_objs; i++)
                if (strcmp(t->objs[i].rel, rel) == 0)
                        return &t->objs[i];
        return NULL;
}

/* A test's folder: $TMPDIR points into it, the project is in src/. */
struct fixture {
        char *root, *tmp, *proj;
};

static const char makefile[] =
        "CFLAGS = -O2\n"
        "OBJS = src/main.o src/util.o\n"
        "prog: $(OBJS)\n"
        "\t$(CC) -o $@ $(OBJS)\n"
        "src/main.o: src/main.c src/util.h\n"
        "src/util.o: src/util.c src/util.h\n"
        "\tcd src && $(CC) $(CFLAGS) -c util.c\n";

/* New .c files join the build by themselves. */
static const char makefile_wildcard[] =
        "CFLAGS = -O2\n"
        "OBJS = $(patsubst %.c,%.o,$(filter-out src/table.c,$(wildcard src/*.c)))\n"
        "prog: $(OBJS)\n"
        "\t$(CC) -o $@ $(OBJS)\n"
        "src/main.o: src/main.c src/util.h\n"
        "src/util.o: src/util.c src/util.h\n"
        "\tcd src && $(CC) $(CFLAGS) -c util.c\n";

static const char util_c[] =
        "#include \"util.h\"\n"
        "\n"
        "int util_add(int a, int b)\n"
        "{\n"
        "        return a + b;\n"
        "}\n";

static struct fixture setup(const char *mk)
{
        struct fixture f = {};
        char tmpl[] = "/tmp/liveup-test-tree.XXXXXX";

        need_tools();
        /* A make above us (make check) may pass its jobserver along. */
        unsetenv("MAKEFLAGS");
        unsetenv("MFLAGS");
        unsetenv("MAKELEVEL");
        unsetenv("CC");
        CHECK(mkdtemp(tmpl));
        f.root = strdup(tmpl);
        CHECK(f.root);
        f.tmp = join(f.root, "tmp");
        f.proj = join(f.root, "proj");
        CHECK(mkdir(f.tmp, 0700) == 0);
        CHECK(mkdir(f.proj, 0755) == 0);
        CHECK(setenv("TMPDIR", f.tmp, 1) == 0);
        write_file(f.proj, "Makefile", mk);
        write_file(f.proj, "src/util.h", "int util_add(int a, int b);\n");
        write_file(f.proj, "src/util.c", util_c);
        write_file(f.proj, "src/table.c", "static const int table[] = { 2, 3 };\n");
        write_file(f.proj, "src/main.c",
                   "#include \"util.h\"\n"
                   "#include \"table.c\"\n"
                   "\n"
                   "int main(void)\n"
                   "{\n"
                   "        return util_add(table[0], 1) == 3 ? 0 : 1;\n"
                   "}\n");
        return f;
}

/* LeakSanitizer's check, in ASan builds: tests end with _exit(), which
 * skips the check LSan makes at exit. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void teardown(struct fixture *f)
{
        CHECK(dir_is_empty(f->tmp)); /* no scratch folder left behind */
        rm_rf(f->root);
        free(f->root);
        free(f->tmp);
        free(f->proj);
        if (__lsan_do_recoverable_leak_check)
                CHECK(__lsan_do_recoverable_leak_check() == 0);
}

static char *write_diff(const struct fixture *f, const char *text)
{
        write_file(f->root, "fix.diff", text);
        return join(f->root, "fix.diff");
}

static char *const make_cmd[] = { (char *)"make", (char *)"-s", NULL };

static int build(const struct fixture *f, const char *diff, char *const *cmd, bool keep,
                 struct lb_trees **ret, struct errbuf *err)
{
        size_t n = 0;

        while (cmd[n])
                n++;
        struct lb_trees_opts o = {
                .diff = diff,
                .src = f->proj,
                .cmd = cmd,
                .n_cmd = n,
                .self = liveup(),
                .keep = keep,
        };
        return lb_trees_build(&o, ret, err);
}

/* A function added to util.c: only util.c changes. */
static const char diff_util_c[] =
        "--- a/src/util.c\n"
        "+++ b/src/util.c\n"
        "@@ -4,3 +4,8 @@\n"
        " {\n"
        "         return a + b;\n"
        " }\n"
        "+\n"
        "+int util_new(void)\n"
        "+{\n"
        "+        return 7;\n"
        "+}\n";

/* The same with its declaration in util.h. */
static const char diff_util_h[] =
        "--- a/src/util.h\n"
        "+++ b/src/util.h\n"
        "@@ -1 +1,2 @@\n"
        " int util_add(int a, int b);\n"
        "+int util_new(void);\n"
        "--- a/src/util.c\n"
        "+++ b/src/util.c\n"
        "@@ -4,3 +4,8 @@\n"
        " {\n"
        "         return a + b;\n"
        " }\n"
        "+\n"
        "+int util_new(void)\n"
        "+{\n"
        "+        return 7;\n"
        "+}\n";

/* ---- The wrapper, run directly ------------------------------------------- */

/* Run the liveup executable as `name` (a symlink in `dir`) with `args`, in
 * `dir`, with LIVEUP_CC_LOG=dir/log and LIVEUP_CC_REAL=`real`. Returns
 * the exit status; its stderr goes to dir/err. */
static int run_wrapper(const char *dir, const char *name, const char *real, const char *const *args)
{
        _cleanup_free_ char *link = join(dir, name), *log = join(dir, "log");
        const char *argv[16];
        size_t n = 0;
        pid_t pid;
        int status;

        if (access(link, F_OK) < 0)
                CHECK(symlink(liveup(), link) == 0);
        argv[n++] = link;
        for (; *args; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                int fd;

                if (chdir(dir) < 0 || setenv("LIVEUP_CC_LOG", log, 1) < 0)
                        _exit(126);
                fd = open("err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(126);
                if (real)
                        setenv("LIVEUP_CC_REAL", real, 1);
                else
                        unsetenv("LIVEUP_CC_REAL");
                execv(link, (char *const *)argv);
                _exit(126);
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        return WEXITSTATUS(status);
}

#define WRAP(dir, name, real, ...)                                             \
        run_wrapper(dir, name, real, (const char *[]){ __VA_ARGS__, NULL })

static char *read_rel(const char *dir, const char *rel)
{
        _cleanup_free_ char *p = join(dir, rel);
        char *s = NULL;

        if (read_file_str(p, &s, NULL) < 0)
                return strdup("");
        return s;
}

TEST(wrapper_logs_compile_only_invocations)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *d = join(f.root, "w"), *log = NULL, *expect = NULL;
        char cwd[PATH_MAX];

        CHECK(mkdir(d, 0755) == 0);
        CHECK(realpath(d, cwd));
        write_file(d, "a.c", "int fa(void) { return 1; }\n");
        write_file(d, "b.c", "int fb(void) { return 2; }\n");
        write_file(d, "sub/c.c", "int fc(void) { return 3; }\n");
        write_file(d, "args.rsp", "-c 'sub/c.c' -o\n  rsp.o\n");

        /* Two sources, no -o: one line each, objects named after them. */
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "-c", "a.c", "b.c") == 0);
        /* -o joined, -x before the source, an option with a separate value. */
        CHECK(WRAP(d, "cc", "/usr/bin/gcc", "-I", "sub", "-c", "-xc", "sub/c.c", "-ojoined.o") ==
              0);
        /* A response file is read for the analysis. */
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "@args.rsp") == 0);
        /* Not logged: preprocessing, assembly output, dependencies only,
         * stdin, linking. */
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "-E", "a.c", "-o", "a.i") == 0);
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "-S", "a.c") == 0);
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "-c", "-MM", "a.c", "-o", "a.d") == 0);
        CHECK(WRAP(d, "c99", "/usr/bin/gcc", "-c", "-x", "c", "-", "-o", "in.o") == 0);
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "-shared", "a.o", "b.o", "-o", "lib.so") == 0);

        log = read_rel(d, "log");
        CHECK(asprintf(&expect,
                       "%1$s\t%1$s/a.c\t%1$s/a.o\n"
                       "%1$s\t%1$s/b.c\t%1$s/b.o\n"
                       "%1$s\t%1$s/sub/c.c\t%1$s/joined.o\n"
                       "%1$s\t%1$s/sub/c.c\t%1$s/rsp.o\n",
                       cwd) >= 0);
        CHECK_STREQ(log, expect);
        /* The flags reached the compiler: one section per function. */
        {
                _cleanup_free_ char *a = join(d, "a.o"), *j = join(d, "joined.o");

                CHECK(has_section(a, ".text.fa"));
                CHECK(has_section(j, ".text.fc"));
        }
        teardown(&f);
}

TEST(wrapper_fails_like_a_shell_without_a_compiler)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *d = join(f.root, "w"), *err = NULL;

        CHECK(mkdir(d, 0755) == 0);
        write_file(d, "a.c", "int fa(void) { return 1; }\n");
        CHECK(WRAP(d, "gcc", "/nonexistent/gcc", "-c", "a.c") == 127);
        err = read_rel(d, "err");
        CHECK(strstr(err, "liveup: cannot run the compiler '/nonexistent/gcc': "));
        free(err);
        CHECK(WRAP(d, "gcc", NULL, "-c", "a.c") == 127);
        err = read_rel(d, "err");
        CHECK(strstr(err, "LIVEUP_CC_REAL is not set"));
        free(err);
        /* A "real" compiler that runs the wrapper again is stopped. */
        CHECK(setenv("LIVEUP_CC_ACTIVE", "1", 1) == 0);
        CHECK(WRAP(d, "gcc", "/usr/bin/gcc", "-c", "a.c") == 127);
        unsetenv("LIVEUP_CC_ACTIVE");
        err = read_rel(d, "err");
        CHECK(strstr(err, "ran liveup's compiler wrapper again"));
        teardown(&f);
}

/* ---- Both trees ------------------------------------------------------------ */

TEST(incremental_build_recompiles_the_changed_file_only)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c);
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        const struct lb_object_pair *m, *u;
        struct errbuf err = {};
        int r;

        r = build(&f, diff, make_cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(t->incremental);
        CHECK(t->diff->n_touched == 1);
        CHECK_STREQ(t->diff->touched[0], "src/util.c");
        CHECK(t->n_objs == 2);
        CHECK(t->n_added == 0);
        m = find_obj(t, "src/main.o");
        u = find_obj(t, "src/util.o");
        CHECK(m && u);
        CHECK_STREQ(m->src_rel, "src/main.c");
        CHECK_STREQ(u->src_rel, "src/util.c");

        /* Built through the wrapper in both trees, each in its own root. */
        CHECK(strncmp(u->orig, t->orig_root, strlen(t->orig_root)) == 0);
        CHECK(strncmp(u->patched, t->patched_root, strlen(t->patched_root)) == 0);
        CHECK(has_section(m->orig, ".text.startup.main") || has_section(m->orig, ".text.main"));
        CHECK(has_section(u->orig, ".text.util_add"));
        CHECK(!has_section(u->orig, ".text.util_new"));
        CHECK(has_section(u->patched, ".text.util_add"));
        CHECK(has_section(u->patched, ".text.util_new"));

        /* Only util.c was compiled again; main.o is the copy of orig's. */
        CHECK(u->recompiled);
        CHECK(!m->recompiled);
        CHECK(m->patched);
        CHECK(same_file(m->orig, m->patched));
        CHECK(t->orig_seconds > 0 && t->patched_seconds > 0);

        /* DIR itself was not built in. */
        CHECK(!exists(f.proj, "src/util.o"));
        CHECK(!exists(f.proj, "prog"));
        {
                _cleanup_free_ char *dir = strdup(t->dir);

                lb_trees_free(TAKE_PTR(t));
                CHECK(access(dir, F_OK) < 0 && errno == ENOENT);
        }
        teardown(&f);
}

TEST(header_change_rebuilds_from_a_fresh_copy)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_h);
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        struct errbuf err = {};
        int r;

        r = build(&f, diff, make_cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(!t->incremental);
        CHECK(t->diff->n_touched == 2);
        CHECK_STREQ(t->diff->touched[0], "src/util.h");
        CHECK_STREQ(t->diff->touched[1], "src/util.c");
        CHECK(t->n_objs == 2);
        for (size_t i = 0; i < t->n_objs; i++) {
                CHECK(t->objs[i].recompiled);
                CHECK(t->objs[i].patched);
                CHECK(access(t->objs[i].patched, F_OK) == 0);
        }
        CHECK(has_section(find_obj(t, "src/util.o")->patched, ".text.util_new"));
        lb_trees_free(TAKE_PTR(t));
        teardown(&f);
}

TEST(missed_recompile_falls_back_to_a_full_build)
{
        /* table.c is #included by main.c; the Makefile does not know. */
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/table.c\n"
                "+++ b/src/table.c\n"
                "@@ -1 +1 @@\n"
                "-static const int table[] = { 2, 3 };\n"
                "+static const int table[] = { 3, 3 };\n");
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        const struct lb_object_pair *m;
        struct errbuf err = {};
        int r;

        r = build(&f, diff, make_cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(!t->incremental);
        m = find_obj(t, "src/main.o");
        CHECK(m && m->recompiled && m->patched);
        CHECK(!same_file(m->orig, m->patched));
        lb_trees_free(TAKE_PTR(t));
        teardown(&f);
}

TEST(new_c_file_is_added)
{
        struct fixture f = setup(makefile_wildcard);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- /dev/null\n"
                "+++ b/src/extra.c\n"
                "@@ -0,0 +1,4 @@\n"
                "+int extra(void)\n"
                "+{\n"
                "+        return 5;\n"
                "+}\n");
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        _cleanup_free_ char *p = NULL;
        struct errbuf err = {};
        int r;

        r = build(&f, diff, make_cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(t->incremental);
        CHECK(t->diff->n_touched == 1);
        CHECK_STREQ(t->diff->touched[0], "src/extra.c");
        CHECK(t->n_objs == 2);
        CHECK(t->n_added == 1);
        CHECK_STREQ(t->added[0], "src/extra.o");
        p = join(t->patched_root, t->added[0]);
        CHECK(has_section(p, ".text.extra"));
        CHECK(!find_obj(t, "src/util.o")->recompiled);
        lb_trees_free(TAKE_PTR(t));
        teardown(&f);
}

TEST(hunk_lines_that_look_like_headers_are_not_files)
{
        /* An added line "++ b/src/evil.h" is "+++ b/src/evil.h" in the
         * diff. GNU diff's timestamps follow a tab. */
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/util.c\n"
                "+++ b/src/util.c\n"
                "@@ -1,4 +1,7 @@\n"
                " #include \"util.h\"\n"
                "+/*\n"
                "+++ b/src/evil.h\n"
                "+ */\n"
                " \n"
                " int util_add(int a, int b)\n"
                " {\n"
                "@@ -5,2 +8,4 @@\n"
                "         return a + b;\n"
                " }\n"
                "+/* -- a/x\n"
                "+ */\n"
                "--- a/src/table.c\t2024-01-01 00:00:00.000000000 +0000\n"
                "+++ b/src/table.c\t2024-01-01 00:00:00.000000000 +0000\n"
                "@@ -1 +1 @@\n"
                "-static const int table[] = { 2, 3 };\n"
                "+static const int table[] = { 2, 3 }; /* x */\n");
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        struct errbuf err = {};
        int r;

        r = build(&f, diff, make_cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(t->diff->n_touched == 2);
        CHECK_STREQ(t->diff->touched[0], "src/util.c");
        CHECK_STREQ(t->diff->touched[1], "src/table.c");
        /* The hunks are kept for diff.c: two of util.c, one of table.c. */
        CHECK(t->diff->n_files == 2);
        CHECK(t->diff->files[0].n_hunks == 2 && t->diff->files[1].n_hunks == 1);
        CHECK(t->diff->files[0].hunks[1].n_ops == 4);
        lb_trees_free(TAKE_PTR(t));
        teardown(&f);
}

TEST(hunk_that_does_not_match_its_header_is_bad_input)
{
        /* One line more than the header counts: patch would apply the
         * hunk and drop the line. Refused before patch or a build runs. */
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/util.c\n"
                "+++ b/src/util.c\n"
                "@@ -4,3 +4,3 @@\n"
                " {\n"
                "-        return a + b;\n"
                "+        return a - b;\n"
                " }\n"
                "+/* a - b */\n");
        _cleanup_free_ char *expect = NULL;
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_ERR(build(&f, diff, make_cmd, false, &t, &err), EINVAL);
        CHECK(!t);
        CHECK(asprintf(&expect, "'%s' line 3: the hunk does not match its header: the header "
                                "counts 3 old and 3 new lines, line 8 is one too many",
                       diff) >= 0);
        CHECK_STREQ(err.msg, expect);
        CHECK(dir_is_empty(f.tmp));
        teardown(&f);
}

TEST(progress_names_both_builds)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/table.c\n"
                "+++ b/src/table.c\n"
                "@@ -1 +1 @@\n"
                "-static const int table[] = { 2, 3 };\n"
                "+static const int table[] = { 3, 3 };\n");
        _cleanup_free_ char *errfile = join(f.root, "stderr"), *text = NULL;
        char *const cmd[] = { (char *)"make", (char *)"-s", (char *)"CFLAGS=-O2 -g", NULL };
        struct lb_trees_opts o = {
                .diff = diff, .src = f.proj, .cmd = cmd, .n_cmd = 3, .self = liveup(),
                .progress = true,
        };
        struct lb_trees *t = NULL;
        struct errbuf err = {};
        int fd, saved, r;

        fflush(stderr);
        saved = dup(STDERR_FILENO);
        fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(saved >= 0 && fd >= 0);
        CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
        close(fd);
        r = lb_trees_build(&o, &t, &err);
        fflush(stderr);
        CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
        close(saved);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK_OK(read_file_str(errfile, &text, NULL));
        fputs(text, stderr);
        CHECK(strstr(text, "liveup: building the unpatched tree (1/2): make -s 'CFLAGS=-O2 -g'\n"));
        CHECK(strstr(text, "liveup: built the unpatched tree in "));
        CHECK(strstr(text, "liveup: building the patched tree (2/2, incremental): make -s"));
        CHECK(strstr(text, "liveup: the incremental build did not recompile 'src/table.c': "
                           "building the patched tree again from a fresh copy (2/2): make -s"));
        CHECK(strstr(text, "liveup: built the patched tree in "));
        CHECK(!t->incremental);
        lb_trees_free(t);
        teardown(&f);
}

static void copy_file(const char *from, const char *to)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len;

        CHECK_OK(read_file_str(from, &buf, &len));
        fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        CHECK(write(fd, buf, len) == (ssize_t)len);
}

TEST(stale_build_outputs_in_dir_are_not_copied)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c), *stale = NULL, *src = NULL,
                            *saved = NULL, *blob = NULL;
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        const struct lb_object_pair *u;
        struct timespec future[2];
        struct errbuf err = {};
        pid_t pid;
        int status, r;

        /* A stale util.o in DIR, compiled without -ffunction-sections and
         * newer than its sources: copied along, make would keep it. */
        stale = join(f.proj, "src/util.o");
        src = join(f.proj, "src/util.c");
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                execl("/usr/bin/gcc", "gcc", "-O2", "-fno-function-sections", "-c", src, "-o",
                      stale, (char *)NULL);
                _exit(127);
        }
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(!has_section(stale, ".text.util_add"));
        clock_gettime(CLOCK_REALTIME, &future[0]);
        future[0].tv_sec += 3600;
        future[1] = future[0];
        CHECK(utimensat(AT_FDCWD, stale, future, 0) == 0);
        saved = join(f.root, "util.o.saved");
        copy_file(stale, saved);
        /* An ELF file known by its contents only, and a file that is no
         * build output. */
        write_file(f.proj, "tools/notes.txt", "not an output\n");
        blob = join(f.proj, "tools/blob");
        copy_file(stale, blob);

        r = build(&f, diff, make_cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(t->n_objs == 2);
        u = find_obj(t, "src/util.o");
        CHECK(u && u->recompiled);
        CHECK(has_section(u->orig, ".text.util_add"));
        CHECK(!exists(t->orig_root, "tools/blob"));
        CHECK(exists(t->orig_root, "tools/notes.txt"));
        /* DIR is as it was. */
        CHECK(same_file(stale, saved));
        CHECK(exists(f.proj, "tools/blob"));
        lb_trees_free(TAKE_PTR(t));
        teardown(&f);
}

TEST(diff_that_does_not_apply_is_refused)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/util.c\n"
                "+++ b/src/util.c\n"
                "@@ -4,3 +4,3 @@\n"
                " {\n"
                "-        return a * b;\n"
                "+        return a - b;\n"
                " }\n");
        _cleanup_free_ char *expect = NULL;
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_ERR(build(&f, diff, make_cmd, false, &t, &err), ENOEXEC);
        CHECK(!t);
        CHECK(asprintf(&expect, "'%s' does not apply to '%s': src/util.c: hunk #1 FAILED at 4",
                       diff, f.proj) >= 0);
        CHECK_STREQ(err.msg, expect);
        teardown(&f);
}

TEST(diff_for_a_missing_file_or_no_diff_is_refused)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/nothere.c\n"
                "+++ b/src/nothere.c\n"
                "@@ -1 +1 @@\n"
                "-int x;\n"
                "+int y;\n");
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_ERR(build(&f, diff, make_cmd, false, &t, &err), ENOEXEC);
        CHECK(strstr(err.msg, "does not apply to"));
        CHECK(strstr(err.msg, ": can't find file to patch at input line 3"));
        free(diff);
        diff = write_diff(&f, "");
        CHECK_ERR(build(&f, diff, make_cmd, false, &t, &err), ENOEXEC);
        CHECK(strstr(err.msg, "is not a unified diff: it changes no file"));
        CHECK(!t);
        teardown(&f);
}

TEST(failing_build_command_is_reported_with_its_tree)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c);
        char *const fail[] = { (char *)"sh", (char *)"-c", (char *)"exit 3", NULL };
        char *const nothing[] = { (char *)"true", NULL };
        char *const missing[] = { (char *)"no-such-build-tool", NULL };
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_ERR(build(&f, diff, fail, false, &t, &err), EPROTO);
        /* Without progress the build's output went to a file; it printed
         * no error line, so none is quoted. */
        CHECK_STREQ(err.msg,
                    "build command failed in the unpatched tree: 'sh' exited with status 3 "
                    "(--progress shows the build's output)");
        CHECK(!t);
        CHECK(dir_is_empty(f.tmp));

        CHECK_ERR(build(&f, diff, nothing, false, &t, &err), EPROTO);
        CHECK(strstr(err.msg, "'true' compiled nothing through liveup's compiler wrapper"));

        CHECK_ERR(build(&f, diff, missing, false, &t, &err), ENOENT);
        CHECK(strstr(err.msg, "cannot run the build command 'no-such-build-tool'"));
        teardown(&f);
}

TEST(patched_tree_that_does_not_compile_is_reported)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f,
                "--- a/src/util.c\n"
                "+++ b/src/util.c\n"
                "@@ -4,3 +4,3 @@\n"
                " {\n"
                "-        return a + b;\n"
                "+        return a + ;\n"
                " }\n");
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_ERR(build(&f, diff, make_cmd, false, &t, &err), EPROTO);
        /* The compiler's first error is quoted. */
        CHECK(strncmp(err.msg, "build command failed in the patched tree: 'make' exited with "
                               "status 2: ", 71) == 0);
        CHECK(strstr(err.msg, "util.c:5:"));
        CHECK(strstr(err.msg, "error:"));
        CHECK(!t);
        teardown(&f);
}

TEST(object_outside_the_tree_is_refused)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c), *out = join(f.root, "out");
        char *const cmd[] = { (char *)"sh", (char *)"-c",
                              (char *)"$CC -c src/util.c -o \"$OUTSIDE/util.o\"", NULL };
        struct lb_trees *t = NULL;
        struct errbuf err = {};
        char real[PATH_MAX];

        CHECK(mkdir(out, 0755) == 0);
        CHECK(realpath(out, real));
        CHECK(setenv("OUTSIDE", out, 1) == 0);
        CHECK_ERR(build(&f, diff, cmd, false, &t, &err), ENOTSUP);
        CHECK(strstr(err.msg, "the build compiled '"));
        CHECK(strstr(err.msg, real));
        CHECK(strstr(err.msg, "outside the tree"));
        teardown(&f);
}

TEST(last_compile_wins_probes_are_dropped_and_cc_is_never_self)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c);
        char *const cmd[] = { (char *)"sh", (char *)"-c",
                              (char *)"$CC -c src/util.c -o src/x.o && "
                                      "$CC -c src/main.c -o src/x.o && "
                                      "$CC -c src/util.c -o probe.o && rm probe.o",
                              NULL };
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        struct errbuf err = {};
        int r;

        /* A $CC that is liveup itself is not taken as the real compiler
         * (the wrapper would exec itself). */
        CHECK(setenv("CC", liveup(), 1) == 0);
        r = build(&f, diff, cmd, false, &t, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(t->n_objs == 1);
        CHECK_STREQ(t->objs[0].rel, "src/x.o");
        CHECK_STREQ(t->objs[0].src_rel, "src/main.c");
        CHECK(t->objs[0].recompiled);
        CHECK(t->n_added == 0);
        lb_trees_free(TAKE_PTR(t));
        teardown(&f);
}

TEST(keep_leaves_the_scratch_folder)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c), *dir = NULL;
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_OK(build(&f, diff, make_cmd, true, &t, &err));
        CHECK(t->keep);
        dir = strdup(t->dir);
        lb_trees_free(t);
        CHECK(access(dir, F_OK) == 0);
        CHECK(exists(dir, "orig.log"));
        CHECK(exists(dir, "patched/src/util.o"));
        rm_rf(dir);
        teardown(&f);
}

TEST(bad_arguments_are_refused)
{
        struct fixture f = setup(makefile);
        _cleanup_free_ char *diff = write_diff(&f, diff_util_c), *nodir = join(f.root, "nope");
        struct lb_trees_opts o = {
                .diff = diff, .src = nodir, .cmd = make_cmd, .n_cmd = 2, .self = liveup(),
        };
        struct lb_trees *t = NULL;
        struct errbuf err = {};

        CHECK_ERR(lb_trees_build(&o, &t, &err), EINVAL);
        CHECK(strstr(err.msg, "cannot use '"));
        o.src = f.proj;
        o.diff = nodir;
        CHECK_ERR(lb_trees_build(&o, &t, &err), EINVAL);
        CHECK(strstr(err.msg, "cannot read the diff '"));
        o.diff = diff;
        o.n_cmd = 0;
        CHECK_ERR(lb_trees_build(&o, &t, &err), EINVAL);
        CHECK(strstr(err.msg, "no build command"));
        CHECK(!t);
        teardown(&f);
}

TAP_MAIN()
