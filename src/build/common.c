/* Helpers shared by the patch builder's modes (replace.c, diff.c): string
 * lists, a private temporary folder, running tools, patch names and ids,
 * writing files atomically, attaching the .liveup section. */
#include "build/common.h"

#include "arch/arch.h"
#include "elf/elf.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* ---- String lists -------------------------------------------------------- */


void lb_strv_done(struct lb_strv *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (struct lb_strv){};
}

bool lb_strv_contains(const struct lb_strv *s, const char *x)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], x) == 0)
                        return true;
        return false;
}

int lb_strv_push(struct lb_strv *s, const char *x)
{
        char **nv;

        nv = reallocarray(s->v, s->n + 1, sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        s->v = nv;
        nv[s->n] = strdup(x);
        if (!nv[s->n])
                return -ENOMEM;
        s->n++;
        return 0;
}

_printf_(2, 3) int lb_strv_pushf(struct lb_strv *s, const char *fmt, ...)
{
        _cleanup_free_ char *x = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&x, fmt, ap);
        va_end(ap);
        if (k < 0) {
                x = NULL;
                return -ENOMEM;
        }
        return lb_strv_push(s, x);
}


/* ---- The temporary folder ------------------------------------------------ */


/* Remove the folder and the files in it (gcc or the user's CFLAGS may have
 * left more than ours, never subfolders). */
void lb_tmpdir_done(struct lb_tmpdir *t)
{
        DIR *d;
        struct dirent *de;

        if (!t->path)
                return;
        d = opendir(t->path);
        if (d) {
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                (void)unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void)rmdir(t->path);
        free(t->path);
        t->path = NULL;
}

int lb_tmpdir_make(struct lb_tmpdir *t)
{
        const char *base = getenv("TMPDIR");

        if (!base || *base != '/')
                base = "/tmp";
        if (asprintf(&t->path, "%s/liveup-build.XXXXXX", base) < 0) {
                t->path = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(t->path)) {
                int r = -errno;

                free(t->path);
                t->path = NULL;
                return r;
        }
        return 0;
}

char *lb_tmpdir_file(const struct lb_tmpdir *t, const char *name)
{
        char *p;

        if (asprintf(&p, "%s/%s", t->path, name) < 0)
                return NULL;
        return p;
}


/* Run argv[0] (from $PATH) with our stdin and stderr, its stdout sent to
 * our stderr (stdout may carry --json). Returns 0 when it ran and exited
 * 0; -ENOENT when it cannot be found; -EPROTO when it failed (what it
 * printed tells why; `err` says how it ended). */
int lb_run_tool(char *const argv[], struct errbuf *err)
{
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status, r;

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) {
                errbuf_set(err, "cannot run %s: %s", argv[0], strerror(r));
                return -r;
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                errbuf_set(err, "%s exited with status %d", argv[0], WEXITSTATUS(status));
        else
                errbuf_set(err, "%s was killed by signal %d", argv[0],
                           WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return -EPROTO;
}


/* ---- Names --------------------------------------------------------------- */

/* The file's basename without the first of `exts` it ends with. */
char *lb_file_stem(const char *path, const char *const *exts)
{
        char *s;
        size_t n;

        s = strdup(path_basename(path));
        if (!s)
                return NULL;
        n = strlen(s);
        for (; exts && *exts; exts++) {
                size_t k = strlen(*exts);

                if (n > k && strcmp(s + n - k, *exts) == 0) {
                        s[n - k] = 0;
                        break;
                }
        }
        return s;
}

static bool name_char_ok(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.' || c == '+';
}

bool lb_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > LB_NAME_MAX || s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!name_char_ok(s[i]))
                        return false;
        return true;
}

/* The default name: FIX's stem with other characters made '_'. */
char *lb_default_name(const char *path, const char *const *exts)
{
        char *s = lb_file_stem(path, exts);

        if (!s)
                return NULL;
        for (char *p = s; *p; p++)
                if (!name_char_ok(*p))
                        *p = '_';
        if (strlen(s) > LB_NAME_MAX)
                s[LB_NAME_MAX] = 0;
        if (s[0] == '-' || s[0] == '.')
                s[0] = '_';
        if (!*s) {
                free(s);
                return strdup("patch");
        }
        return s;
}

int lb_patch_name(const char *given, const char *file, const char *const *exts, char **ret,
                  struct errbuf *err)
{
        char *name;

        if (given) {
                if (!lb_name_ok(given)) {
                        errbuf_set(err,
                                   "invalid patch name '%s' (1 to %d letters, digits, '_', '-', "
                                   "'.', '+'; not starting with '-' or '.')",
                                   given, LB_NAME_MAX);
                        return -EINVAL;
                }
                name = strdup(given);
        } else
                name = lb_default_name(file, exts);
        if (!name)
                return -ENOMEM;
        *ret = name;
        return 0;
}

uint64_t lb_created_time(void)
{
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        char *end;
        unsigned long long v;

        /* Reproducible builds set it; anything odd is ignored. */
        if (sde && *sde >= '0' && *sde <= '9') {
                errno = 0;
                v = strtoull(sde, &end, 10);
                if (errno == 0 && *end == 0)
                        return v;
        }
        return (uint64_t)time(NULL);
}


/* ---- Writing ------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t size)
{
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t k = write(fd, p, size);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t)k;
        }
        return 0;
}

int lb_write_file(const char *path, const void *data, size_t size)
{
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, size);
        if (r < 0)
                return r;
        if (close(TAKE_FD(fd)) < 0)
                return -errno;
        return 0;
}

/* Put `data` at `path` atomically: a temporary name in the same folder,
 * then rename(2). The mode is what a plain creat() would give. */
int lb_install(const char *path, const void *data, size_t size)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        mode_t mask;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        mask = umask(0);
        umask(mask);
        r = write_all(fd, data, size);
        if (r >= 0 && fchmod(fd, 0666 & ~mask) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(tmp);
        return r;
}


/* The patch id: NAME-xxxxxxxx, from the patch object's bytes and the
 * target's build-id (the same fix for another build is another patch). */
char *lb_make_id(const char *name, const void *obj, size_t obj_size, const uint8_t *bid,
                 size_t bid_len)
{
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t h;
        char *id;

        buf = malloc(obj_size + bid_len);
        if (!buf)
                return NULL;
        memcpy(buf, obj, obj_size);
        memcpy(buf + obj_size, bid, bid_len);
        h = lp_hash(buf, obj_size + bid_len);
        if (asprintf(&id, "%s-%08" PRIx32, name, (uint32_t)(h ^ (h >> 32))) < 0)
                return NULL;
        return id;
}

int lb_attach_meta(const struct lb_tmpdir *td, const char *obj_path, const void *meta,
                       size_t meta_size, const char *lpo_path, const char *fix,
                       struct errbuf *err)
{
        _cleanup_free_ char *meta_path = NULL, *arg = NULL;
        struct errbuf why = {};
        int r;

        meta_path = lb_tmpdir_file(td, "liveup.meta");
        if (!meta_path)
                return -ENOMEM;
        r = lb_write_file(meta_path, meta, meta_size);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot write '%s': %s", fix, meta_path,
                           strerror(-r));
                return r;
        }
        if (asprintf(&arg, "%s=%s", LP_META_SECTION, meta_path) < 0) {
                arg = NULL;
                return -ENOMEM;
        }
        r = lb_run_tool((char *const[]){ (char *)"objcopy", (char *)"--add-section", arg,
                                      (char *)"--set-section-flags",
                                      (char *)LP_META_SECTION "=readonly", (char *)obj_path,
                                      (char *)lpo_path, NULL },
                     &why);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot add the metadata section: %s", fix,
                           why.msg);
                return r;
        }
        return 0;
}


bool lb_same_file(const char *a, const char *c)
{
        struct stat sa, sc;

        return stat(a, &sa) == 0 && stat(c, &sc) == 0 && sa.st_dev == sc.st_dev &&
               sa.st_ino == sc.st_ino;
}


/* ---- The target's functions ---------------------------------------------- */

int lb_target_func(struct elf_file *bin, const char *bin_name, const struct elf_symbol *t,
                   const char *what, struct lp_func *ret, struct errbuf *err)
{
        _cleanup_free_ uint8_t *code = NULL;
        size_t need;
        int r;

        if (t->size == 0) {
                errbuf_set(err, "cannot build '%s': function '%s' has no size in '%s'", what,
                           t->name, bin_name);
                return -ENODATA;
        }
        if (t->size > (1u << 30)) {
                errbuf_set(err, "cannot build '%s': function '%s' in '%s' is too large", what,
                           t->name, bin_name);
                return -EFBIG;
        }
        code = malloc(t->size);
        if (!code)
                return -ENOMEM;
        r = elf_file_read_vaddr(bin, t->addr, code, t->size);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot read function '%s' from '%s'", what,
                           t->name, bin_name);
                return r;
        }
        need = arch_landing_pad_size(code, t->size) + arch_jump_size();
        if (t->size < need) {
                errbuf_set(err,
                           "cannot build '%s': function '%s' is %" PRIu64
                           " byte%s long, a jump needs %zu",
                           what, t->name, t->size, t->size == 1 ? "" : "s", need);
                return -ERANGE;
        }
        *ret = (struct lp_func){
                .name = t->name,
                .new_name = t->name,
                .addr = t->addr,
                .size = t->size,
                .hash = lp_hash(code, t->size),
                .flags = t->local ? LP_FUNC_LOCAL : 0,
        };
        memcpy(ret->entry, code, MIN(t->size, (uint64_t)sizeof(ret->entry)));
        return 0;
}

/* ---- Writing the patch file ---------------------------------------------- */

int lb_write_patch(const struct lb_tmpdir *td, const char *obj_path, const struct lp_file *desc,
                   const char *output, const char *what, struct lp_file **ret,
                   struct errbuf *err)
{
        _cleanup_(lp_file_freep) struct lp_file *patch = NULL;
        _cleanup_free_ char *lpo_path = NULL;
        _cleanup_free_ void *meta = NULL;
        struct errbuf lerr = {};
        size_t meta_size;
        int r;

        lpo_path = lb_tmpdir_file(td, "patch.lpo");
        if (!lpo_path)
                return -ENOMEM;
        r = lp_meta_serialize(desc, &meta, &meta_size);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot write the patch metadata: %s", what,
                           strerror(-r));
                return r;
        }
        r = lb_attach_meta(td, obj_path, meta, meta_size, lpo_path, what, err);
        if (r < 0)
                return r;
        /* Read it back as apply will. */
        r = lp_file_open(lpo_path, &patch, &lerr);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': the patch does not read back: %s", what,
                           errbuf_or_strerror(&lerr, r));
                return r == -ENOMEM ? r : -EIO;
        }
        r = lb_install(output, patch->image, patch->image_size);
        if (r < 0) {
                errbuf_set(err, "cannot build '%s': cannot write '%s': %s", what, output,
                           strerror(-r));
                return r;
        }
        free(patch->path);
        patch->path = strdup(output);
        if (!patch->path)
                return -ENOMEM;
        *ret = TAKE_PTR(patch);
        return 0;
}
