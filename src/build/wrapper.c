/* The compiler wrapper of `liveup build --diff` (tree.c sets it up): the
 * liveup executable run as "cc", "gcc" or "c99" from a scratch bin/ folder
 * with LIVEUP_CC_LOG and LIVEUP_CC_REAL in the environment.
 *
 * It runs the real compiler ($LIVEUP_CC_REAL) with the project's
 * arguments followed by -ffunction-sections -fdata-sections -fno-lto
 * (last, so that they win over the project's own -fno-function-sections
 * or -flto): one section per function and per object is what lets the
 * comparison of the two trees work function by function, and LTO would
 * leave no machine code in the objects. As "c99" it adds -std=c99 first
 * unless the arguments choose a standard (what Debian's c99 script does).
 *
 * Before that, for an invocation that makes objects (-c, and none of -E,
 * -S, -M, -MM, -fsyntax-only), it appends one line per source file to
 * $LIVEUP_CC_LOG:
 *
 *     CWD <tab> SOURCE <tab> OBJECT <newline>
 *
 * SOURCE and OBJECT are made absolute against CWD (getcwd(), physical),
 * but not otherwise normalised: tree.c resolves them. OBJECT follows gcc's
 * rule: the -o argument, or else the source's basename with its suffix
 * replaced by ".o", in CWD. A source read from stdin ("-") is not logged
 * (its object has no source in the tree). Each line is one write() to a
 * file opened with O_APPEND, so the lines of a parallel build (make -j)
 * do not interleave: on Linux, an appending write() to a regular file is
 * atomic with respect to other writes to it. The line is written before
 * the compiler runs, so a compile that fails or a probe whose object is
 * deleted afterwards (autoconf's conftest.o) is logged too; tree.c keeps
 * only objects that exist once the build is over.
 *
 * A real compiler that runs the wrapper again (a compiler cache found as
 * "gcc" in $PATH looks up "gcc" in $PATH in turn, and finds the wrapper
 * first) would loop forever: the wrapper marks its child with
 * LIVEUP_CC_ACTIVE and refuses to run under that mark. tree.c does not
 * pick such compilers as the real one in the first place.
 *
 * Arguments in response files (@FILE) are read for the analysis only;
 * the compiler gets the @FILE argument as it was.
 *
 * This runs once per compiler invocation of a whole build: it parses
 * argv, writes, execs, and nothing else (no libelf, no logging setup).
 * When the real compiler cannot be executed it prints one line and
 * returns 127, as a shell does for a command it cannot run. */
#include "build/tree.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

#define RSP_MAX_DEPTH 8
#define RSP_MAX_SIZE (16u << 20)

static const char *const extra_flags[] = {
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-lto",
};

/* Options of gcc and clang whose value may be the next argument: that
 * argument is not an input file. (-o and -x are handled apart.) */
static const char *const opts_with_arg[] = {
        "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
        "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-imultilib",
        "-imultiarch", "-iframework", "-ivfsoverlay", "-MF", "-MT", "-MQ", "-MJ", "-L", "-l",
        "-T", "-u", "-z", "-e", "-A", "-B", "-G", "-Xlinker", "-Xassembler",
        "-Xpreprocessor", "-Xclang", "-aux-info", "--param", "-dumpbase", "-dumpbase-ext",
        "-dumpdir", "-auxbase", "-auxbase-strip", "-target", "-arch", "--sysroot", "--entry",
};

/* Suffixes gcc compiles (as opposed to linker inputs). */
static const char *const source_suffixes[] = {
        "c", "i", "s", "S", "sx", "cc", "cp", "cxx", "cpp", "CPP", "c++", "C", "ii", "m", "mi",
        "mm", "M", "mii",
};

struct args {
        char **v;
        size_t n, cap;
        char **owned; /* strings read from response files */
        size_t n_owned, cap_owned;
};

static void args_done(struct args *a)
{
        for (size_t i = 0; i < a->n_owned; i++)
                free(a->owned[i]);
        free(a->owned);
        free(a->v);
}

static int args_push(struct args *a, char *s)
{
        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 64;
                char **v = realloc(a->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                a->v = v;
                a->cap = cap;
        }
        a->v[a->n++] = s;
        return 0;
}

static int args_own(struct args *a, char *s)
{
        if (a->n_owned == a->cap_owned) {
                size_t cap = a->cap_owned ? a->cap_owned * 2 : 16;
                char **v = realloc(a->owned, cap * sizeof(*v));

                if (!v) {
                        free(s);
                        return -ENOMEM;
                }
                a->owned = v;
                a->cap_owned = cap;
        }
        a->owned[a->n_owned++] = s;
        return args_push(a, s);
}

static int args_add_rsp(struct args *a, const char *path, unsigned depth);

/* A word of a response file (owned): "@FILE" is expanded in turn when
 * FILE can be read, as gcc does; otherwise it is taken literally. */
static int args_add_word(struct args *a, char *s, unsigned depth)
{
        if (s[0] == '@' && s[1] && depth < RSP_MAX_DEPTH) {
                int r = args_add_rsp(a, s + 1, depth + 1);

                if (r != -ENOENT && r != -EACCES && r != -EISDIR) {
                        free(s);
                        return r;
                }
        }
        return args_own(a, s);
}

/* Split a response file as gcc does (libiberty's buildargv): blanks
 * separate, single and double quotes group, a backslash takes the next
 * character literally. */
static int args_add_rsp(struct args *a, const char *path, unsigned depth)
{
        _cleanup_free_ char *text = NULL, *word = NULL;
        size_t len, n = 0;
        char quote = 0;
        bool in_word = false;
        int r;

        r = read_file_str(path, &text, &len);
        if (r < 0)
                return r;
        if (len > RSP_MAX_SIZE)
                return -EFBIG;
        word = malloc(len + 1);
        if (!word)
                return -ENOMEM;
        for (size_t i = 0; i <= len; i++) {
                char c = text[i];

                if (c == 0 || (!quote && strchr(" \t\n\r\f\v", c))) {
                        if (in_word) {
                                char *s;

                                word[n] = 0;
                                s = strdup(word);
                                if (!s)
                                        return -ENOMEM;
                                r = args_add_word(a, s, depth);
                                if (r < 0)
                                        return r;
                        }
                        in_word = false;
                        n = 0;
                        continue;
                }
                in_word = true;
                if (c == '\\' && i + 1 < len)
                        word[n++] = text[++i];
                else if (quote && c == quote)
                        quote = 0;
                else if (!quote && (c == '\'' || c == '"'))
                        quote = c;
                else
                        word[n++] = c;
        }
        return 0;
}

/* One argument of the command line (not owned); "@FILE" is replaced by
 * FILE's arguments when FILE can be read (gcc too takes it literally when
 * not). */
static int args_add(struct args *a, char *arg)
{
        if (arg[0] == '@' && arg[1]) {
                int r = args_add_rsp(a, arg + 1, 0);

                if (r != -ENOENT && r != -EACCES && r != -EISDIR)
                        return r;
        }
        return args_push(a, arg);
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, list[i]) == 0)
                        return true;
        return false;
}

static bool is_source(const char *path, bool forced_lang)
{
        const char *base = path_basename(path), *dot;

        if (forced_lang)
                return true;
        dot = strrchr(base, '.');
        return dot && dot != base && in_list(dot + 1, source_suffixes, ELEMENTSOF(source_suffixes));
}

/* "DIR/x.c" -> "x.o" (gcc's default object name for -c). */
static char *default_object(const char *src)
{
        const char *base = path_basename(src), *dot;
        char *o;

        dot = strrchr(base, '.');
        if (!dot || dot == base)
                dot = base + strlen(base);
        if (asprintf(&o, "%.*s.o", (int)(dot - base), base) < 0)
                return NULL;
        return o;
}

static int append_line(int fd, const char *cwd, const char *src, const char *obj)
{
        _cleanup_free_ char *line = NULL;
        int len;
        ssize_t n;

        len = asprintf(&line, "%s\t%s%s%s\t%s%s%s\n", cwd, src[0] == '/' ? "" : cwd,
                       src[0] == '/' ? "" : "/", src, obj[0] == '/' ? "" : cwd,
                       obj[0] == '/' ? "" : "/", obj);
        if (len < 0) {
                line = NULL;
                return -ENOMEM;
        }
        do
                n = write(fd, line, (size_t)len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n != len)
                return -EIO; /* a short append: the log is unusable */
        return 0;
}

/* Log the objects this invocation makes (see the top of the file). */
static int log_objects(const char *log_path, int argc, char **argv)
{
        _cleanup_(args_done) struct args a = {};
        _cleanup_close_ int fd = -EBADF;
        const char *output = NULL;
        char cwd[PATH_MAX];
        bool compile = false, forced_lang = false;
        int r;

        for (int i = 1; i < argc; i++) {
                r = args_add(&a, argv[i]);
                if (r < 0)
                        return r;
        }
        /* Pass 1: the mode and -o. */
        for (size_t i = 0; i < a.n; i++) {
                const char *s = a.v[i];

                if (strcmp(s, "-c") == 0)
                        compile = true;
                else if (strcmp(s, "-E") == 0 || strcmp(s, "-S") == 0 || strcmp(s, "-M") == 0 ||
                         strcmp(s, "-MM") == 0 || strcmp(s, "-fsyntax-only") == 0)
                        return 0;
                else if ((strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) && i + 1 < a.n)
                        output = a.v[++i];
                else if (strncmp(s, "--output=", 9) == 0)
                        output = s + 9;
                else if (strncmp(s, "-o", 2) == 0 && s[2])
                        output = s + 2;
                else if (in_list(s, opts_with_arg, ELEMENTSOF(opts_with_arg)) ||
                         strcmp(s, "-x") == 0)
                        i++;
        }
        if (!compile)
                return 0;

        if (!getcwd(cwd, sizeof(cwd)))
                return -errno;
        fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;

        /* Pass 2: the inputs, in order; -x LANG applies to those after it. */
        for (size_t i = 0; i < a.n; i++) {
                const char *s = a.v[i], *lang = NULL;
                _cleanup_free_ char *obj = NULL;

                if (strcmp(s, "-x") == 0 && i + 1 < a.n)
                        lang = a.v[++i];
                else if (strncmp(s, "-x", 2) == 0 && s[2])
                        lang = s + 2;
                if (lang) {
                        /* A header makes a precompiled header, not an object. */
                        forced_lang = strcmp(lang, "none") != 0 && !strstr(lang, "header");
                        continue;
                }
                if ((strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0 ||
                     in_list(s, opts_with_arg, ELEMENTSOF(opts_with_arg))) &&
                    i + 1 < a.n) {
                        i++;
                        continue;
                }
                if (s[0] == '-' || !is_source(s, forced_lang))
                        continue; /* an option, stdin ("-") or a linker input */
                if (!output) {
                        obj = default_object(s);
                        if (!obj)
                                return -ENOMEM;
                }
                r = append_line(fd, cwd, s, output ?: obj);
                if (r < 0)
                        return r;
        }
        return 0;
}

int lb_cc_wrapper_main(int argc, char **argv)
{
        const char *real = getenv("LIVEUP_CC_REAL"), *log_path = getenv("LIVEUP_CC_LOG");
        const char *map = getenv("LIVEUP_CC_PREFIX_MAP");
        _cleanup_free_ char *map_opt = NULL;
        const char *name = path_basename(argv[0]);
        _cleanup_free_ char **v = NULL;
        bool c99, has_std = false;
        size_t n = 0;
        int r;

        if (getenv("LIVEUP_CC_ACTIVE")) {
                fprintf(stderr, "liveup: cannot run the compiler for '%s': '%s' ran liveup's "
                        "compiler wrapper again (a compiler cache or launcher?)\n", name,
                        real ?: "?");
                return 127;
        }
        if (!real || real[0] != '/') {
                fprintf(stderr, "liveup: cannot run the compiler for '%s': LIVEUP_CC_REAL is %s\n",
                        name, real ? "not an absolute path" : "not set");
                return 127;
        }
        r = log_path && *log_path ? log_objects(log_path, argc, argv) : 0;
        if (r < 0) {
                fprintf(stderr, "liveup: cannot log the objects of '%s' in '%s': %s\n", name,
                        log_path, strerror(-r));
                return 1;
        }

        c99 = strcmp(name, "c99") == 0;
        for (int i = 1; i < argc; i++)
                if (strncmp(argv[i], "-std=", 5) == 0 || strcmp(argv[i], "-ansi") == 0)
                        has_std = true;
        v = calloc((size_t)argc + ELEMENTSOF(extra_flags) + 3, sizeof(*v));
        if (!v) {
                fprintf(stderr, "liveup: cannot run the compiler '%s': %s\n", real,
                        strerror(ENOMEM));
                return 127;
        }
        v[n++] = (char *)real;
        if (c99 && !has_std)
                v[n++] = (char *)"-std=c99";
        for (int i = 1; i < argc; i++)
                v[n++] = argv[i];
        for (size_t i = 0; i < ELEMENTSOF(extra_flags); i++)
                v[n++] = (char *)extra_flags[i];
        /* $LIVEUP_CC_PREFIX_MAP=TREE=DIR: absolute paths of the scratch
         * tree are written as DIR's (__FILE__, debug info). */
        if (map && *map) {
                if (asprintf(&map_opt, "-ffile-prefix-map=%s", map) < 0) {
                        fprintf(stderr, "liveup: cannot run the compiler '%s': %s\n", real,
                                strerror(ENOMEM));
                        return 127;
                }
                v[n++] = map_opt;
        }
        v[n] = NULL;
        if (setenv("LIVEUP_CC_ACTIVE", "1", 1) < 0) {
                fprintf(stderr, "liveup: cannot run the compiler '%s': %s\n", real,
                        strerror(errno));
                return 127;
        }
        execve(real, v, environ);
        r = errno;
        fprintf(stderr, "liveup: cannot run the compiler '%s': %s\n", real, strerror(r));
        return 127;
}
