/* libFuzzer target for the .lpo reader (lp_file_parse): any input must
 * give a patch or an error with a message, never a crash, a leak or
 * undefined behaviour. Not part of `make check`; build and run it with
 * tests/fuzz/run.sh (needs clang with -fsanitize=fuzzer). Good seeds are
 * any .lpo that `liveup build` wrote, and one with bindings and reasons
 * (format version 2; run.sh makes it with tests/build/lpo.py). */
#include "livepatch/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lp_file *f = NULL;
        struct errbuf err = {};
        int r;

        r = lp_file_parse(data, size, "fuzz.lpo", &f, &err);
        if (r >= 0) {
                /* Everything a caller reads must be there. */
                for (size_t i = 0; i < f->n_funcs; i++)
                        if (!f->funcs[i].name[0] || !f->funcs[i].new_name[0] ||
                            (f->funcs[i].why && !f->funcs[i].why[0]))
                                __builtin_trap();
                /* Each binding is found by its symbol, and is its only one. */
                for (size_t i = 0; i < f->n_binds; i++)
                        if (!f->binds[i].sym[0] || !f->binds[i].name[0] ||
                            lp_file_find_bind(f, f->binds[i].sym) != &f->binds[i])
                                __builtin_trap();
                if (f->n_binds > 0 && f->version < LP_META_VERSION_BINDS)
                        __builtin_trap();
                if (!f->id[0] || !f->name[0] || !f->target[0] || f->build_id_len == 0)
                        __builtin_trap();
                lp_file_free(f);
        } else if (!err.msg[0] && r != -ENOMEM)
                __builtin_trap(); /* every refusal says why */
        return 0;
}
