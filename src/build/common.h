/* Helpers shared by the patch builder's modes (common.c). */
#pragma once

#include "base/macro.h"
#include "base/util.h"
#include "livepatch/format.h"

#define LB_NAME_MAX 64 /* a patch name's length */

/* A growable list of owned strings. */
struct lb_strv {
        char **v;
        size_t n;
};
void lb_strv_done(struct lb_strv *s);
bool lb_strv_contains(const struct lb_strv *s, const char *x);
int lb_strv_push(struct lb_strv *s, const char *x);
_printf_(2, 3) int lb_strv_pushf(struct lb_strv *s, const char *fmt, ...);

/* A private folder under $TMPDIR (or /tmp); lb_tmpdir_done() removes it
 * and the files in it (not subfolders). */
struct lb_tmpdir {
        char *path;
};
int lb_tmpdir_make(struct lb_tmpdir *t);
void lb_tmpdir_done(struct lb_tmpdir *t);
/* path/name, malloc'd; NULL on ENOMEM. */
char *lb_tmpdir_file(const struct lb_tmpdir *t, const char *name);

/* Run argv[0] (from $PATH) with our stdin and stderr, its stdout sent to
 * our stderr. 0 when it exited 0; -ENOENT when not found; -EPROTO when it
 * failed (err says how it ended). */
int lb_run_tool(char *const argv[], struct errbuf *err);

/* A file's basename without the first of `exts` (NULL-terminated; NULL:
 * none) it ends with: "src/fix.c" -> "fix" with { ".c", NULL }. */
char *lb_file_stem(const char *path, const char *const *exts);
/* 1 to LB_NAME_MAX letters, digits, '_', '-', '.', '+'; not starting
 * with '-' or '.'. */
bool lb_name_ok(const char *s);
/* The default patch name: the file's stem, other characters made '_'. */
char *lb_default_name(const char *path, const char *const *exts);
/* The patch name: `given` (the user's --name; -EINVAL with a message when
 * it is not a valid name), else lb_default_name(file, exts). */
int lb_patch_name(const char *given, const char *file, const char *const *exts, char **ret,
                  struct errbuf *err);
/* $SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
uint64_t lb_created_time(void);

/* Write a new file (O_EXCL), mode 0600. */
int lb_write_file(const char *path, const void *data, size_t size);
/* Put data at path atomically (temporary name, then rename). */
int lb_install(const char *path, const void *data, size_t size);
/* NAME-xxxxxxxx from the object's bytes and the target's build-id. */
char *lb_make_id(const char *name, const void *obj, size_t obj_size, const uint8_t *bid,
                 size_t bid_len);
/* objcopy obj_path + the metadata as section .liveup -> lpo_path; `what`
 * names the input in messages. */
int lb_attach_meta(const struct lb_tmpdir *td, const char *obj_path, const void *meta,
                   size_t meta_size, const char *lpo_path, const char *what,
                   struct errbuf *err);
/* The same file (device and inode)? */
bool lb_same_file(const char *a, const char *c);

struct elf_file;
struct elf_symbol;
/* The lp_func (address, size, hash and first bytes) of BIN's function t,
 * refused when it is too short for the jump over its entry ("a jump needs
 * N") or cannot be read. `what` names the input in messages. name and
 * new_name point at t's name. */
int lb_target_func(struct elf_file *bin, const char *bin_name, const struct elf_symbol *t,
                   const char *what, struct lp_func *ret, struct errbuf *err);

/* The last step of a build: desc's metadata attached to the object at
 * obj_path (in td), the result read back as apply reads it, installed at
 * `output` atomically; *ret is what was read back (its path = output). */
int lb_write_patch(const struct lb_tmpdir *td, const char *obj_path, const struct lp_file *desc,
                   const char *output, const char *what, struct lp_file **ret,
                   struct errbuf *err);
