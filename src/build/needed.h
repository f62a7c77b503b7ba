/* Private to src/build: the dynamic symbols a target can reach, i.e. what
 * the symbols a patch leaves undefined may resolve to at apply time
 * besides the target's own symbols. */
#pragma once

#include "base/macro.h"
#include "base/util.h"

struct lb_needed;

/* The target's own imports (undefined .dynsym entries) and the exported
 * symbols of every library in the closure of its DT_NEEDED entries,
 * searched much as the dynamic linker does: DT_RPATH (when there is no
 * DT_RUNPATH), DT_RUNPATH ($ORIGIN expanded), $LD_LIBRARY_PATH (after
 * the object's own paths: it is the builder's environment, not the
 * target's), the folders of /etc/ld.so.conf, then /lib64, /usr/lib64,
 * /lib, /usr/lib.
 * A library that cannot be found is skipped (its symbols are then
 * unknown). -ENOEXEC when `path` is not a readable ELF file. */
int lb_needed_open(const char *path, struct lb_needed **ret, struct errbuf *err);
void lb_needed_free(struct lb_needed *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_needed *, lb_needed_free);

/* True when `name` is one of those symbols. */
bool lb_needed_has(const struct lb_needed *n, const char *name);
/* How many libraries were found and read (for debug messages). */
size_t lb_needed_n_libraries(const struct lb_needed *n);
