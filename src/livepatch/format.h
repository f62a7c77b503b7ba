/* The patch file (.lpo): an ELF relocatable object (ET_REL, this ISA) with
 * the replacement code and data and their relocations, plus one metadata
 * section, ".liveup", laid out as below. readelf/objdump work on it.
 *
 * The .liveup section (all integers little-endian, offsets relative to the
 * start of the section, every string NUL-terminated inside the string
 * table):
 *
 *     struct lp_meta_header            at 0
 *     struct lp_meta_func[n_funcs]     at funcs_off
 *     struct lp_meta_bind[n_binds]     at binds_off   (version 2)
 *     char strtab[strtab_size]         at strtab_off
 *
 * The tables do not overlap one another or the header; the writer puts
 * them in this order. Offset 0 of the string table is the empty string:
 * a string field that may be absent (lp_meta_func.why_str) is 0 when it
 * is; every other string field must name a non-empty string.
 *
 * Versions. Version 1 has no bindings table; its header is 128 bytes
 * (LP_META_HEADER_SIZE_V1), or longer. Version 2 adds the bindings, which
 * tie undefined symbols of the object to exact addresses in the target
 * (`build --diff` refers to the target's statics, whose names are often
 * ambiguous there). A reader of version 1 alone would resolve those
 * symbols by name and might pick the wrong static, so a file with
 * bindings must be refused by it: the writer writes version 2 exactly
 * when the file has bindings, and version 1 otherwise, which every
 * liveup reads. This reader reads both; a version 1 file with bindings is
 * corrupt. The other additions (the header's binding fields, why_str in
 * what was a reserved field of lp_meta_func) are ignored by a version 1
 * reader, as their meaning allows: they are zero or informational.
 *
 * A reader never trusts it: sizes, offsets, counts and string offsets are
 * bounds-checked; anything out of range is -EBADMSG with a message naming
 * the file and the field. Unknown versions are refused (-EPROTONOSUPPORT).
 * The full list of checks opens format.c; docs/internals/lpo.md describes
 * the format for other readers.
 *
 * Lifecycle: lb_ (src/build) fills a struct lp_file, turns it into the
 * section's bytes with lp_meta_serialize() and attaches them to the
 * object; lp_ reads it with lp_file_open() for inspect and apply. */
#pragma once

#include "base/macro.h"
#include "base/util.h"

#define LP_META_SECTION ".liveup"
#define LP_META_MAGIC "LIVEUP\x1a\x01" /* 8 bytes */
#define LP_META_VERSION_MIN 1   /* the oldest version read */
#define LP_META_VERSION 2       /* the newest version read (and written, with bindings) */
#define LP_META_VERSION_BINDS 2 /* the first version with bindings */
#define LP_META_HEADER_SIZE_V1 128u /* the header without its binding fields */
#define LP_BUILD_ID_MAX 64
#define LP_ENTRY_BYTES 16 /* original bytes kept verbatim per function */

/* Limits of the reader (the writer stays within them): a larger header,
 * function entry or binding entry comes from a newer minor version and is
 * read as far as this version knows it. */
#define LP_MAX_FUNCS 65536u
#define LP_MAX_HEADER_SIZE 4096u
#define LP_MAX_FUNC_SIZE 4096u
#define LP_MAX_BINDS 65536u
#define LP_MAX_BIND_SIZE 4096u
#define LP_MAX_FILE_SIZE (256u << 20)

enum {
        LP_FLAG_CUMULATIVE = 1 << 0, /* replaces all earlier patches */
};

struct lp_meta_header {
        char magic[8];
        uint32_t version;
        uint32_t header_size;   /* sizeof(struct lp_meta_header) */
        uint32_t flags;         /* LP_FLAG_* */
        uint32_t n_funcs;
        uint32_t funcs_off;
        uint32_t func_size;     /* sizeof(struct lp_meta_func) */
        uint32_t strtab_off;
        uint32_t strtab_size;
        uint32_t id_str;        /* patch id, e.g. "fix-parse-header-1a2b3c4d" */
        uint32_t name_str;      /* human name (default: FIX.c's basename) */
        uint32_t target_str;    /* target object's path as built */
        uint32_t build_id_len;
        uint8_t build_id[LP_BUILD_ID_MAX]; /* target's GNU build-id */
        uint64_t created;       /* seconds since the epoch */
        /* Version 2: the bindings table. Absent from a 128-byte header
         * (read as 0: no bindings); must be 0 in a version 1 file. With
         * n_binds 0, binds_off and bind_size are not read. */
        uint32_t n_binds;
        uint32_t binds_off;
        uint32_t bind_size;     /* sizeof(struct lp_meta_bind) */
        uint32_t reserved2;     /* 0 */
};

struct lp_meta_func {
        uint32_t name_str;      /* the target's function, by symbol name */
        uint32_t new_str;       /* its replacement: a symbol of this .lpo */
        uint64_t addr;          /* target symbol's file address (st_value) */
        uint64_t size;          /* target symbol's st_size */
        uint64_t hash;          /* FNV-1a 64 of the target's `size` bytes at addr */
        uint8_t entry[LP_ENTRY_BYTES]; /* the first bytes, verbatim */
        uint32_t flags;         /* LP_FUNC_* */
        uint32_t why_str;       /* why it is in the patch, for people; 0: not said */
};

enum {
        LP_FUNC_LOCAL = 1 << 0, /* the target's symbol is a static */
};

/* A binding: the object's undefined symbol `sym_str` stands for the
 * target's symbol at file address `addr` (not for whatever has that name
 * there). sym_str names an undefined (SHN_UNDEF) symbol of the object's
 * .symtab, and no defined one; each such symbol is bound at most once. */
struct lp_meta_bind {
        uint32_t sym_str;       /* an undefined symbol of this .lpo */
        uint32_t name_str;      /* the target's symbol it stands for (messages, checks) */
        uint64_t addr;          /* that symbol's file address (st_value) in the target */
        uint32_t flags;         /* one of LP_BIND_FUNC, LP_BIND_DATA; maybe LP_BIND_LOCAL */
        uint32_t reserved;      /* 0 */
};

enum {
        LP_BIND_FUNC = 1 << 0,  /* the target's symbol is a function */
        LP_BIND_DATA = 1 << 1,  /* ... a data object */
        LP_BIND_LOCAL = 1 << 2, /* ... a static (STB_LOCAL) */
};

/* FNV-1a 64: cheap, stable across builds of liveup (it is in the file). */
uint64_t lp_hash(const void *data, size_t size);

/* An opened patch file. */
struct lp_func {
        const char *name;   /* target function */
        const char *new_name;
        uint64_t addr, size, hash;
        uint8_t entry[LP_ENTRY_BYTES];
        uint32_t flags;
        const char *why; /* "changed in src/http.c"; NULL when not said */
};

struct lp_bind {
        const char *sym;  /* the object's undefined symbol */
        const char *name; /* the target's symbol */
        uint64_t addr;    /* its file address in the target */
        uint32_t flags;   /* LP_BIND_* */
};

struct lp_file {
        char *path;
        const char *id, *name, *target;
        uint8_t build_id[LP_BUILD_ID_MAX];
        size_t build_id_len;
        char build_id_hex[2 * LP_BUILD_ID_MAX + 1];
        uint32_t version; /* the file's format version (the reader's; the writer chooses) */
        uint32_t flags;
        uint64_t created;
        struct lp_func *funcs;
        size_t n_funcs;
        struct lp_bind *binds; /* in the file's order */
        size_t n_binds;
        /* The reader's: binds sorted by sym, for lp_file_find_bind(). */
        const struct lp_bind **bind_index;
        /* The whole file, for the loader (libelf reads from it). */
        void *image;
        size_t image_size;
        char *strtab; /* private copy of the metadata's strings */
};

/* Read and validate a patch file: ELF ET_REL of this ISA, a .liveup
 * section that parses, every replacement symbol defined in the object,
 * every bound symbol undefined in it.
 * -ENOEXEC (not ELF / wrong ISA / not relocatable), -EBADMSG (corrupt),
 * -EPROTONOSUPPORT (other format version); the message names the file and
 * what is wrong. */
int lp_file_open(const char *path, struct lp_file **ret, struct errbuf *err);
/* The same, from memory (for the fuzzer); `data` is copied. */
int lp_file_parse(const void *data, size_t size, const char *name, struct lp_file **ret,
                  struct errbuf *err);
void lp_file_free(struct lp_file *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lp_file *, lp_file_free);

/* The binding of the object's undefined symbol `sym`, or NULL when it has
 * none (then it resolves by name). The result points into f. O(log n) on
 * a file the reader returned, a linear search on one filled by hand. */
const struct lp_bind *lp_file_find_bind(const struct lp_file *f, const char *sym);

/* The writer: the bytes of a .liveup section describing `meta` (its id,
 * name, target, build_id[_len], flags, created, funcs and binds; path,
 * version, image, strtab and bind_index are ignored). It writes version
 * 1, or LP_META_VERSION_BINDS when there are bindings (see the top).
 * Rules the reader enforces are checked here too: -EINVAL for a missing
 * or empty string (a function's why may be NULL, not ""), a string with
 * control characters, no functions or more than LP_MAX_FUNCS, more than
 * LP_MAX_BINDS bindings, a build-id of 0 or more than LP_BUILD_ID_MAX
 * bytes, an unknown flag, a binding that is not exactly one of function
 * and data, a function named twice, a symbol bound twice. That each bound
 * symbol is undefined in the object is the caller's to ensure (the reader
 * checks it). `*ret` is malloc'd. */
int lp_meta_serialize(const struct lp_file *meta, void **ret, size_t *ret_size);
