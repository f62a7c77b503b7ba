/* ELF model over libelf/libdw: one opened file with its build-id, sections
 * and symbols; and a per-process view that maps addresses to objects and
 * functions.
 *
 * Symbols are merged from .dynsym, .symtab and, when the file has no
 * .symtab, the separate debug file found by build-id under
 * /usr/lib/debug/.build-id/xx/rest.debug (or $LIVEUP_DEBUG_ROOT, for
 * tests). Addresses of symbols are file virtual addresses (st_value of
 * ET_EXEC/ET_DYN, section-relative never); add the load bias for a
 * process address. */
#pragma once

#include "base/macro.h"
#include "base/procfs.h"
#include "base/util.h"

#include <libelf.h>
#include <sys/types.h>

enum elf_sym_type {
        ELF_SYM_FUNC,
        ELF_SYM_OBJECT,
        ELF_SYM_TLS,
        ELF_SYM_OTHER,
};

enum elf_sym_source {
        ELF_SRC_DYNSYM,
        ELF_SRC_SYMTAB,
        ELF_SRC_DEBUG, /* .symtab of the separate debug file */
};

struct elf_symbol {
        const char *name;  /* owned by the elf_file */
        uint64_t addr;     /* file virtual address */
        uint64_t size;
        enum elf_sym_type type;
        bool local;        /* STB_LOCAL (a static) */
        bool weak;
        bool ifunc;        /* STT_GNU_IFUNC: addr is the resolver, which
                            * returns the implementation's address */
        enum elf_sym_source source;
        const char *file;  /* for locals: the STT_FILE they follow, or NULL */
};

struct elf_section {
        const char *name;
        uint64_t addr;   /* sh_addr */
        uint64_t offset; /* sh_offset */
        uint64_t size;
        uint64_t flags;  /* SHF_* */
        uint32_t type;   /* SHT_* */
};

/* libelf's version handshake, done once per process: every user of
 * libelf in liveup calls this before its first elf_begin()/elf_memory().
 * -ENOTSUP when the libelf found is too old for us. */
int elf_library_init(void);
/* Scope cleanup for a bare Elf handle: _cleanup_(elf_endp) Elf *e. */
void elf_endp(Elf **e);

struct elf_file;

/* Open and index an ELF file. -ENOEXEC for a file that is not ELF or not
 * of this ISA (details in err). */
int elf_file_open(const char *path, struct elf_file **ret, struct errbuf *err);
void elf_file_free(struct elf_file *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct elf_file *, elf_file_free);

const char *elf_file_path(const struct elf_file *f);
/* ET_EXEC, ET_DYN or ET_REL. */
int elf_file_type(const struct elf_file *f);
/* Build-id bytes; -ENODATA when there is none. */
int elf_file_build_id(const struct elf_file *f, const uint8_t **ret, size_t *ret_len);
/* Build-id as lowercase hex, "" when there is none. */
const char *elf_file_build_id_hex(const struct elf_file *f);
/* Path of the separate debug file used, or NULL. */
const char *elf_file_debug_path(const struct elf_file *f);
/* Lowest PT_LOAD p_vaddr rounded down to the page size: what the load
 * bias is measured from. */
uint64_t elf_file_load_base(const struct elf_file *f);

int elf_file_section(const struct elf_file *f, const char *name, struct elf_section *ret);
/* Bytes of the file at a virtual address (for comparing code); -EFAULT if
 * [addr, addr+size) is not inside one PT_LOAD's file-backed part. */
int elf_file_read_vaddr(const struct elf_file *f, uint64_t addr, void *buf, size_t size);

size_t elf_file_n_symbols(const struct elf_file *f);
const struct elf_symbol *elf_file_symbol_at_index(const struct elf_file *f, size_t i);

/* Look up a function or object by name. A global wins over locals; among
 * locals only, more than one distinct address gives -ENOTUNIQ with the
 * candidates ("name at 0x... (file.c), ...") in err. -ENOENT when absent. */
int elf_file_lookup(const struct elf_file *f, const char *name, const struct elf_symbol **ret,
                    struct errbuf *err);
/* All symbols named `name` (for disambiguation by the caller). */
/* An exported symbol of `f` (in .dynsym, defined, not local, not TLS) by
 * name, as the dynamic linker finds it: the default version first. Fast
 * (.gnu.hash) when the full symbol tables have not been built. -ENOENT if
 * none. *ret's strings live as long as f. */
int elf_file_lookup_exported(const struct elf_file *f, const char *name, struct elf_symbol *ret);
/* The slot that the dynamic loader fills, at load time, with what the
 * IFUNC resolver at `resolver` (a file virtual address) returned: the
 * r_offset of an IRELATIVE dynamic relocation of f whose addend is the
 * resolver (glibc's own calls of its string functions go through such
 * slots). Reading the slot in a process gives the implementation without
 * calling the resolver there. -ENOENT if f has none. */
int elf_file_irelative_slot(const struct elf_file *f, uint64_t resolver, uint64_t *ret_slot);

size_t elf_file_lookup_all(const struct elf_file *f, const char *name,
                           const struct elf_symbol **ret, size_t max);

/* The function (or object) containing file address `addr`; -ENOENT when
 * none. Fast: binary search over a sorted table. */
int elf_file_symbol_for(const struct elf_file *f, uint64_t addr, const struct elf_symbol **ret,
                        uint64_t *ret_offset);

/* ---- A process's view ---------------------------------------------------- */

struct elf_location {
        const char *object;   /* path as mapped ("[vdso]" etc. included) */
        uint64_t object_offset; /* addr - load bias: a file address */
        const char *function; /* NULL when unknown */
        uint64_t function_offset;
};

struct elf_proc;

/* Snapshot the process's maps; ELF files are opened lazily on lookup. */
int elf_proc_new(pid_t pid, struct elf_proc **ret, struct errbuf *err);
void elf_proc_free(struct elf_proc *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct elf_proc *, elf_proc_free);

/* Where `addr` is: object, function and offsets. -ENOENT when addr is not
 * in any mapped object (anonymous memory: object NULL). Strings are owned
 * by `s`. */
int elf_proc_locate(struct elf_proc *s, uint64_t addr, struct elf_location *ret);

/* The object mapped from `path` (or whose build-id matches, when
 * build_id_hex is non-NULL), its opened ELF and its load bias. */
int elf_proc_object(struct elf_proc *s, const char *path, const char *build_id_hex,
                    struct elf_file **ret_file, uint64_t *ret_bias,
                    const struct procfs_object **ret_obj);

/* The process's maps (for callers that need extents). */
const struct procfs_maps *elf_proc_maps(const struct elf_proc *s);
