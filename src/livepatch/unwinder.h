/* The unwinder of a (possibly) patched process: src/proc's unwinder, told
 * about the code of every patch in the process's registry. A patch image
 * is anonymous memory, unknown to the unwinder by itself, so without this
 * a stack through a replacement function ends there, unreliable, and the
 * stop check refuses to go on (stacking, revert) while any thread sits in
 * or below patch code. */
#pragma once

#include "livepatch/registry.h"
#include "proc/unwind.h"

/* proc_unwinder_new(), plus every patch of reg (NULL, or a registry that
 * is absent: none) as a code region: [base, base + text_size), its
 * .eh_frame at offset eh_frame_off of its image (lp_reg_patch_addr()).
 * Same rules as proc_unwinder_new: do it while the threads run. */
int lp_unwinder_new(struct proc *p, const struct lp_registry *reg, struct proc_unwinder **ret,
                    struct errbuf *err);

/* proc_unwinder_refresh(), with the patches of reg as they are now (an
 * apply or revert changed them, or the maps). */
int lp_unwinder_refresh(struct proc_unwinder *u, const struct lp_registry *reg, struct errbuf *err);

/* The stacks of a process change little between two runs of liveup (the
 * same loops, the same calls blocked in the same syscalls), and a fresh
 * unwinder's first stop window pays a CFI lookup per pc it meets (16
 * busy threads: ~200 µs cold, ~50 µs warm). So each run leaves in the
 * registry the pcs it looked up (lp_unwinder_remember(), after its last
 * stop window, while the threads run), and the next one looks them up
 * before its first window (lp_unwinder_warm(), after any refresh, which
 * empties the cache). A hint only: stale pcs cost wasted lookups. */
void lp_unwinder_warm(struct proc_unwinder *u, const struct lp_registry *reg);
void lp_unwinder_remember(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg);
