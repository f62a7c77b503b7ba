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
 *     char strtab[strtab_size]         at strtab_off
 *
 * A reader never trusts it: sizes, offsets, counts and string offsets are
 * bounds-checked; anything out of range is -EBADMSG with a message naming
 * the file and the field. Unknown versions are refused (-EPROTONOSUPPORT).
 *
 * Lifecycle: lb_ (src/build) fills a struct lp_file, turns it into the
 * section's bytes with lp_meta_serialize() and attaches them to the
 * object; lp_ reads it with lp_file_open() for inspect and apply. */
#pragma once

#include "base/macro.h"
#include "base/util.h"

#define LP_META_SECTION ".liveup"
#define LP_META_MAGIC "LIVEUP\x1a\x01" /* 8 bytes */
#define LP_META_VERSION 1
#define LP_BUILD_ID_MAX 64
#define LP_ENTRY_BYTES 16 /* original bytes kept verbatim per function */

/* Limits of the reader (the writer stays within them): a larger header
 * or function entry comes from a newer minor version and is read as far
 * as this version knows it. */
#define LP_MAX_FUNCS 65536u
#define LP_MAX_HEADER_SIZE 4096u
#define LP_MAX_FUNC_SIZE 4096u
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
};

struct lp_meta_func {
        uint32_t name_str;      /* the target's function, by symbol name */
        uint32_t new_str;       /* its replacement: a symbol of this .lpo */
        uint64_t addr;          /* target symbol's file address (st_value) */
        uint64_t size;          /* target symbol's st_size */
        uint64_t hash;          /* FNV-1a 64 of the target's `size` bytes at addr */
        uint8_t entry[LP_ENTRY_BYTES]; /* the first bytes, verbatim */
        uint32_t flags;         /* LP_FUNC_* */
        uint32_t reserved;
};

enum {
        LP_FUNC_LOCAL = 1 << 0, /* the target's symbol is a static */
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
};

struct lp_file {
        char *path;
        const char *id, *name, *target;
        uint8_t build_id[LP_BUILD_ID_MAX];
        size_t build_id_len;
        char build_id_hex[2 * LP_BUILD_ID_MAX + 1];
        uint32_t flags;
        uint64_t created;
        struct lp_func *funcs;
        size_t n_funcs;
        /* The whole file, for the loader (libelf reads from it). */
        void *image;
        size_t image_size;
        char *strtab; /* private copy of the metadata's strings */
};

/* Read and validate a patch file: ELF ET_REL of this ISA, a .liveup
 * section that parses, every replacement symbol defined in the object.
 * -ENOEXEC (not ELF / wrong ISA / not relocatable), -EBADMSG (corrupt),
 * -EPROTONOSUPPORT (other format version); the message names the file and
 * what is wrong. */
int lp_file_open(const char *path, struct lp_file **ret, struct errbuf *err);
/* The same, from memory (for the fuzzer); `data` is copied. */
int lp_file_parse(const void *data, size_t size, const char *name, struct lp_file **ret,
                  struct errbuf *err);
void lp_file_free(struct lp_file *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lp_file *, lp_file_free);

/* The writer: the bytes of a .liveup section describing `meta` (its id,
 * name, target, build_id[_len], flags, created and funcs; path, image and
 * strtab are ignored). Rules the reader enforces are checked here too:
 * -EINVAL for a missing or empty string, a string with control
 * characters, no functions or more than LP_MAX_FUNCS, a build-id of 0 or
 * more than LP_BUILD_ID_MAX bytes, an unknown flag, a function named
 * twice. `*ret` is malloc'd. */
int lp_meta_serialize(const struct lp_file *meta, void **ret, size_t *ret_size);
