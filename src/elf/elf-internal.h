/* Private to src/elf: the layout of struct elf_file, shared by file.c
 * (opening, headers, sections, build-id, debug file) and symbols.c (the
 * merged symbol tables and the lookups over them), and the extra
 * constructors process.c needs (an already-open fd, an image in memory).
 *
 * Lifetime: every string an elf_file hands out (section names, symbol
 * names, STT_FILE names) points into libelf's view of the file or of its
 * debug file, so the Elf handles, and the memory image they may read
 * from, live exactly as long as the elf_file. */
#pragma once

#include "elf/elf.h"

#include <gelf.h>

struct elf_file {
        char *path;
        int type;    /* ET_* */

        /* The file itself: an fd read by libelf (ELF_C_READ_MMAP), or an
         * image in memory that `image_owned` keeps alive. */
        int fd;
        Elf *elf;
        void *image_owned;
        const uint8_t *raw;  /* whole file image as libelf sees it, or NULL */
        size_t raw_size;

        /* The separate debug file, when one was found and used. */
        char *debug_path;
        int debug_fd;
        Elf *debug_elf;

        uint8_t *build_id;
        size_t build_id_len;
        char *build_id_hex;  /* "" when none */

        uint64_t load_base;

        struct elf_section *sections;
        size_t n_sections;

        /* Program headers of type PT_LOAD, copied and checked. */
        GElf_Phdr *loads;
        size_t n_loads;

        /* The tables below are built on first use (elf_symbols_ensure):
         * opening libc's took 7-12 ms, and a lookup of an exported symbol
         * needs none of it (elf_file_lookup_exported reads .gnu.hash).
         * 0: not built yet, 1: built, < 0: building failed. */
        int symbols_state;
        /* All symbols, sorted by (name, addr), duplicates removed. */
        struct elf_symbol *symbols;
        size_t n_symbols;
        /* Per symbol: a .dynsym entry whose version is hidden (the
         * "name@VERSION" of an older default), the last choice when
         * looking up by name. Parallel to `symbols`. */
        bool *hidden;
        /* Sized functions and objects sorted by address, one per address,
         * for elf_file_symbol_for(); `max_end[i]` is the highest end of
         * by_addr[0..i], so a lookup can step back over nested symbols. */
        const struct elf_symbol **by_addr;
        uint64_t *max_end;
        size_t n_by_addr;
};

/* Open an ELF file from `fd` (taken over, closed on failure too), naming
 * it `path` in messages and in elf_file_path(). */
int elf_file_open_fd(int fd, const char *path, struct elf_file **ret, struct errbuf *err);

/* Open an ELF image held in memory (e.g. the vdso read from a process).
 * `image` (from malloc) is taken over, freed on failure too. */
int elf_file_open_memory(void *image, size_t size, const char *name, struct elf_file **ret,
                         struct errbuf *err);

/* symbols.c: build the symbol tables now if they are not (the separate
 * debug file is opened then too). Returns 0 or the error building failed
 * with, every time. */
int elf_symbols_ensure(const struct elf_file *f);
/* file.c: find and open the separate debug file of f, if any. */
int elf_file_open_debug(struct elf_file *f);

/* symbols.c: build the symbol tables of `f` from f->elf and f->debug_elf;
 * free them. */
int elf_symbols_load(struct elf_file *f);
void elf_symbols_free(struct elf_file *f);

/* True when the Elf has a section of type SHT_SYMTAB with symbols in it. */
bool elf_has_symtab(Elf *elf);
