/* Opening one ELF file: header checks (kind, ISA, type), program headers,
 * sections, build-id, reading bytes at a virtual address, and finding the
 * separate debug file by build-id. The symbol tables are built by
 * symbols.c once the file (and its debug file) are open.
 *
 * Every field of the file is treated as hostile: libelf checks that
 * headers and section data lie inside the file; this code checks every
 * index, offset and size it derives from them, so a truncated or crafted
 * file gives -ENOEXEC (or a missing piece of information), never a crash.
 *
 * Lifecycle: elf_file_open*() reads and indexes everything up front; the
 * result is immutable afterwards (safe to share between threads for
 * reading) and is released by elf_file_free(). */
#include "elf/elf-internal.h"

#include "arch/arch.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

/* A build-id longer than this is not one a linker produced. */
#define BUILD_ID_MAX 64

static pthread_once_t libelf_once = PTHREAD_ONCE_INIT;
static bool libelf_ok;

static void libelf_init(void)
{
        libelf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

int elf_library_init(void)
{
        pthread_once(&libelf_once, libelf_init);
        return libelf_ok ? 0 : -ENOTSUP;
}

void elf_endp(Elf **e)
{
        if (*e)
                elf_end(*e);
}

static struct elf_file *elf_file_alloc(const char *path)
{
        struct elf_file *f;

        f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        f->fd = -EBADF;
        f->debug_fd = -EBADF;
        f->path = strdup(path);
        if (!f->path) {
                free(f);
                return NULL;
        }
        return f;
}

void elf_file_free(struct elf_file *f)
{
        if (!f)
                return;
        elf_symbols_free(f);
        if (f->debug_elf)
                elf_end(f->debug_elf);
        safe_close(f->debug_fd);
        if (f->elf)
                elf_end(f->elf);
        safe_close(f->fd);
        free(f->image_owned);
        free(f->sections);
        free(f->loads);
        free(f->build_id);
        free(f->build_id_hex);
        free(f->debug_path);
        free(f->path);
        free(f);
}

bool elf_has_symtab(Elf *elf)
{
        Elf_Scn *scn = NULL;

        while ((scn = elf_nextscn(elf, scn))) {
                GElf_Shdr shdr;

                if (gelf_getshdr(scn, &shdr) && shdr.sh_type == SHT_SYMTAB &&
                    shdr.sh_size > 0)
                        return true;
        }
        return false;
}

/* Check the header: an ELF file of this ISA and of a type we handle. */
static int check_header(Elf *elf, const char *path, int *ret_type, struct errbuf *err)
{
        GElf_Ehdr ehdr;

        if (elf_kind(elf) != ELF_K_ELF) {
                errbuf_set(err, "'%s': not an ELF file", path);
                return -ENOEXEC;
        }
        if (!gelf_getehdr(elf, &ehdr)) {
                errbuf_set(err, "'%s': corrupt ELF header: %s", path, elf_errmsg(-1));
                return -ENOEXEC;
        }
        if (ehdr.e_machine != arch_elf_machine()) {
                errbuf_set(err, "'%s': ELF for machine %u, not this ISA", path,
                           (unsigned)ehdr.e_machine);
                return -ENOEXEC;
        }
        if (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN && ehdr.e_type != ET_REL) {
                errbuf_set(err,
                           "'%s': ELF type %u is not an executable, shared object or relocatable object",
                           path, (unsigned)ehdr.e_type);
                return -ENOEXEC;
        }
        *ret_type = ehdr.e_type;
        return 0;
}

/* Copy the PT_LOAD headers and compute the load base. Headers whose
 * extents wrap around are dropped: nothing can be read through them. */
static int load_phdrs(struct elf_file *f, struct errbuf *err)
{
        size_t n = 0;
        uint64_t lowest = UINT64_MAX;
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

        if (f->type == ET_REL)
                return 0;
        if (elf_getphdrnum(f->elf, &n) < 0) {
                errbuf_set(err, "'%s': corrupt program headers: %s", f->path, elf_errmsg(-1));
                return -ENOEXEC;
        }
        if (n == 0)
                return 0;
        f->loads = calloc(n, sizeof(*f->loads));
        if (!f->loads)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                GElf_Phdr ph;

                if (!gelf_getphdr(f->elf, (int)i, &ph))
                        continue;
                if (ph.p_type != PT_LOAD)
                        continue;
                if (ph.p_vaddr + ph.p_memsz < ph.p_vaddr ||
                    ph.p_vaddr + ph.p_filesz < ph.p_vaddr ||
                    ph.p_offset + ph.p_filesz < ph.p_offset)
                        continue;
                f->loads[f->n_loads++] = ph;
                lowest = MIN(lowest, ph.p_vaddr);
        }
        if (page == 0 || (page & (page - 1)) != 0)
                page = 4096;
        f->load_base = f->n_loads > 0 ? ALIGN_DOWN(lowest, page) : 0;
        return 0;
}

static int load_sections(struct elf_file *f)
{
        size_t n = 0, shstrndx = 0;
        bool have_names;
        Elf_Scn *scn = NULL;

        /* A file without section headers (or with broken ones) simply has
         * no sections; loading it still works through its PT_LOADs. */
        if (elf_getshdrnum(f->elf, &n) < 0 || n == 0)
                return 0;
        have_names = elf_getshdrstrndx(f->elf, &shstrndx) == 0;
        f->sections = calloc(n, sizeof(*f->sections));
        if (!f->sections)
                return -ENOMEM;
        while ((scn = elf_nextscn(f->elf, scn)) && f->n_sections < n) {
                GElf_Shdr sh;
                const char *name = NULL;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                if (have_names)
                        name = elf_strptr(f->elf, shstrndx, sh.sh_name);
                f->sections[f->n_sections++] = (struct elf_section){
                        .name = name ? name : "",
                        .addr = sh.sh_addr,
                        .offset = sh.sh_offset,
                        .size = sh.sh_size,
                        .flags = sh.sh_flags,
                        .type = sh.sh_type,
                };
        }
        return 0;
}

/* The GNU build-id note, from PT_NOTE or SHT_NOTE (libdwelf looks at
 * both and bounds-checks the notes). */
static int read_build_id(Elf *elf, uint8_t **ret, size_t *ret_len)
{
        const void *p = NULL;
        ssize_t len;
        uint8_t *copy;

        len = dwelf_elf_gnu_build_id(elf, &p);
        if (len <= 0 || len > BUILD_ID_MAX || !p)
                return -ENODATA;
        copy = malloc((size_t)len);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, p, (size_t)len);
        *ret = copy;
        *ret_len = (size_t)len;
        return 0;
}

static char *hex_string(const uint8_t *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";
        char *s = malloc(2 * n + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                s[2 * i] = digits[p[i] >> 4];
                s[2 * i + 1] = digits[p[i] & 0xf];
        }
        s[2 * n] = 0;
        return s;
}

/* Try the separate debug file of `f` under the debug root:
 * ROOT/.build-id/xx/rest.debug. It is used only if it is an ELF file of
 * the same machine with the same build-id (a stale debug file would give
 * wrong addresses). Absence is not an error. */
int elf_file_open_debug(struct elf_file *f)
{
        const char *root = getenv("LIVEUP_DEBUG_ROOT");
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(elf_endp) Elf *elf = NULL;
        _cleanup_free_ uint8_t *id = NULL;
        size_t id_len = 0;
        int type;

        if (f->build_id_len < 2)
                return 0;
        if (!root || !*root)
                root = "/usr/lib/debug";
        if (asprintf(&path, "%s/.build-id/%.2s/%s.debug", root, f->build_id_hex,
                     f->build_id_hex + 2) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf)
                return 0;
        if (check_header(elf, path, &type, NULL) < 0)
                return 0;
        if (read_build_id(elf, &id, &id_len) < 0 || id_len != f->build_id_len ||
            memcmp(id, f->build_id, id_len) != 0)
                return 0;
        if (!elf_has_symtab(elf))
                return 0;
        f->debug_path = TAKE_PTR(path);
        f->debug_elf = TAKE_PTR(elf);
        f->debug_fd = TAKE_FD(fd);
        return 0;
}

/* Everything after the Elf handle exists: check, index, load symbols. */
static int elf_file_index(struct elf_file *f, struct errbuf *err)
{
        int r;

        r = check_header(f->elf, f->path, &f->type, err);
        if (r < 0)
                return r;
        f->raw = (const uint8_t *)elf_rawfile(f->elf, &f->raw_size);
        if (!f->raw)
                f->raw_size = 0;
        r = load_phdrs(f, err);
        if (r < 0)
                return r;
        r = load_sections(f);
        if (r < 0)
                return r;
        r = read_build_id(f->elf, &f->build_id, &f->build_id_len);
        if (r == -ENOMEM)
                return r;
        f->build_id_hex = hex_string(f->build_id, f->build_id_len);
        if (!f->build_id_hex)
                return -ENOMEM;
        /* Symbols (and the debug file they may come from) are loaded on
         * first use: see elf_symbols_ensure(). */
        return 0;
}

int elf_file_open_fd(int fd, const char *path, struct elf_file **ret, struct errbuf *err)
{
        _cleanup_close_ int owned = fd;
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        int r;

        (void)elf_library_init();
        f = elf_file_alloc(path);
        if (!f)
                return -ENOMEM;
        f->elf = elf_begin(owned, ELF_C_READ_MMAP, NULL);
        if (!f->elf) {
                errbuf_set(err, "'%s': cannot read ELF: %s", path, elf_errmsg(-1));
                return -ENOEXEC;
        }
        f->fd = TAKE_FD(owned);
        r = elf_file_index(f, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int elf_file_open_memory(void *image, size_t size, const char *name, struct elf_file **ret,
                         struct errbuf *err)
{
        _cleanup_free_ void *owned = image;
        _cleanup_(elf_file_freep) struct elf_file *f = NULL;
        int r;

        (void)elf_library_init();
        f = elf_file_alloc(name);
        if (!f)
                return -ENOMEM;
        f->elf = elf_memory(owned, size);
        if (!f->elf) {
                errbuf_set(err, "'%s': cannot read ELF: %s", name, elf_errmsg(-1));
                return -ENOEXEC;
        }
        f->image_owned = TAKE_PTR(owned);
        r = elf_file_index(f, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

int elf_file_open(const char *path, struct elf_file **ret, struct errbuf *err)
{
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;

                errbuf_set(err, "'%s': %s", path, strerror(-r));
                return r;
        }
        return elf_file_open_fd(fd, path, ret, err);
}

const char *elf_file_path(const struct elf_file *f)
{
        return f->path;
}

int elf_file_type(const struct elf_file *f)
{
        return f->type;
}

int elf_file_build_id(const struct elf_file *f, const uint8_t **ret, size_t *ret_len)
{
        if (f->build_id_len == 0)
                return -ENODATA;
        *ret = f->build_id;
        *ret_len = f->build_id_len;
        return 0;
}

const char *elf_file_build_id_hex(const struct elf_file *f)
{
        return f->build_id_hex;
}

const char *elf_file_debug_path(const struct elf_file *f)
{
        (void)elf_symbols_ensure(f);
        return f->debug_path;
}

uint64_t elf_file_load_base(const struct elf_file *f)
{
        return f->load_base;
}

int elf_file_section(const struct elf_file *f, const char *name, struct elf_section *ret)
{
        for (size_t i = 0; i < f->n_sections; i++)
                if (strcmp(f->sections[i].name, name) == 0) {
                        *ret = f->sections[i];
                        return 0;
                }
        return -ENOENT;
}

int elf_file_read_vaddr(const struct elf_file *f, uint64_t addr, void *buf, size_t size)
{
        for (size_t i = 0; i < f->n_loads; i++) {
                const GElf_Phdr *ph = &f->loads[i];
                uint64_t delta, off;

                if (addr < ph->p_vaddr)
                        continue;
                delta = addr - ph->p_vaddr;
                if (delta > ph->p_filesz || size > ph->p_filesz - delta)
                        continue;
                off = ph->p_offset + delta; /* no wrap: checked in load_phdrs */
                if (f->raw) {
                        if (off > f->raw_size || size > f->raw_size - off)
                                return -EFAULT;
                        memcpy(buf, f->raw + off, size);
                        return 0;
                }
                if (f->fd < 0 || off > INT64_MAX)
                        return -EFAULT;
                for (size_t done = 0; done < size;) {
                        ssize_t k = pread(f->fd, (uint8_t *)buf + done, size - done,
                                          (off_t)(off + done));
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (k == 0)
                                return -EFAULT;
                        done += (size_t)k;
                }
                return 0;
        }
        return -EFAULT;
}
