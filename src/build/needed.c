/* What a target's undefined references can reach: its own imports and the
 * exported symbols of the libraries it needs, transitively. The builder
 * uses it to refuse, at build time, a patch that references a symbol
 * nothing in the target process will define.
 *
 * Libraries are found much as ld.so(8) finds them, without running
 * anything: a DT_NEEDED name with a slash is a path; otherwise DT_RPATH
 * of the object that needs it (only when it has no DT_RUNPATH), then
 * DT_RUNPATH, $LD_LIBRARY_PATH, the folders listed in /etc/ld.so.conf
 * (with its includes) and the default folders. One difference: ld.so
 * reads $LD_LIBRARY_PATH before DT_RUNPATH, but here it is the builder's
 * environment, not the target process's, so the object's own search path
 * comes first. A candidate that is not an ELF shared object of this ISA
 * and ELF class is skipped, as ld.so skips it. $ORIGIN is expanded; other
 * dynamic string tokens ($LIB, $PLATFORM) make an entry unusable, so it
 * is skipped.
 *
 * Lifecycle: everything is read in lb_needed_open(); the symbol names
 * point into the libraries' mappings, which stay open (and the Elf
 * handles with them) until lb_needed_free(). The closure is bounded
 * (MAX_LIBS) and each library is read once. */
#include "build/needed.h"

#include "arch/arch.h"
#include "elf/elf.h"

#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#define MAX_LIBS 256
#define MAX_CONF_DEPTH 8

struct lib {
        char *path; /* real path */
        int fd;
        Elf *elf;
};

struct lb_needed {
        struct lib libs[MAX_LIBS];
        size_t n_libs;
        int elf_class;     /* ELFCLASS* of the target */
        /* Names, sorted once everything is read. */
        const char **names;
        size_t n_names, cap_names;
        /* Folders from /etc/ld.so.conf and the defaults. */
        char **sys_dirs;
        size_t n_sys_dirs;
};

void lb_needed_free(struct lb_needed *n)
{
        if (!n)
                return;
        for (size_t i = 0; i < n->n_libs; i++) {
                if (n->libs[i].elf)
                        elf_end(n->libs[i].elf);
                safe_close(n->libs[i].fd);
                free(n->libs[i].path);
        }
        for (size_t i = 0; i < n->n_sys_dirs; i++)
                free(n->sys_dirs[i]);
        free(n->sys_dirs);
        free(n->names);
        free(n);
}

static int push_name(struct lb_needed *n, const char *name)
{
        if (n->n_names == n->cap_names) {
                size_t ncap = n->cap_names ? n->cap_names * 2 : 4096;
                const char **nv = reallocarray(n->names, ncap, sizeof(*nv));

                if (!nv)
                        return -ENOMEM;
                n->names = nv;
                n->cap_names = ncap;
        }
        n->names[n->n_names++] = name;
        return 0;
}

static int push_dir(char ***v, size_t *n, const char *dir)
{
        char **nv;

        if (!*dir)
                return 0;
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*v)[i], dir) == 0)
                        return 0;
        nv = reallocarray(*v, *n + 1, sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        nv[*n] = strdup(dir);
        if (!nv[*n])
                return -ENOMEM;
        (*n)++;
        return 0;
}

/* ---- /etc/ld.so.conf ---------------------------------------------------- */

static int read_conf(struct lb_needed *n, const char *path, unsigned depth);

static int read_conf_line(struct lb_needed *n, char *line, unsigned depth)
{
        char *s = line, *e;

        e = strchr(s, '#');
        if (e)
                *e = 0;
        s += strspn(s, " \t");
        e = s + strlen(s);
        while (e > s && strchr(" \t\r\n", e[-1]))
                *--e = 0;
        if (!*s)
                return 0;
        if (strncmp(s, "include", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
                glob_t g = {};
                int r = 0;

                s += 7 + strspn(s + 7, " \t");
                if (glob(s, 0, NULL, &g) == 0)
                        for (size_t i = 0; i < g.gl_pathc && r >= 0; i++)
                                r = read_conf(n, g.gl_pathv[i], depth + 1);
                globfree(&g);
                return r;
        }
        if (strncmp(s, "hwcap", 5) == 0 || *s != '/')
                return 0;
        return push_dir(&n->sys_dirs, &n->n_sys_dirs, s);
}

static int read_conf(struct lb_needed *n, const char *path, unsigned depth)
{
        _cleanup_free_ char *text = NULL;
        char *save = NULL;
        int r = 0;

        if (depth > MAX_CONF_DEPTH || read_file_str(path, &text, NULL) < 0)
                return 0; /* absent or unreadable: no folders from it */
        for (char *line = strtok_r(text, "\n", &save); line && r >= 0;
             line = strtok_r(NULL, "\n", &save))
                r = read_conf_line(n, line, depth);
        return r;
}

static int load_sys_dirs(struct lb_needed *n)
{
        static const char *const defaults[] = { "/lib64", "/usr/lib64", "/lib", "/usr/lib" };
        int r;

        r = read_conf(n, "/etc/ld.so.conf", 0);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(defaults); i++)
                r = push_dir(&n->sys_dirs, &n->n_sys_dirs, defaults[i]);
        return r;
}

/* ---- One object's dynamic section --------------------------------------- */

struct dyn_info {
        const char *needed[MAX_LIBS];
        size_t n_needed;
        const char *rpath, *runpath;
};

static void read_dynamic(Elf *elf, struct dyn_info *ret)
{
        Elf_Scn *scn = NULL;

        *ret = (struct dyn_info){};
        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;
                size_t count, entsize;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
                        continue;
                d = elf_getdata(scn, NULL);
                entsize = gelf_fsize(elf, ELF_T_DYN, 1, EV_CURRENT);
                if (!d || !d->d_buf || d->d_type != ELF_T_DYN || entsize == 0)
                        return;
                count = d->d_size / entsize;
                for (size_t i = 0; i < count && i <= INT_MAX; i++) {
                        GElf_Dyn dyn;
                        const char *s;

                        if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag == DT_NULL)
                                break;
                        if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RPATH &&
                            dyn.d_tag != DT_RUNPATH)
                                continue;
                        s = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
                        if (!s || !*s)
                                continue;
                        if (dyn.d_tag == DT_NEEDED && ret->n_needed < MAX_LIBS)
                                ret->needed[ret->n_needed++] = s;
                        else if (dyn.d_tag == DT_RPATH)
                                ret->rpath = s;
                        else if (dyn.d_tag == DT_RUNPATH)
                                ret->runpath = s;
                }
                return;
        }
}

/* Add the names of .dynsym: defined non-local ones (exports), and, for
 * the target itself, undefined ones too (its imports). */
static int add_dynsyms(struct lb_needed *n, Elf *elf, bool imports)
{
        Elf_Scn *scn = NULL;
        int r;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr sh;
                Elf_Data *d;
                size_t count, entsize;

                if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
                        continue;
                d = elf_getdata(scn, NULL);
                entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
                if (!d || !d->d_buf || d->d_type != ELF_T_SYM || entsize == 0)
                        continue;
                count = d->d_size / entsize;
                for (size_t i = 1; i < count && i <= INT_MAX; i++) {
                        GElf_Sym sym;
                        const char *name;

                        if (!gelf_getsym(d, (int)i, &sym))
                                continue;
                        if (GELF_ST_BIND(sym.st_info) == STB_LOCAL)
                                continue;
                        if (sym.st_shndx == SHN_UNDEF && !imports)
                                continue;
                        name = elf_strptr(elf, sh.sh_link, sym.st_name);
                        if (!name || !*name)
                                continue;
                        r = push_name(n, name);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- Finding and reading the libraries ---------------------------------- */

static bool have_lib(const struct lb_needed *n, const char *real)
{
        for (size_t i = 0; i < n->n_libs; i++)
                if (strcmp(n->libs[i].path, real) == 0)
                        return true;
        return false;
}

/* Open `path` if it is a shared object the target could load. */
static int try_open(const struct lb_needed *n, const char *path, int *ret_fd, Elf **ret_elf)
{
        _cleanup_close_ int fd = -EBADF;
        Elf *elf;
        GElf_Ehdr eh;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf)
                return -ENOEXEC;
        if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
            eh.e_ident[EI_CLASS] != n->elf_class || eh.e_machine != arch_elf_machine() ||
            eh.e_type != ET_DYN) {
                elf_end(elf);
                return -ENOEXEC;
        }
        *ret_elf = elf;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Expand $ORIGIN / ${ORIGIN} in one search-path entry; NULL when the
 * entry uses another token. */
static char *expand_origin(const char *entry, const char *origin)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (const char *p = entry; *p;) {
                /* $ORIGIN, not the start of a longer name ($ORIGIN_X). */
                bool is_origin = strncmp(p, "$ORIGIN", 7) == 0 &&
                                 !(p[7] == '_' || (p[7] >= 'A' && p[7] <= 'Z'));

                if (is_origin) {
                        fputs(origin, f);
                        p += 7;
                } else if (strncmp(p, "${ORIGIN}", 9) == 0) {
                        fputs(origin, f);
                        p += 9;
                } else if (*p == '$') {
                        fclose(f);
                        free(out);
                        return NULL;
                } else
                        fputc(*p++, f);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* Try `name` in each folder of a colon-separated list. */
static int search_list(const struct lb_needed *n, const char *list, const char *origin,
                       const char *name, char **ret_path, int *ret_fd, Elf **ret_elf)
{
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;

        if (!list)
                return -ENOENT;
        copy = strdup(list);
        if (!copy)
                return -ENOMEM;
        for (char *dir = strtok_r(copy, ":;", &save); dir; dir = strtok_r(NULL, ":;", &save)) {
                _cleanup_free_ char *expanded = NULL, *path = NULL;

                expanded = expand_origin(dir, origin);
                if (!expanded || !*expanded)
                        continue;
                if (asprintf(&path, "%s/%s", expanded, name) < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                if (try_open(n, path, ret_fd, ret_elf) == 0) {
                        *ret_path = TAKE_PTR(path);
                        return 0;
                }
        }
        return -ENOENT;
}

static int find_lib(const struct lb_needed *n, const struct dyn_info *by, const char *origin,
                    const char *name, char **ret_path, int *ret_fd, Elf **ret_elf)
{
        int r;

        if (strchr(name, '/')) {
                r = try_open(n, name, ret_fd, ret_elf);
                if (r < 0)
                        return r;
                *ret_path = strdup(name);
                if (!*ret_path) {
                        elf_end(*ret_elf);
                        safe_close(*ret_fd);
                        return -ENOMEM;
                }
                return 0;
        }
        if (!by->runpath) {
                r = search_list(n, by->rpath, origin, name, ret_path, ret_fd, ret_elf);
                if (r != -ENOENT)
                        return r;
        }
        r = search_list(n, by->runpath, origin, name, ret_path, ret_fd, ret_elf);
        if (r != -ENOENT)
                return r;
        r = search_list(n, secure_getenv("LD_LIBRARY_PATH"), origin, name, ret_path, ret_fd,
                        ret_elf);
        if (r != -ENOENT)
                return r;
        for (size_t i = 0; i < n->n_sys_dirs; i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", n->sys_dirs[i], name) < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                if (try_open(n, path, ret_fd, ret_elf) == 0) {
                        *ret_path = TAKE_PTR(path);
                        return 0;
                }
        }
        return -ENOENT;
}

/* Folder of a file's real path, for $ORIGIN. */
static char *origin_of(const char *path)
{
        _cleanup_free_ char *real = realpath(path, NULL);

        if (!real)
                return strdup(".");
        return strdup(dirname(real));
}

/* Read the libraries `elf` (at `path`) needs, breadth first: each new
 * library is appended to n->libs and visited in turn by the caller. */
static int visit(struct lb_needed *n, Elf *elf, const char *path)
{
        _cleanup_free_ char *origin = NULL;
        struct dyn_info di;
        int r;

        origin = origin_of(path);
        if (!origin)
                return -ENOMEM;
        read_dynamic(elf, &di);
        for (size_t i = 0; i < di.n_needed && n->n_libs < MAX_LIBS; i++) {
                _cleanup_free_ char *found = NULL, *real = NULL;
                int fd = -EBADF;
                Elf *lib = NULL;

                r = find_lib(n, &di, origin, di.needed[i], &found, &fd, &lib);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        continue; /* not found: its symbols stay unknown */
                real = realpath(found, NULL);
                if (!real || have_lib(n, real)) {
                        bool oom = !real && errno == ENOMEM;

                        elf_end(lib);
                        safe_close(fd);
                        if (oom)
                                return -ENOMEM;
                        continue;
                }
                n->libs[n->n_libs++] = (struct lib){
                        .path = TAKE_PTR(real),
                        .fd = fd,
                        .elf = lib,
                };
                r = add_dynsyms(n, lib, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int lb_needed_open(const char *path, struct lb_needed **ret, struct errbuf *err)
{
        _cleanup_(lb_needed_freep) struct lb_needed *n = NULL;
        _cleanup_close_ int fd = -EBADF;
        GElf_Ehdr eh;
        int r;

        (void)elf_library_init();
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                errbuf_set(err, "'%s': %s", path, strerror(-r));
                return r;
        }
        /* The target is libs[0]: its names live as long as the others'. */
        n->libs[0].elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!n->libs[0].elf || elf_kind(n->libs[0].elf) != ELF_K_ELF ||
            !gelf_getehdr(n->libs[0].elf, &eh)) {
                if (n->libs[0].elf)
                        elf_end(n->libs[0].elf);
                n->libs[0].elf = NULL;
                errbuf_set(err, "'%s': not an ELF file", path);
                return -ENOEXEC;
        }
        n->libs[0].fd = TAKE_FD(fd);
        n->libs[0].path = realpath(path, NULL);
        if (!n->libs[0].path)
                n->libs[0].path = strdup(path);
        n->n_libs = 1;
        if (!n->libs[0].path)
                return -ENOMEM;
        n->elf_class = eh.e_ident[EI_CLASS];

        r = load_sys_dirs(n);
        if (r < 0)
                return r;
        r = add_dynsyms(n, n->libs[0].elf, true);
        if (r < 0)
                return r;
        /* n->libs grows while it is walked: breadth first. */
        for (size_t i = 0; i < n->n_libs; i++) {
                r = visit(n, n->libs[i].elf, n->libs[i].path);
                if (r < 0)
                        return r;
        }
        if (n->n_names > 0)
                qsort(n->names, n->n_names, sizeof(*n->names), cmp_str);
        *ret = TAKE_PTR(n);
        return 0;
}

bool lb_needed_has(const struct lb_needed *n, const char *name)
{
        return n->n_names > 0 &&
               bsearch(&name, n->names, n->n_names, sizeof(*n->names), cmp_str) != NULL;
}

size_t lb_needed_n_libraries(const struct lb_needed *n)
{
        return n->n_libs > 0 ? n->n_libs - 1 : 0;
}
