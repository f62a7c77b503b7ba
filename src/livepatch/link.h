/* Linking a patch object for a place in another process, without that
 * process's help: lay out its allocated sections, resolve its symbols
 * (its own, and through a callback the target's), apply its relocations,
 * and give far references a slot (GOT) or a stub, all inside one image
 * that the caller copies into the target at `base`.
 *
 * Layout of the image (page-aligned parts, so the caller can map the code
 * r-x and the rest rw-):
 *
 *     [0, text_size)           executable sections, then branch stubs
 *     [text_size, size)        read-only and writable data, .bss (zeroed),
 *                              then GOT slots
 *
 * The two parts need not be adjacent in the target: the code part goes
 * at `base`, the data part at `data_base` (lp_link_split(); lp_link()
 * puts it right after the code). Every reference between them must then
 * still be within reach (±2 GiB on x86-64): a relocation that is not is
 * refused, as one to any other far symbol would be.
 *
 * The object's .eh_frame is allocated read-only data like any other, and
 * its relocations (the FDEs' pc-relative references to the code) are
 * applied as any other's: in the image it is the call frame information
 * of the linked code, at its final addresses. The image says where it is
 * (eh_frame_off), so that an unwinder can be told about it.
 *
 * Nothing here touches a process: linking is a pure function of the
 * object, `base` and the resolver, and is unit-tested by linking a patch
 * into the test process itself. */
#pragma once

#include "base/macro.h"
#include "base/util.h"

/* Resolve an undefined symbol of the object to an absolute address in the
 * target. Return -ENOENT (with a message) when it does not exist. */
typedef int (*lp_resolve_fn)(void *userdata, const char *name, uint64_t *ret_addr,
                             struct errbuf *err);

struct lp_image {
        uint8_t *buf;       /* size bytes */
        size_t size;        /* multiple of the page size */
        size_t text_size;   /* multiple of the page size */
        uint64_t base;      /* buf[0, text_size) goes there in the target */
        uint64_t data_base; /* buf[text_size, size) goes there */
        /* The linked .eh_frame: [eh_frame_off, eh_frame_off +
         * eh_frame_size) of buf, in the data part. 0/0 when the object has
         * none (or more than one, which gcc never emits: the FDEs of one
         * could not be told from the other's CIEs once laid out apart). */
        size_t eh_frame_off, eh_frame_size;
        /* The object's defined function and object symbols, linked. */
        struct lp_image_sym {
                char *name;
                uint64_t addr;
                uint64_t size;
                bool func;
                bool local;
        } *syms;
        size_t n_syms;
        size_t n_stubs, n_got; /* far branches and GOT slots created */
};

/* Upper bounds of the image size and of its text part for this object (to
 * reserve the address range before the final base is known); the image
 * lp_link() makes has exactly these sizes. *ret_writable: whether some
 * section must be writable in the target (.data, .bss; the GOT slots are
 * filled before the image is copied in). ret_text_size and ret_writable
 * may be NULL. */
int lp_link_size(const void *elf_image, size_t elf_size, size_t *ret_size, size_t *ret_text_size,
                 bool *ret_writable, struct errbuf *err);

/* Link the ET_REL object in elf_image for `base`, its data part right
 * after its code (data_base = base + text_size). */
int lp_link(const void *elf_image, size_t elf_size, uint64_t base, lp_resolve_fn resolve,
            void *userdata, struct lp_image **ret, struct errbuf *err);

/* The same, with the data part at `data_base` (page-aligned; 0: right
 * after the code). */
int lp_link_split(const void *elf_image, size_t elf_size, uint64_t base, uint64_t data_base,
                  lp_resolve_fn resolve, void *userdata, struct lp_image **ret,
                  struct errbuf *err);

/* Where image offset `off` (of buf) lands in the target. */
uint64_t lp_image_addr(const struct lp_image *img, size_t off);

/* Address of a defined symbol of the linked object; -ENOENT if none. */
int lp_image_lookup(const struct lp_image *img, const char *name, uint64_t *ret_addr,
                    uint64_t *ret_size);

void lp_image_free(struct lp_image *img);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lp_image *, lp_image_free);
