/* The registry inside a patched process: which patches are applied, in
 * order, where their code lives, the bytes each jump replaced, and the
 * arenas patch memory is carved from.
 *
 * It lives in the target, in a shared mapping of a memfd named "liveup"
 * (shown in /proc/PID/maps as "/memfd:liveup (deleted)"), so the process
 * itself is the truth: `liveup patches`, `revert` and a second liveup all
 * read it there. It is created on the first apply (remote memfd_create,
 * ftruncate, mmap, close) and never unmapped. The tool reads and writes it
 * through proc_read()/proc_write(), only while attached (ptrace admits one
 * tracer at a time, so two liveups never write it at once), except the
 * warm pcs hint and its count, written after the detach
 * (lp_registry_store_warm); the target's
 * own code never reads it, so a write needs no stop window unless it must
 * be atomic with a change the threads could see (the jumps: see apply.c).
 *
 * Layout (fixed-size records, little-endian, versioned):
 *     struct lp_reg_header
 *     struct lp_reg_patch[LP_REG_MAX_PATCHES]   (first n_patches in order)
 *     struct lp_reg_func[LP_REG_MAX_FUNCS]      (first n_funcs used)
 *     struct lp_reg_arena[LP_REG_MAX_ARENAS]    (first n_arenas used)
 *     uint64_t warm_pcs[LP_REG_MAX_WARM]         (first n_warm used)
 * A patch owns funcs [first_func, first_func + n_funcs). warm_pcs is a
 * hint, not state: the pcs whose unwind information the last liveup
 * looked up in its stop window, which the next one looks up before its
 * own (see lp_unwinder_warm()).
 *
 * Versions: 2 added the arenas (the table after the funcs, n_arenas in
 * the header, arena and data_base in the patch record, all carved from
 * what was reserved and zero) and the warm pcs. A version 1 registry reads as one without
 * arenas and is written back as version 2 (its mapping, page-aligned, has
 * room for the table). Any other version is refused. */
#pragma once

#include "base/macro.h"
#include "base/util.h"
#include "livepatch/format.h"
#include "proc/proc.h"

#define LP_REG_MAGIC "LIVEUPRG"
#define LP_REG_VERSION 2
#define LP_REG_MAX_PATCHES 64
#define LP_REG_MAX_FUNCS 1024
#define LP_REG_MAX_ARENAS 16
#define LP_REG_MAX_WARM 256
#define LP_REG_NAME "liveup"

struct lp_reg_header {
        char magic[8];
        uint32_t version;
        uint32_t header_size;
        uint32_t patch_size;
        uint32_t func_size;
        uint32_t n_patches;
        uint32_t n_funcs;
        uint64_t generation; /* incremented by every change */
        uint32_t arena_size; /* sizeof(struct lp_reg_arena); 0 in version 1 */
        uint32_t n_arenas;
        uint32_t n_warm;     /* 0 in version 1 */
        uint8_t reserved[12];
};

_Static_assert(sizeof(struct lp_reg_header) == 64, "struct lp_reg_header changed size");

struct lp_reg_patch {
        char id[96];
        char name[64];
        char target[256];
        uint8_t build_id[LP_BUILD_ID_MAX];
        uint32_t build_id_len;
        uint32_t flags;
        /* The patch image in the target: its code part [0, text_size) at
         * base, its data part [text_size, size) at data_base, or right
         * after the code (base + text_size) when data_base is 0. See
         * lp_reg_patch_extents(). */
        uint64_t base;
        uint64_t size;
        uint64_t text_size;
        uint64_t applied_at; /* seconds since the epoch */
        uint32_t first_func;
        uint32_t n_funcs;
        uint32_t state;      /* LP_REG_STATE_*: the journal */
        /* 1 + the index of the arena its image was carved from; 0: it has
         * mappings of its own, unmapped when it is reverted. */
        uint32_t arena;
        /* The patch's linked .eh_frame, at base + eh_frame_off in the
         * target (see link.h), so that the stop check can unwind through
         * patch code. Both 0: no call frame information (a record written
         * by an older liveup, which left these bytes 0, reads so too). */
        uint64_t eh_frame_off;
        uint64_t eh_frame_size;
        uint64_t data_base;
        uint8_t reserved[16];
};

/* The record's size is part of the format (header.patch_size): fields
 * are carved out of reserved[], never added. */
_Static_assert(sizeof(struct lp_reg_patch) == 576, "struct lp_reg_patch changed size");

/* The journal. A record is written in state APPLYING before anything of
 * the patch is in the target but its memory, and becomes APPLIED in the
 * same stop window as the jumps; a revert marks it REVERTING before it
 * restores anything. A record found in any state but APPLIED belongs to a
 * liveup that was killed midway: the next liveup that attaches completes
 * the removal of that patch (lp_recover), under the usual stop check. */
enum {
        LP_REG_STATE_APPLIED = 0,
        LP_REG_STATE_APPLYING = 1,
        LP_REG_STATE_REVERTING = 2,
};

struct lp_reg_func {
        char name[128];
        uint64_t addr;       /* entry of the old function in the target */
        uint64_t size;
        uint64_t new_addr;   /* its replacement */
        uint64_t jump_at;    /* where the jump was written (after endbr64) */
        uint32_t saved_len;  /* bytes replaced by the jump */
        uint8_t saved[LP_ENTRY_BYTES]; /* what was there before */
        uint8_t reserved[12];
};

/* An arena: memory reserved near a target object (within reach of its
 * jumps and relocations) on the first patch there, so that later patches
 * carve their code and data from it without a remote syscall. Its code
 * part is mapped r-x, its data part rw- right after it; both are private
 * anonymous memory, which costs nothing until written. Arenas are never
 * unmapped. Which parts are in use is not stored: it is the union of the
 * extents of the patch records that name the arena (so a record removed,
 * by a revert or by crash recovery, frees its space in the same registry
 * write), see lp_registry_arena_fit(). */
struct lp_reg_arena {
        uint64_t base;       /* code part: [base, base + text_size) */
        uint64_t text_size;
        uint64_t data_size;  /* data part: [base + text_size, + data_size) */
        uint8_t reserved[40];
};

_Static_assert(sizeof(struct lp_reg_arena) == 64, "struct lp_reg_arena changed size");

struct lp_registry {
        uint64_t addr;       /* mapping in the target; 0 when absent */
        uint64_t size;
        struct lp_reg_header hdr;
        struct lp_reg_patch patches[LP_REG_MAX_PATCHES];
        struct lp_reg_func funcs[LP_REG_MAX_FUNCS];
        struct lp_reg_arena arenas[LP_REG_MAX_ARENAS];
        uint64_t warm_pcs[LP_REG_MAX_WARM];
};

#define LP_REG_SIZE                                                            \
        (sizeof(struct lp_reg_header) +                                        \
         LP_REG_MAX_PATCHES * sizeof(struct lp_reg_patch) +                    \
         LP_REG_MAX_FUNCS * sizeof(struct lp_reg_func) +                       \
         LP_REG_MAX_ARENAS * sizeof(struct lp_reg_arena) +                     \
         LP_REG_MAX_WARM * sizeof(uint64_t))

/* A version 1 registry is upgraded in its own mapping, which is that
 * size rounded up to pages. */
#define LP_REG_SIZE_V1                                                         \
        (sizeof(struct lp_reg_header) +                                        \
         LP_REG_MAX_PATCHES * sizeof(struct lp_reg_patch) +                    \
         LP_REG_MAX_FUNCS * sizeof(struct lp_reg_func))
_Static_assert(LP_REG_SIZE <= ALIGN_UP(LP_REG_SIZE_V1, 4096),
               "a version 1 registry's mapping cannot hold version 2");

/* Find the registry mapping of `pid` (no attach needed: reads maps and
 * memory). *ret is zeroed with addr 0 when the process has none. -EBADMSG
 * when it exists but does not parse, -EPROTONOSUPPORT when it is of a
 * version this liveup does not know (err says which). */
int lp_registry_read(pid_t pid, struct lp_registry *ret, struct errbuf *err);

/* Same, through an attached proc. */
int lp_registry_load(struct proc *p, struct lp_registry *ret, struct errbuf *err);

/* Create the mapping in a stopped process (remote syscalls: memfd_create,
 * ftruncate, mmap, close). `scratch` is the address of LP_REG_SCRATCH
 * bytes in the target that nothing uses during the call (the memfd's name
 * is written there; /proc/PID/mem writes even read-only pages). */
#define LP_REG_SCRATCH 16
int lp_registry_create(struct proc *p, uint64_t scratch, struct lp_registry *reg,
                       struct errbuf *err);

/* Write the whole registry back. */
int lp_registry_store(struct proc *p, struct lp_registry *reg, struct errbuf *err);

/* Write reg->warm_pcs (n_warm of them) back, and n_warm: nothing else
 * (see the top of this file). */
int lp_registry_store_warm(struct proc *p, struct lp_registry *reg);

/* The last registered patch that replaced function entry `addr`, or NULL. */
const struct lp_reg_func *lp_registry_func_at(const struct lp_registry *reg, uint64_t addr);

/* "applied", "applying (interrupted)", "reverting (interrupted)". */
const char *lp_registry_state_name(uint32_t state);

/* Index of the patch with this id, or -ENOENT. */
int lp_registry_find(const struct lp_registry *reg, const char *id);

/* The memory of a patch's image in the target: its code part (the whole
 * image when its data follows the code) and its data part when that lies
 * apart (else *ret_data_len is 0). */
void lp_reg_patch_extents(const struct lp_reg_patch *pt, uint64_t *ret_text,
                          uint64_t *ret_text_len, uint64_t *ret_data, uint64_t *ret_data_len);

/* Where offset `off` of a patch's image is in the target. */
uint64_t lp_reg_patch_addr(const struct lp_reg_patch *pt, uint64_t off);

/* First fit: the lowest page-aligned address in the code part of arena
 * `a` (data: its data part) where `len` bytes are used by no patch record
 * that names the arena (whatever its state), in *ret. -ENOSPC when there
 * is no such place. */
int lp_registry_arena_fit(const struct lp_registry *reg, uint32_t a, bool data, uint64_t len,
                          uint64_t *ret);

/* Bytes of the code part (data: data part) of arena `a` that no patch
 * record uses. */
uint64_t lp_registry_arena_free(const struct lp_registry *reg, uint32_t a, bool data);
