/* The two builds of `liveup build --diff` (see tree.h for the steps).
 *
 * Scratch folder (mkdtemp under $TMPDIR, or /tmp; resolved with realpath
 * so that paths the wrapper logs, which come from getcwd(), compare):
 *
 *     bin/cc, bin/gcc, bin/c99   symlinks to the liveup executable (the
 *                                compiler wrapper, wrapper.c)
 *     orig/                      DIR copied, ELF outputs removed, built
 *     orig.log                   the wrapper's log of that build
 *     patched/                   orig/ copied after its build with the diff
 *                                applied and built again (incremental), or
 *                                a fresh copy of DIR, patched, fully built
 *     patched.log
 *
 * Every child (cp, patch, the build command) is started with posix_spawn,
 * never through a shell, with stdin from /dev/null and stdout sent to our
 * stderr (our stdout may carry --json), an empty signal mask and default
 * dispositions for the signals a caller may have blocked or ignored (the
 * CLI holds SIGINT while it works; a build must still stop on ^C).
 *
 * Incremental builds depend on file times: `cp -a` keeps them, so the
 * copy of the built orig/ is up to date for the build command, and the
 * files `patch` rewrites are newer than every output made from them. No
 * other file of patched/ is touched between the copy and the build.
 * Whether that was enough is checked afterwards rather than trusted: each
 * .c file the diff changes must appear, as a source, in the patched
 * tree's log, or the tree is built again from scratch. The same happens
 * when the diff changes anything else (a header, a Makefile: what depends
 * on it is the build system's business, which we cannot see), when the
 * incremental build fails (e.g. CMake refuses a cache written for
 * orig/), and when it compiled files of orig/ (a build with absolute
 * paths is not relocatable).
 *
 * Objects are named by their path relative to their tree's root, after
 * realpath(); a logged object that no longer exists when the build is
 * over (a configure probe, a failed compile) is dropped; one that exists
 * outside the tree is refused, as its twin in the other tree cannot be
 * found.
 *
 * Lifecycle: lb_trees_build() owns the scratch folder until it returns;
 * on failure it removes it (unless o->keep), on success the lb_trees it
 * returns owns it and lb_trees_free() removes it (unless keep). */
#include "build/tree.h"

#include "base/log.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define OUTPUT_KEEP (64u << 10) /* what we keep of patch's output */

static const char *const wrapper_names[] = { "cc", "gcc", "c99" };

static char *path_join(const char *a, const char *b)
{
        char *p;

        if (asprintf(&p, "%s/%s", a, b) < 0)
                return NULL;
        return p;
}

static bool has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "ROOT/x/y" -> "x/y"; NULL when `path` is not below `root`. */
static const char *below(const char *path, const char *root)
{
        size_t n = strlen(root);

        if (strncmp(path, root, n) == 0 && path[n] == '/' && path[n + 1])
                return path + n + 1;
        return NULL;
}

static void strv_free(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

/* Append `s` (owned) to a string vector; `s` is freed on failure. */
static int strv_push(char ***v, size_t *n, char *s)
{
        char **nv;

        if (!s)
                return -ENOMEM;
        nv = realloc(*v, (*n + 2) * sizeof(**v));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

/* ---- Files --------------------------------------------------------------- */

/* Remove `name` in `dfd` and everything below it, without following
 * symlinks. Folders we may not write or read (a read-only checkout) are
 * made so first: the scratch folder is ours. */
static int rm_rf_at(int dfd, const char *name)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        struct stat st;
        int fd, r = 0;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        if ((st.st_mode & 0700) != 0700)
                (void)fchmodat(dfd, name, (st.st_mode & 07777) | 0700, 0);
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                int k;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                k = rm_rf_at(dirfd(d), de->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        if (errno != 0 && r == 0)
                r = -errno;
        if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && r == 0 && errno != ENOENT)
                r = -errno;
        return r;
}

static int rm_rf(const char *path)
{
        return rm_rf_at(AT_FDCWD, path);
}

/* Build outputs by name: objects, archives, shared objects (libx.so,
 * libx.so.1.2, also as symlinks), libtool objects, precompiled headers
 * (gcc uses a valid .gch instead of the header, whatever the times). */
static bool is_output_name(const char *name)
{
        const char *so = strstr(name, ".so");

        if (has_suffix(name, ".o") || has_suffix(name, ".a") || has_suffix(name, ".lo") ||
            has_suffix(name, ".gch") || has_suffix(name, ".pch"))
                return true;
        while (so) {
                if (so[3] == 0 || so[3] == '.')
                        return true;
                so = strstr(so + 1, ".so");
        }
        return false;
}

static bool is_elf_at(int dfd, const char *name)
{
        _cleanup_close_ int fd = -EBADF;
        unsigned char magic[4];

        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return false;
        return pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
               memcmp(magic, "\x7f" "ELF", 4) == 0;
}

/* Remove build outputs (is_output_name(), and any regular file that is
 * ELF) below the folder `fd` (consumed), so that a copy of DIR is built
 * from its sources only, through the wrapper: a stale object left in DIR
 * would otherwise be "up to date" and never compiled. .git is skipped. */
static int remove_outputs_fd(int fd, size_t *removed)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r = 0;

        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                const char *n = de->d_name;
                struct stat st;

                if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, ".git") == 0)
                        continue;
                if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), n,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (sub < 0)
                                return -errno;
                        r = remove_outputs_fd(sub, removed);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                        continue;
                if (is_output_name(n) || (S_ISREG(st.st_mode) && is_elf_at(dirfd(d), n))) {
                        if (unlinkat(dirfd(d), n, 0) < 0)
                                return -errno;
                        (*removed)++;
                }
        }
        return errno != 0 ? -errno : 0;
}

static int remove_outputs(const char *root, size_t *ret_removed)
{
        size_t removed = 0;
        int fd, r;

        fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = remove_outputs_fd(fd, &removed);
        if (r < 0)
                return r;
        *ret_removed = removed;
        return 0;
}

/* ---- Children ------------------------------------------------------------ */

static char *absolute(const char *p)
{
        char cwd[PATH_MAX];

        if (p[0] == '/')
                return strdup(p);
        if (!getcwd(cwd, sizeof(cwd)))
                return NULL;
        return path_join(cwd, p);
}

static bool is_executable(const char *p)
{
        struct stat st;

        return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* Resolve `name` as execvp() would with `path` as $PATH (NULL: the
 * default), skipping candidates `accept` refuses: an absolute path of an
 * executable regular file, not resolved further (a symlink stays one:
 * ccache and its kin look at the name they are run by). Returns -ENOENT
 * when there is none. */
static int find_program_if(const char *name, const char *path,
                           bool (*accept)(const char *p, const void *data), const void *data,
                           char **ret)
{
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        if (strchr(name, '/')) {
                char *p = absolute(name);

                if (!p)
                        return -ENOMEM;
                if (!is_executable(p) || (accept && !accept(p, data))) {
                        free(p);
                        return -ENOENT;
                }
                *ret = p;
                return 0;
        }
        for (const char *s = path;; s++) {
                const char *e = strchrnul(s, ':');
                _cleanup_free_ char *p = NULL;

                /* An empty entry is the current folder, as for execvp. */
                if (asprintf(&p, "%.*s/%s", e == s ? 1 : (int)(e - s), e == s ? "." : s,
                             name) < 0) {
                        p = NULL;
                        return -ENOMEM;
                }
                if (is_executable(p) && (!accept || accept(p, data))) {
                        char *abs = absolute(p);

                        if (!abs)
                                return -ENOMEM;
                        *ret = abs;
                        return 0;
                }
                if (!*e)
                        return -ENOENT;
                s = e;
        }
}

static int find_program(const char *name, const char *path, char **ret)
{
        return find_program_if(name, path, NULL, NULL, ret);
}

struct child_out {
        char *text; /* what the child printed (capped), NUL-terminated */
        size_t len;
};

static void child_out_done(struct child_out *c)
{
        free(c->text);
        *c = (struct child_out){};
}

/* Run `prog` (absolute, or relative to `cwd`) with `argv` and `envp` in
 * `cwd` (NULL: ours), stdin from /dev/null; stdout and stderr go to our
 * stderr, or, when `ret_out` is not NULL, into *ret_out (the caller
 * frees it with child_out_done()), or, when `to_file` is not NULL, into
 * that file (created or emptied). *ret_status is the wait status.
 * Returns -errno when it could not be started or waited for (a child
 * that was started is always reaped). */
static int spawn_wait(const char *prog, char *const argv[], char *const envp[], const char *cwd,
                      struct child_out *ret_out, const char *to_file, int *ret_status)
{
        _cleanup_(child_out_done) struct child_out captured = {};
        struct child_out *out = ret_out ? &captured : NULL;
        static const int reset[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int pipe_fd[2] = { -EBADF, -EBADF };
        sigset_t none, defaults;
        pid_t pid;
        int status, r;

        if (out) {
                if (pipe2(pipe_fd, O_CLOEXEC) < 0)
                        return -errno;
        }
        sigemptyset(&none);
        sigemptyset(&defaults);
        for (size_t i = 0; i < ELEMENTSOF(reset); i++)
                sigaddset(&defaults, reset[i]);
        r = posix_spawnattr_init(&attr);
        if (r != 0)
                goto out_pipe;
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0) {
                posix_spawnattr_destroy(&attr);
                goto out_pipe;
        }
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &defaults);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY,
                                                     0);
        if (r == 0 && out)
                r = posix_spawn_file_actions_adddup2(&fa, pipe_fd[1], STDOUT_FILENO);
        if (r == 0 && !out && to_file)
                r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, to_file,
                                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (r == 0)
                r = to_file && !out
                            ? posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO)
                            : posix_spawn_file_actions_adddup2(&fa, out ? pipe_fd[1] : STDERR_FILENO,
                                                               out ? STDERR_FILENO : STDOUT_FILENO);
        if (r == 0 && cwd)
                r = posix_spawn_file_actions_addchdir_np(&fa, cwd);
        if (r == 0)
                r = posix_spawn(&pid, prog, &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                goto out_pipe;

        if (out) {
                char buf[4096];
                ssize_t n;

                pipe_fd[1] = safe_close(pipe_fd[1]);
                out->text = malloc(OUTPUT_KEEP + 1);
                /* Read to the end even when out of memory, or the child
                 * would block on a full pipe. */
                while ((n = read(pipe_fd[0], buf, sizeof(buf))) != 0) {
                        size_t k;

                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                break;
                        }
                        k = MIN((size_t)n, OUTPUT_KEEP - out->len);
                        if (out->text && k) {
                                memcpy(out->text + out->len, buf, k);
                                out->len += k;
                        }
                }
                if (out->text)
                        out->text[out->len] = 0;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        r = errno;
                        goto out_pipe;
                }
        if (ret_out) {
                *ret_out = captured;
                captured = (struct child_out){};
        }
        *ret_status = status;
        r = 0;
out_pipe:
        safe_close(pipe_fd[0]);
        safe_close(pipe_fd[1]);
        return -r;
}

/* "exited with status 2", "was killed by signal 9" */
static void describe_status(int status, char *buf, size_t size)
{
        if (WIFEXITED(status))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "was killed by signal %d (SIG%s)", WTERMSIG(status),
                         sigabbrev_np(WTERMSIG(status)) ?: "?");
        else
                snprintf(buf, size, "ended with wait status %#x", (unsigned)status);
}

static bool succeeded(int status)
{
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Run a tool (cp) with our environment, its output to our stderr. */
static int run_tool(char *const argv[], struct errbuf *err)
{
        _cleanup_free_ char *prog = NULL;
        char how[64];
        int status, r;

        r = find_program(argv[0], getenv("PATH"), &prog);
        if (r < 0) {
                errbuf_set(err, "cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }
        r = spawn_wait(prog, argv, environ, NULL, NULL, NULL, &status);
        if (r < 0) {
                errbuf_set(err, "cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }
        if (succeeded(status))
                return 0;
        describe_status(status, how, sizeof(how));
        errbuf_set(err, "%s %s", argv[0], how);
        return -EPROTO;
}

/* `cp -a FROM TO` (TO must not exist yet: it becomes the copy). */
static int copy_tree(const char *from, const char *to, struct errbuf *err)
{
        char *argv[] = { (char *)"cp", (char *)"-a", (char *)"--", (char *)from, (char *)to,
                         NULL };
        struct errbuf why = {};
        int r;

        r = run_tool(argv, &why);
        if (r < 0)
                errbuf_set(err, "cannot copy '%s' to '%s': %s", from, to, why.msg);
        return r;
}

/* ---- Applying the diff ---------------------------------------------------- */

/* The line of patch's output that says why it failed, as "FILE: reason"
 * when it is about a hunk of the file patch was checking. */
static void patch_reason(const char *out, int status, char *buf, size_t size)
{
        static const char *const noise[] = {
                "|", "---", "The text leading up", "Perhaps you ", "File to patch:",
                "Skip this patch?",
        };
        const char *file = NULL;
        size_t file_len = 0;

        for (const char *p = out; *p;) {
                const char *e = strchrnul(p, '\n');
                size_t ll = (size_t)(e - p), first = 0;
                bool skip = ll == 0, hunk = strncmp(p, "Hunk #", 6) == 0;

                if (strncmp(p, "checking file ", 14) == 0 ||
                    strncmp(p, "patching file ", 14) == 0) {
                        file = p + 14;
                        file_len = ll - 14;
                        skip = true;
                }
                for (size_t i = 0; i < ELEMENTSOF(noise) && !skip; i++)
                        skip = strncmp(p, noise[i], strlen(noise[i])) == 0;
                if (hunk && !memmem(p, ll, "FAILED", 6))
                        skip = true; /* "Hunk #1 succeeded at 12 (offset 2 lines)" */
                if (skip) {
                        p = *e ? e + 1 : e;
                        continue;
                }
                if (strncmp(p, "patch: **** ", 12) == 0) {
                        p += 12;
                        ll -= 12;
                }
                while (ll && (p[ll - 1] == '.' || p[ll - 1] == ' ' || p[ll - 1] == '\r'))
                        ll--;
                if (hunk && file) {
                        snprintf(buf, size, "%.*s: %.*s", (int)file_len, file, (int)ll, p);
                        first = file_len + 2;
                } else
                        snprintf(buf, size, "%.*s", (int)ll, p);
                /* Lowercase the first word, unless it is an acronym. */
                if (first + 1 < size && buf[first] >= 'A' && buf[first] <= 'Z' &&
                    !(buf[first + 1] >= 'A' && buf[first + 1] <= 'Z'))
                        buf[first] = (char)(buf[first] - 'A' + 'a');
                return;
        }
        snprintf(buf, size, "patch ");
        describe_status(status, buf + 6, size - 6);
}

/* `patch -p1 [--dry-run] -f -F0 -i DIFF` in `dir`. -F0: no fuzz, a hunk
 * whose context differs is refused rather than applied somewhere
 * plausible; offsets are fine. No backup files, no questions. */
static int apply_diff(const char *diff, const char *dir, bool dry_run, const char *display_diff,
                      const char *display_dir, struct errbuf *err)
{
        char *argv[] = { (char *)"patch", (char *)"-p1", (char *)"-f", (char *)"-F0",
                         (char *)"--no-backup-if-mismatch", (char *)"-i", (char *)diff,
                         (char *)"-d", (char *)dir, dry_run ? (char *)"--dry-run" : NULL, NULL };
        _cleanup_(child_out_done) struct child_out out = {};
        _cleanup_free_ char *prog = NULL;
        char reason[512];
        int status, r;

        r = find_program("patch", getenv("PATH"), &prog);
        if (r >= 0)
                r = spawn_wait(prog, argv, environ, NULL, &out, NULL, &status);
        if (r < 0) {
                errbuf_set(err, "cannot run patch: %s", strerror(-r));
                return r;
        }
        if (succeeded(status))
                return 0;
        patch_reason(out.text ?: "", status, reason, sizeof(reason));
        errbuf_set(err, "'%s' does not apply to %s: %s", display_diff, display_dir, reason);
        return -ENOEXEC;
}

/* ---- The build ------------------------------------------------------------ */

struct env {
        char **v;
        size_t n;
        size_t log_slot; /* index of LIVEUP_CC_LOG=... */
        size_t map_slot; /* index of LIVEUP_CC_PREFIX_MAP=... */
        const char *path; /* the value of PATH in v */
};

static void env_done(struct env *e)
{
        strv_free(e->v, e->n);
        *e = (struct env){};
}

static bool names_compiler(const char *cc)
{
        const char *base = path_basename(cc);

        return strcmp(base, "cc") == 0 || strstr(base, "gcc") || strstr(base, "clang");
}

/* A real compiler: not liveup itself (a $CC or $PATH left over from
 * another liveup build), and not a compiler cache or distributor: those
 * look the compiler up again in $PATH, would find the wrapper first, and
 * run it again, forever. */
static bool is_real_cc(const char *p, const void *self)
{
        static const char *const launchers[] = { "ccache", "sccache", "distcc", "icecc" };
        _cleanup_free_ char *real = realpath(p, NULL);
        const char *base;

        if (!real || strcmp(real, self) == 0)
                return false;
        base = path_basename(real);
        for (size_t i = 0; i < ELEMENTSOF(launchers); i++)
                if (strstr(base, launchers[i]))
                        return false;
        return true;
}

/* The compiler the wrapper runs: $CC when it names gcc, cc or clang
 * (a plain command, not "ccache gcc"), else gcc, cc or clang from $PATH
 * (see is_real_cc()). */
static int find_real_cc(const char *self, char **ret, struct errbuf *err)
{
        static const char *const fallbacks[] = { "gcc", "cc", "clang" };
        const char *cc = getenv("CC"), *path = getenv("PATH");

        for (size_t i = 0; i <= ELEMENTSOF(fallbacks); i++) {
                const char *name = i == 0 ? cc : fallbacks[i - 1];
                char *p;

                if (!name || !*name || strpbrk(name, " \t") || !names_compiler(name))
                        continue;
                if (find_program_if(name, path, is_real_cc, self, &p) < 0)
                        continue;
                *ret = p;
                return 0;
        }
        errbuf_set(err, "cannot find a C compiler: no gcc, cc or clang in $PATH");
        return -ENOENT;
}

/* Our environment with CC, PATH, LIVEUP_CC_REAL and LIVEUP_CC_LOG set for
 * the wrapper in `bin`. */
static int env_make(const char *bin, const char *real_cc, struct env *ret)
{
        static const char *const ours[] = {
                "CC=", "PATH=", "LIVEUP_CC_REAL=", "LIVEUP_CC_LOG=", "LIVEUP_CC_ACTIVE=",
                "LIVEUP_CC_PREFIX_MAP=",
        };
        _cleanup_(env_done) struct env e = {};
        const char *path = getenv("PATH");
        char *s;
        int r;

        for (char **p = environ; p && *p; p++) {
                bool skip = false;

                for (size_t i = 0; i < ELEMENTSOF(ours) && !skip; i++)
                        skip = strncmp(*p, ours[i], strlen(ours[i])) == 0;
                if (skip)
                        continue;
                r = strv_push(&e.v, &e.n, strdup(*p));
                if (r < 0)
                        return r;
        }
        if (asprintf(&s, "PATH=%s:%s", bin, path ?: "/usr/local/bin:/usr/bin:/bin") < 0)
                return -ENOMEM;
        r = strv_push(&e.v, &e.n, s);
        if (r < 0)
                return r;
        e.path = s + 5;
        if (asprintf(&s, "CC=%s/gcc", bin) < 0)
                return -ENOMEM;
        r = strv_push(&e.v, &e.n, s);
        if (r < 0)
                return r;
        if (asprintf(&s, "LIVEUP_CC_REAL=%s", real_cc) < 0)
                return -ENOMEM;
        r = strv_push(&e.v, &e.n, s);
        if (r < 0)
                return r;
        r = strv_push(&e.v, &e.n, strdup("LIVEUP_CC_LOG="));
        if (r < 0)
                return r;
        e.log_slot = e.n - 1;
        r = strv_push(&e.v, &e.n, strdup("LIVEUP_CC_PREFIX_MAP="));
        if (r < 0)
                return r;
        e.map_slot = e.n - 1;
        *ret = e;
        e = (struct env){};
        return 0;
}

/* The command as the user would type it, for progress lines. */
static char *cmdline(char *const *cmd, size_t n)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const char *a = cmd[i];

                if (i)
                        fputc(' ', f);
                if (*a && !a[strcspn(a, " \t\n'\"\\$`*?[]{}()<>|&;#~")])
                        fputs(a, f);
                else {
                        fputc('\'', f);
                        for (; *a; a++)
                                fputs(*a == '\'' ? "'\\''" : (char[]){ *a, 0 }, f);
                        fputc('\'', f);
                }
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

/* The first line of a build's output that reports an error ("x.c:8:30:
 * error: ..."), for the one-line refusal; "" when none. */
static void first_error(const char *path, char *buf, size_t size)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *line, *next;

        buf[0] = 0;
        if (read_file_str(path, &text, &len) < 0)
                return;
        for (line = text; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (strstr(line, "error:") || strstr(line, "Error ")) {
                        snprintf(buf, size, "%s", line);
                        return;
                }
        }
}

/* Run BUILD-COMMAND in `root` with `log` as the wrapper's log (emptied
 * first). `what` names the tree in messages ("unpatched", "patched").
 * Adds the wall time to *seconds. Without o->progress the build's output
 * goes to LOG.out (a failure quotes its first error line), else to our
 * stderr. */
static int run_build(const struct lb_trees_opts *o, struct env *e, const char *root,
                     const char *log, const char *what, double *seconds, struct errbuf *err)
{
        _cleanup_free_ char *prog = NULL, *var = NULL, *out = NULL;
        uint64_t start;
        char how[64], first[256];
        int status, r;

        if (!o->progress && asprintf(&out, "%s.out", log) < 0)
                return -ENOMEM;
        if (unlink(log) < 0 && errno != ENOENT)
                return -errno;
        if (asprintf(&var, "LIVEUP_CC_LOG=%s", log) < 0)
                return -ENOMEM;
        free(e->v[e->log_slot]);
        e->v[e->log_slot] = TAKE_PTR(var);
        /* Paths the compiler writes (__FILE__ with absolute paths, debug
         * info) name DIR, as in BIN, not the scratch tree: the two trees
         * then differ only by the diff. */
        {
                _cleanup_free_ char *src = realpath(o->src, NULL);

                if (!src || asprintf(&var, "LIVEUP_CC_PREFIX_MAP=%s=%s", root, src) < 0)
                        return -ENOMEM;
                free(e->v[e->map_slot]);
                e->v[e->map_slot] = TAKE_PTR(var);
        }

        /* Looked up with the build's PATH, as `env PATH=... CMD` would:
         * a build command "gcc ..." runs the wrapper too. */
        if (strchr(o->cmd[0], '/') && o->cmd[0][0] != '/') {
                /* "./build.sh": relative to the tree. */
                _cleanup_free_ char *p = path_join(root, o->cmd[0]);

                r = p ? find_program(p, NULL, &prog) : -ENOMEM;
        } else
                r = find_program(o->cmd[0], e->path, &prog);
        if (r < 0) {
                errbuf_set(err, "cannot run the build command '%s' in the %s tree: %s",
                           o->cmd[0], what, r == -ENOENT ? "not found" : strerror(-r));
                return r;
        }
        start = now_ns();
        r = spawn_wait(prog, o->cmd, e->v, root, NULL, out, &status);
        *seconds += (double)(now_ns() - start) / 1e9;
        if (r < 0) {
                errbuf_set(err, "cannot run the build command '%s' in the %s tree: %s",
                           o->cmd[0], what, strerror(-r));
                return r;
        }
        if (!succeeded(status)) {
                describe_status(status, how, sizeof(how));
                if (out)
                        first_error(out, first, sizeof(first));
                errbuf_set(err, "build command failed in the %s tree: '%s' %s%s%s%s", what,
                           o->cmd[0], how, out && first[0] ? ": " : "", out ? first : "",
                           out ? " (--progress shows the build's output)" : "");
                return -EPROTO;
        }
        return 0;
}

/* ---- The wrapper's logs ---------------------------------------------------- */

struct entry {
        char *rel;     /* object, relative to the root */
        char *src_rel; /* source, relative, or absolute when outside the tree */
        size_t seq;    /* line number: the last line of an object wins */
};

struct entries {
        struct entry *v;
        size_t n;
};

static void entries_done(struct entries *es)
{
        for (size_t i = 0; i < es->n; i++) {
                free(es->v[i].rel);
                free(es->v[i].src_rel);
        }
        free(es->v);
        *es = (struct entries){};
}

static int entry_cmp(const void *a, const void *b)
{
        const struct entry *x = a, *y = b;
        int c = strcmp(x->rel, y->rel);

        if (c)
                return c;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const struct entry *entries_find(const struct entries *es, const char *rel)
{
        size_t lo = 0, hi = es->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(rel, es->v[mid].rel);

                if (c == 0)
                        return &es->v[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* A source's path with its folder resolved but not the file itself: a
 * source that is a symlink keeps its name in the tree, the one the diff
 * uses. As given when the folder is gone. */
static char *resolve_source(const char *path)
{
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = NULL, *real = NULL;

        if (!slash || slash == path)
                return strdup(path);
        dir = strndup(path, (size_t)(slash - path));
        if (!dir)
                return NULL;
        real = realpath(dir, NULL);
        if (!real)
                return strdup(path);
        return path_join(real, slash + 1);
}

/* Read the wrapper's log of the build in `root`: objects that exist,
 * sorted by relative path, one entry each (the last line wins). An
 * object that exists outside `root` is -ENOTSUP (named in `err`); a line
 * that is not "CWD\tSOURCE\tOBJECT" is -EBADMSG. */
static int read_log(const char *log, const char *root, struct entries *ret, struct errbuf *err)
{
        _cleanup_(entries_done) struct entries es = {};
        _cleanup_free_ char *text = NULL;
        size_t len, seq = 0, w = 0, cap = 0;
        int r;

        r = read_file_str(log, &text, &len);
        if (r == -ENOENT) {
                *ret = es;
                return 0;
        }
        if (r < 0) {
                errbuf_set(err, "cannot read the compiler log '%s': %s", log, strerror(-r));
                return r;
        }
        for (char *line = text, *nl; line < text + len; line = nl + 1, seq++) {
                _cleanup_free_ char *obj = NULL, *src = NULL;
                char *t1, *t2;
                const char *rel, *src_rel;
                struct entry *nv;

                nl = strchr(line, '\n');
                if (!nl)
                        break; /* a line being written: not ours to read */
                *nl = 0;
                t1 = strchr(line, '\t');
                t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
                if (!t2 || strchr(t2 + 1, '\t')) {
                        errbuf_set(err, "cannot read the compiler log '%s': line %zu is not "
                                   "\"directory, source, object\" (a tab or newline in a path?)",
                                   log, seq + 1);
                        return -EBADMSG;
                }
                *t1 = *t2 = 0;
                obj = realpath(t2 + 1, NULL);
                if (!obj) {
                        if (errno == ENOENT || errno == ENOTDIR) {
                                log_debug("%s: '%s' is gone after the build (a probe?)", log,
                                          t2 + 1);
                                continue;
                        }
                        r = -errno;
                        errbuf_set(err, "cannot resolve the object '%s': %s", t2 + 1,
                                   strerror(-r));
                        return r;
                }
                rel = below(obj, root);
                if (!rel) {
                        errbuf_set(err, "the build compiled '%s' from '%s' outside the tree "
                                   "'%s': objects must be in the tree to be paired",
                                   obj, t1 + 1, root);
                        return -ENOTSUP;
                }
                src = resolve_source(t1 + 1);
                if (!src)
                        return -ENOMEM;
                src_rel = below(src, root) ?: src;
                if (es.n == cap) {
                        cap = cap ? cap * 2 : 64;
                        nv = realloc(es.v, cap * sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        es.v = nv;
                }
                es.v[es.n] = (struct entry){ .rel = strdup(rel), .src_rel = strdup(src_rel),
                                             .seq = seq };
                es.n++;
                if (!es.v[es.n - 1].rel || !es.v[es.n - 1].src_rel)
                        return -ENOMEM;
        }
        /* Sort by path, then line; keep the last entry of each path. */
        if (es.n)
                qsort(es.v, es.n, sizeof(*es.v), entry_cmp);
        for (size_t i = 0; i < es.n; i++) {
                if (i + 1 < es.n && strcmp(es.v[i].rel, es.v[i + 1].rel) == 0) {
                        free(es.v[i].rel);
                        free(es.v[i].src_rel);
                        continue;
                }
                es.v[w++] = es.v[i];
        }
        es.n = w;
        *ret = es;
        es = (struct entries){};
        return 0;
}

/* ---- Putting it together ----------------------------------------------------- */

void lb_trees_free(struct lb_trees *t)
{
        if (!t)
                return;
        if (t->dir && !t->keep) {
                int r = rm_rf(t->dir);

                if (r < 0)
                        log_debug("cannot remove the scratch folder '%s': %s", t->dir,
                                  strerror(-r));
        }
        for (size_t i = 0; i < t->n_objs; i++) {
                free(t->objs[i].rel);
                free(t->objs[i].src_rel);
                free(t->objs[i].orig);
                free(t->objs[i].patched);
        }
        free(t->objs);
        lb_udiff_free(t->diff);
        strv_free(t->added, t->n_added);
        free(t->dir);
        free(t->orig_root);
        free(t->patched_root);
        free(t);
}

/* State of one lb_trees_build() call. */
struct ctx {
        const struct lb_trees_opts *o;
        struct lb_trees *t;
        char *src;  /* DIR, resolved */
        char *diff; /* FIX.diff, resolved */
        char *display_dir; /* "'DIR'" as the user wrote it */
        struct env env;
        char *orig_log, *patched_log;
        char *cmd; /* for progress lines */
};

static void ctx_done(struct ctx *c)
{
        free(c->src);
        free(c->diff);
        free(c->display_dir);
        env_done(&c->env);
        free(c->orig_log);
        free(c->patched_log);
        free(c->cmd);
}

/* A fresh copy of DIR at `root`, without build outputs. */
static int copy_clean(struct ctx *c, const char *root, struct errbuf *err)
{
        size_t removed = 0;
        int r;

        r = copy_tree(c->src, root, err);
        if (r < 0)
                return r;
        r = remove_outputs(root, &removed);
        if (r < 0) {
                errbuf_set(err, "cannot remove the build outputs from the copy '%s': %s", root,
                           strerror(-r));
                return r;
        }
        log_debug("removed %zu build outputs from the copy of '%s'", removed, c->o->src);
        return 0;
}

static int build_orig(struct ctx *c, struct entries *ret, struct errbuf *err)
{
        struct lb_trees *t = c->t;
        int r;

        r = copy_clean(c, t->orig_root, err);
        if (r < 0)
                return r;
        if (c->o->progress)
                log_info("building the unpatched tree (1/2): %s", c->cmd);
        r = run_build(c->o, &c->env, t->orig_root, c->orig_log, "unpatched", &t->orig_seconds,
                      err);
        if (r < 0)
                return r;
        if (c->o->progress)
                log_info("built the unpatched tree in %.1f s", t->orig_seconds);
        r = read_log(c->orig_log, t->orig_root, ret, err);
        if (r < 0)
                return r;
        if (ret->n == 0) {
                errbuf_set(err, "the build command '%s' compiled nothing through liveup's "
                           "compiler wrapper in the unpatched tree (does the build use $CC, or "
                           "cc/gcc from $PATH?)", c->o->cmd[0]);
                return -EPROTO;
        }
        return 0;
}

/* Why an incremental build of the patched tree cannot be trusted, before
 * trying (NULL: it can): the diff changes a file that is not a .c file. */
static const char *incremental_refused(const struct lb_trees *t)
{
        for (size_t i = 0; i < t->diff->n_touched; i++)
                if (!has_suffix(t->diff->touched[i], ".c"))
                        return t->diff->touched[i];
        return NULL;
}

/* After an incremental build: the first .c file the diff changes (and
 * that exists after it) that the build did not compile, or a source it
 * compiled from the unpatched tree. NULL: all good. */
static const char *incremental_missed(const struct ctx *c, const struct entries *pe,
                                      bool *ret_foreign)
{
        const struct lb_trees *t = c->t;

        for (size_t i = 0; i < pe->n; i++)
                if (pe->v[i].src_rel[0] == '/' && below(pe->v[i].src_rel, t->orig_root)) {
                        *ret_foreign = true;
                        return pe->v[i].src_rel;
                }
        for (size_t i = 0; i < t->diff->n_touched; i++) {
                const char *f = t->diff->touched[i];
                _cleanup_free_ char *p = path_join(t->patched_root, f);
                bool found = false;

                if (p && access(p, F_OK) < 0)
                        continue; /* deleted by the diff */
                for (size_t k = 0; k < pe->n && !found; k++)
                        found = strcmp(pe->v[k].src_rel, f) == 0;
                if (!found) {
                        *ret_foreign = false;
                        return f;
                }
        }
        return NULL;
}

static int build_patched_fresh(struct ctx *c, struct entries *ret, struct errbuf *err)
{
        struct lb_trees *t = c->t;
        int r;

        r = rm_rf(t->patched_root);
        if (r < 0) {
                errbuf_set(err, "cannot remove '%s': %s", t->patched_root, strerror(-r));
                return r;
        }
        r = copy_clean(c, t->patched_root, err);
        if (r < 0)
                return r;
        r = apply_diff(c->diff, t->patched_root, false, c->o->diff, c->display_dir, err);
        if (r < 0)
                return r;
        r = run_build(c->o, &c->env, t->patched_root, c->patched_log, "patched",
                      &t->patched_seconds, err);
        if (r < 0)
                return r;
        t->incremental = false;
        return read_log(c->patched_log, t->patched_root, ret, err);
}

static int build_patched(struct ctx *c, struct entries *ret, struct errbuf *err)
{
        _cleanup_(entries_done) struct entries pe = {};
        struct lb_trees *t = c->t;
        const char *why = incremental_refused(t), *missed;
        struct errbuf inc_err = {};
        bool foreign = false;
        int r;

        if (why) {
                if (c->o->progress)
                        log_info("building the patched tree (2/2, from a fresh copy: the diff "
                                 "changes '%s'): %s", why, c->cmd);
                r = build_patched_fresh(c, ret, err);
                goto done;
        }

        r = copy_tree(t->orig_root, t->patched_root, err);
        if (r < 0)
                return r;
        r = apply_diff(c->diff, t->patched_root, false, c->o->diff, c->display_dir, err);
        if (r < 0)
                return r;
        if (c->o->progress)
                log_info("building the patched tree (2/2, incremental): %s", c->cmd);
        r = run_build(c->o, &c->env, t->patched_root, c->patched_log, "patched",
                      &t->patched_seconds, &inc_err);
        if (r == -EPROTO) {
                if (c->o->progress)
                        log_info("the incremental build failed: building the patched tree "
                                 "again from a fresh copy (2/2): %s", c->cmd);
                r = build_patched_fresh(c, ret, err);
                goto done;
        }
        if (r < 0) {
                *err = inc_err;
                return r;
        }
        r = read_log(c->patched_log, t->patched_root, &pe, &inc_err);
        if (r == -ENOTSUP) {
                if (c->o->progress)
                        log_info("the incremental build wrote outside the patched tree: "
                                 "building it again from a fresh copy (2/2): %s", c->cmd);
                r = build_patched_fresh(c, ret, err);
                goto done;
        }
        if (r < 0) {
                *err = inc_err;
                return r;
        }
        missed = incremental_missed(c, &pe, &foreign);
        if (missed) {
                if (c->o->progress)
                        log_info("the incremental build %s '%s': building the patched tree "
                                 "again from a fresh copy (2/2): %s",
                                 foreign ? "compiled the unpatched" : "did not recompile",
                                 missed, c->cmd);
                r = build_patched_fresh(c, ret, err);
                goto done;
        }
        t->incremental = true;
        *ret = pe;
        pe = (struct entries){};
done:
        if (r >= 0 && c->o->progress)
                log_info("built the patched tree in %.1f s", t->patched_seconds);
        return r;
}

/* The pairs and the added objects, from both logs. */
static int pair_objects(struct lb_trees *t, const struct entries *oe, const struct entries *pe)
{
        t->objs = calloc(oe->n, sizeof(*t->objs));
        if (oe->n && !t->objs)
                return -ENOMEM;
        for (size_t i = 0; i < oe->n; i++) {
                struct lb_object_pair *p = &t->objs[t->n_objs++];
                const struct entry *e = entries_find(pe, oe->v[i].rel);
                struct stat st;

                p->rel = strdup(oe->v[i].rel);
                p->src_rel = strdup(oe->v[i].src_rel);
                p->orig = path_join(t->orig_root, oe->v[i].rel);
                if (!p->rel || !p->src_rel || !p->orig)
                        return -ENOMEM;
                p->recompiled = e != NULL;
                if (e || t->incremental) {
                        p->patched = path_join(t->patched_root, oe->v[i].rel);
                        if (!p->patched)
                                return -ENOMEM;
                        if (!e && stat(p->patched, &st) < 0) { /* the build deleted it */
                                free(p->patched);
                                p->patched = NULL;
                        }
                }
        }
        for (size_t i = 0; i < pe->n; i++) {
                int r;

                if (entries_find(oe, pe->v[i].rel))
                        continue;
                r = strv_push(&t->added, &t->n_added, strdup(pe->v[i].rel));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int make_scratch(struct ctx *c, const char *self, struct errbuf *err)
{
        struct lb_trees *t = c->t;
        const char *base = getenv("TMPDIR");
        _cleanup_free_ char *tmpl = NULL, *bin = NULL;
        int r;

        if (!base || base[0] != '/')
                base = "/tmp";
        if (asprintf(&tmpl, "%s/liveup-trees.XXXXXX", base) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmpl)) {
                r = -errno;
                errbuf_set(err, "cannot make a scratch folder in '%s': %s", base, strerror(-r));
                return r;
        }
        t->dir = realpath(tmpl, NULL);
        if (!t->dir) {
                r = -errno;
                (void)rmdir(tmpl);
                return r;
        }
        if (t->keep)
                log_info("keeping the scratch folder '%s'", t->dir);
        t->orig_root = path_join(t->dir, "orig");
        t->patched_root = path_join(t->dir, "patched");
        c->orig_log = path_join(t->dir, "orig.log");
        c->patched_log = path_join(t->dir, "patched.log");
        bin = path_join(t->dir, "bin");
        if (!t->orig_root || !t->patched_root || !c->orig_log || !c->patched_log || !bin)
                return -ENOMEM;
        if (mkdir(bin, 0755) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(wrapper_names); i++) {
                _cleanup_free_ char *link = path_join(bin, wrapper_names[i]);

                if (!link)
                        return -ENOMEM;
                if (symlink(self, link) < 0) {
                        r = -errno;
                        errbuf_set(err, "cannot make the compiler wrapper '%s': %s", link,
                                   strerror(-r));
                        return r;
                }
        }
        return 0;
}

int lb_trees_build(const struct lb_trees_opts *o, struct lb_trees **ret, struct errbuf *err)
{
        _cleanup_(lb_trees_freep) struct lb_trees *t = NULL;
        _cleanup_(entries_done) struct entries oe = {}, pe = {};
        _cleanup_(ctx_done) struct ctx c = { .o = o };
        _cleanup_free_ char *self = NULL, *real_cc = NULL, *bin = NULL;
        struct stat st;
        int r;

        if (!o->diff || !o->src || !o->self || !o->cmd || o->n_cmd == 0 || !o->cmd[0] ||
            o->cmd[o->n_cmd]) {
                errbuf_set(err, "cannot build the trees: %s",
                           !o->cmd || o->n_cmd == 0 ? "no build command" : "missing arguments");
                return -EINVAL;
        }
        c.src = realpath(o->src, NULL);
        if (!c.src || stat(c.src, &st) < 0 || !S_ISDIR(st.st_mode)) {
                r = c.src ? -ENOTDIR : -errno;
                errbuf_set(err, "cannot use '%s' as the source folder: %s", o->src, strerror(-r));
                return -EINVAL;
        }
        c.diff = realpath(o->diff, NULL);
        if (!c.diff || stat(c.diff, &st) < 0 || !S_ISREG(st.st_mode)) {
                r = c.diff ? -EISDIR : -errno;
                errbuf_set(err, "cannot read the diff '%s': %s", o->diff, strerror(-r));
                return -EINVAL;
        }
        self = realpath(o->self, NULL);
        if (!self) {
                r = -errno;
                errbuf_set(err, "cannot find the liveup executable '%s': %s", o->self,
                           strerror(-r));
                return r;
        }
        if (asprintf(&c.display_dir, "'%s'", o->src) < 0) {
                c.display_dir = NULL;
                return -ENOMEM;
        }
        c.cmd = cmdline(o->cmd, o->n_cmd);
        if (!c.cmd)
                return -ENOMEM;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->keep = o->keep;
        c.t = t;
        /* An unreadable diff, or one with a hunk that does not match its
         * header, is a bad input file, whatever patch makes of it (it
         * may drop a line silently). */
        r = lb_udiff_read(c.diff, o->diff, &t->diff, err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EINVAL;
        /* patch's own message next: it knows best why a diff does not
         * apply; then ours for what patch accepts silently (an empty
         * file, a context diff, a name with ".."). */
        r = apply_diff(c.diff, c.src, true, o->diff, c.display_dir, err);
        if (r < 0)
                return r;
        if (t->diff->outside) {
                errbuf_set(err, "'%s' changes a file outside the tree: '%s'", o->diff,
                           t->diff->outside);
                return -ENOEXEC;
        }
        if (t->diff->n_touched == 0) {
                errbuf_set(err, "'%s' is not a unified diff: it changes no file", o->diff);
                return -ENOEXEC;
        }
        r = find_real_cc(self, &real_cc, err);
        if (r < 0)
                return r;

        r = make_scratch(&c, self, err);
        if (r < 0)
                return r;
        bin = path_join(t->dir, "bin");
        if (!bin)
                return -ENOMEM;
        r = env_make(bin, real_cc, &c.env);
        if (r < 0)
                return r;

        r = build_orig(&c, &oe, err);
        if (r < 0)
                return r;
        r = build_patched(&c, &pe, err);
        if (r < 0)
                return r;
        r = pair_objects(t, &oe, &pe);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}
