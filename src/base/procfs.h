/* Parsing of /proc: memory maps (with each mapped object's extent and
 * base), the task list, thread names, states and status fields.
 *
 * Everything here is a snapshot: a process may change between two reads.
 * Callers that need stability read while the target's threads are stopped
 * (src/proc). Functions return -ESRCH when the process or thread is gone. */
#pragma once

#include "macro.h"

#include <sys/types.h>

enum {
        PROCFS_PERM_R = 1 << 0,
        PROCFS_PERM_W = 1 << 1,
        PROCFS_PERM_X = 1 << 2,
        PROCFS_PERM_SHARED = 1 << 3,
};

struct procfs_map {
        uint64_t start, end; /* [start, end) */
        uint64_t offset;     /* file offset of start */
        unsigned perms;      /* PROCFS_PERM_* */
        unsigned dev_major, dev_minor;
        uint64_t inode;
        char *path; /* "" for anonymous; "[vdso]", "[stack]", ... kept */
        bool deleted; /* path ended in " (deleted)", which was stripped */
};

struct procfs_maps {
        struct procfs_map *maps;
        size_t n;
};

/* A file mapped in the process (all mappings of one (dev, inode) pair, or
 * of one bracketed name such as "[vdso]"). */
struct procfs_object {
        const char *path;  /* points into the maps it was built from */
        uint64_t start;    /* lowest mapped address */
        uint64_t end;      /* highest mapped end */
        uint64_t base;     /* start of the mapping at file offset 0, or
                            * start when no such mapping exists */
        uint64_t exec_start, exec_end; /* extent of executable mappings,
                                        * 0/0 when none */
        unsigned dev_major, dev_minor;
        uint64_t inode;
};

int procfs_maps_read(pid_t pid, struct procfs_maps *ret);
void procfs_maps_done(struct procfs_maps *m);
/* The mapping containing addr, or NULL. */
const struct procfs_map *procfs_maps_find(const struct procfs_maps *m, uint64_t addr);

/* Group mappings into objects (files and named pseudo-mappings). The
 * returned array refers to strings owned by `m`: free it before `m`. */
int procfs_objects(const struct procfs_maps *m, struct procfs_object **ret, size_t *ret_n);

/* Sorted list of thread ids of the process. */
int procfs_tasks(pid_t pid, pid_t **ret, size_t *ret_n);

/* Thread name from /proc/PID/task/TID/comm, without the newline. */
int procfs_thread_name(pid_t pid, pid_t tid, char *buf, size_t size);

/* Thread state letter from /proc/PID/task/TID/stat ('R', 'S', 'D', 'T',
 * 't', 'Z', ...). */
int procfs_thread_state(pid_t pid, pid_t tid, char *ret);

/* A field of /proc/PID/task/TID/status (tid 0: /proc/PID/status), value
 * with leading whitespace removed. -ENOENT when the field is absent. */
int procfs_status_field(pid_t pid, pid_t tid, const char *field, char *buf, size_t size);

/* TracerPid of a thread (0 when not traced). */
int procfs_tracer_pid(pid_t pid, pid_t tid, pid_t *ret);

/* Thread-group id of a task id (-ESRCH when no such task). */
int procfs_tgid(pid_t tid, pid_t *ret);

/* Long name of a state letter, e.g. 'S' -> "sleeping". */
const char *procfs_state_name(char state);
