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
 * .eh_frame at base + eh_frame_off. Same rules as proc_unwinder_new: do it
 * while the threads run. */
int lp_unwinder_new(struct proc *p, const struct lp_registry *reg, struct proc_unwinder **ret,
                    struct errbuf *err);

/* proc_unwinder_refresh(), with the patches of reg as they are now (an
 * apply or revert changed them, or the maps). */
int lp_unwinder_refresh(struct proc_unwinder *u, const struct lp_registry *reg, struct errbuf *err);
