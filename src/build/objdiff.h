/* Comparing two relocatable objects of one translation unit, built before
 * and after a source change with -ffunction-sections -fdata-sections, and
 * deciding what a patch must carry (objdiff.c); writing that patch object
 * (emit.c).
 *
 * Model: an lb_obj is the object read into memory: its sections (with
 * their relocations, sorted by offset) and its symbols. lb_objdiff(u, p)
 * works on the pair (u: unpatched, p: patched) and leaves its verdict in
 * p's fields:
 *   - every function and data symbol of p gets a twin in u (the same
 *     function or variable: by name; static locals and gcc's clones,
 *     whose numeric suffixes change between builds, by name without the
 *     numbers and, when that is not enough, by the function that uses
 *     them), or none (new);
 *   - every function of p is SAME, CHANGED (its code, or anything it
 *     refers to, differs once relocations are normalised: a call to the
 *     same function, a reference to the same variable or to a string with
 *     the same contents count as equal wherever the linker put them) or
 *     NEW;
 *   - data of p that exists in u must be unchanged (its initial value and
 *     size); otherwise the pair is refused: a running process keeps its
 *     current data, so a patch cannot change it;
 *   - sections to include: the CHANGED and NEW functions (each with its
 *     .cold part), new data, and the read-only data they use (string
 *     literals, tables: copied into the patch);
 *   - every symbol that included code refers to gets a disposition: KEEP
 *     (defined in the patch), EXTERN (undefined in p: resolved by name
 *     when applied) or BIND (a function or variable of the target: the
 *     caller finds its address in the target through its twin in u).
 */
#pragma once

#include "base/macro.h"
#include "base/util.h"

#include <gelf.h>

enum lb_status {
        LB_SAME,
        LB_CHANGED,
        LB_NEW,
};

enum lb_disp {
        LB_DISP_NONE,   /* not referred to by the patch */
        LB_DISP_KEEP,   /* defined in an included section */
        LB_DISP_EXTERN, /* undefined in the object: by name */
        LB_DISP_BIND,   /* the target's own: bind_addr */
};

struct lb_rela {
        uint64_t off;
        uint32_t type;
        uint32_t sym;
        int64_t addend;
};

struct lb_sec {
        const char *name;
        GElf_Shdr sh;
        const uint8_t *data;  /* NULL for SHT_NOBITS and empty sections */
        struct lb_rela *relas; /* of the SHT_RELA section applying to it */
        size_t n_relas;
        int64_t owner;  /* the function or object symbol at its offset 0, -1 */
        uint32_t secsym; /* its STT_SECTION symbol, 0 when none */
        bool include;
        bool text, data_rw, rodata, strings; /* kinds, see objdiff.c */
};

struct lb_sym {
        const char *name;
        unsigned char type, bind;
        uint32_t shndx;
        uint64_t value, size;
        int64_t twin;   /* index of the same symbol in the other object, -1 */
        enum lb_status status;
        enum lb_disp disp;
        const char *why; /* static text: why a CHANGED function changed */
        int64_t parent; /* foo.cold: foo's index; else -1 */
        /* Filled by the caller for LB_DISP_BIND (diff.c). */
        uint64_t bind_addr;
        const char *bind_name;
        /* Filled by lb_emit: the symbol's name in the patch. */
        char *out_name;
};

struct lb_obj {
        char *path;
        char *rel;      /* the source file, for messages */
        void *image;
        size_t size;
        Elf *elf;
        const char *file; /* the STT_FILE name, or NULL */
        struct lb_sec *secs; /* indexed like the ELF sections */
        size_t n_secs;
        struct lb_sym *syms; /* indexed like .symtab */
        size_t n_syms;
        int64_t eh_frame;  /* section index of .eh_frame, -1 */
};

/* Read the relocatable object at `path` (`rel` names its source in
 * messages). -ENOEXEC when it is not an ET_REL of this ISA. */
int lb_obj_open(const char *path, const char *rel, struct lb_obj **ret, struct errbuf *err);
void lb_obj_free(struct lb_obj *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_obj *, lb_obj_free);

struct lb_obj;
struct lb_sym;
/* Does the source change move line `old` of function s (of patched
 * object p) to line `new`, the line itself unchanged? Lets lb_objdiff
 * ignore code that differs only in line numbers (__LINE__ in assert() and
 * logging macros, compiled to immediates). */
typedef bool (*lb_line_moved_fn)(void *userdata, const struct lb_obj *p, const struct lb_sym *s,
                                 uint64_t old_line, uint64_t new_line);

/* Compare u (unpatched) with p (patched); see the top of this file.
 * `moved` may be NULL (no line-number allowance). Returns 0, or -EPERM
 * with the refusal in err (changed data, a reference into the middle of a
 * function, a static that cannot be told apart). */
int lb_objdiff(struct lb_obj *u, struct lb_obj *p, lb_line_moved_fn moved, void *userdata,
               struct errbuf *err);

/* Is s a function symbol defined in a text section (the one its section
 * holds)? */
bool lb_sym_is_func(const struct lb_obj *o, const struct lb_sym *s);

/* The bytes of function `s` (NULL if none). */
const uint8_t *lb_sym_code(const struct lb_obj *o, const struct lb_sym *s);

/* Write one relocatable object holding the included sections of every
 * object of `objs` (each after lb_objdiff), their relocations rewritten to
 * the dispositions, one .eh_frame with only the included functions'
 * records, and a symbol table: the included functions and data under
 * unique names (set in out_name), the EXTERN symbols by name and the BIND
 * ones under unique names the caller maps to addresses (out_name). */
int lb_emit(struct lb_obj **objs, size_t n_objs, const char *path, struct errbuf *err);
