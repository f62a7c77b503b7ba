/* The unwinder of a patched process; see unwinder.h.
 *
 * The registry comes from the target's memory: a record whose .eh_frame
 * does not lie inside one part (code or data) of its own image is given
 * no CFI (its code then stops an unwind, which is safe: the stop check
 * treats that as busy), rather than trusted. A record written by a liveup
 * older than the eh_frame fields has them 0, and gets no CFI either. A
 * record still being applied (APPLYING) gets its CFI from the moment
 * apply stores it, after linking; before that its code part counts as
 * code without CFI. */
#include "livepatch/unwinder.h"

#include <stdlib.h>
#include <string.h>

/* The code regions of reg's patches, in *ret (names point into reg). */
static int patch_regions(const struct lp_registry *reg, struct proc_code_region **ret,
                         size_t *ret_n)
{
        size_t n_patches = reg && reg->addr ? reg->hdr.n_patches : 0, n = 0;
        struct proc_code_region *regions;

        regions = calloc(MAX(n_patches, (size_t)1), sizeof(*regions));
        if (!regions)
                return -ENOMEM;
        for (size_t i = 0; i < n_patches; i++) {
                const struct lp_reg_patch *pt = &reg->patches[i];
                struct proc_code_region *c = &regions[n];

                if (pt->text_size == 0 || pt->text_size > pt->size ||
                    pt->base + pt->size < pt->base)
                        continue;
                *c = (struct proc_code_region){
                        .start = pt->base,
                        .end = pt->base + pt->text_size,
                        .name = pt->id,
                };
                if (pt->eh_frame_size > 0 && pt->eh_frame_off <= pt->size &&
                    pt->eh_frame_size <= pt->size - pt->eh_frame_off &&
                    (pt->eh_frame_off >= pt->text_size ||
                     pt->eh_frame_off + pt->eh_frame_size <= pt->text_size)) {
                        /* In the data part, which may lie apart. */
                        c->eh_frame_addr = lp_reg_patch_addr(pt, pt->eh_frame_off);
                        c->eh_frame_size = pt->eh_frame_size;
                }
                n++;
        }
        *ret = regions;
        *ret_n = n;
        return 0;
}

int lp_unwinder_refresh(struct proc_unwinder *u, const struct lp_registry *reg, struct errbuf *err)
{
        _cleanup_free_ struct proc_code_region *regions = NULL;
        size_t n = 0;
        int r;

        r = patch_regions(reg, &regions, &n);
        if (r < 0)
                return r;
        return proc_unwinder_set_code(u, regions, n, err);
}

int lp_unwinder_new(struct proc *p, const struct lp_registry *reg, struct proc_unwinder **ret,
                    struct errbuf *err)
{
        _cleanup_(proc_unwinder_freep) struct proc_unwinder *u = NULL;
        int r;

        r = proc_unwinder_new(p, &u, err);
        if (r < 0)
                return r;
        /* No patch: nothing to add (and no second report of the maps). */
        if (reg && reg->addr && reg->hdr.n_patches > 0) {
                r = lp_unwinder_refresh(u, reg, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(u);
        return 0;
}

void lp_unwinder_warm(struct proc_unwinder *u, const struct lp_registry *reg)
{
        if (u && reg && reg->addr)
                proc_unwinder_warm_pcs(u, reg->warm_pcs, MIN(reg->hdr.n_warm, LP_REG_MAX_WARM));
}

void lp_unwinder_remember(struct proc *p, struct proc_unwinder *u, struct lp_registry *reg)
{
        uint64_t pcs[LP_REG_MAX_WARM];
        size_t n;

        if (!u || !reg || !reg->addr)
                return;
        n = proc_unwinder_cached_pcs(u, pcs, LP_REG_MAX_WARM);
        if (n == 0)
                return;
        memcpy(reg->warm_pcs, pcs, n * sizeof(pcs[0]));
        reg->hdr.n_warm = (uint32_t)n;
        (void)lp_registry_store_warm(p, reg);
}
