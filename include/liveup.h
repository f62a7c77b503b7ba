/* libliveup: make a service live-updatable by liveup(1).
 *
 * A service started with `liveup run --name NAME -- CMD` runs under a
 * small keeper process. `liveup update NAME` then starts the new version
 * of the service next to the old one, hands it the old one's file
 * descriptors (listening and connected sockets, pipes, eventfds, memfds
 * holding state) and retires the old one, under a state machine modelled
 * on the kernel's Live Update Orchestrator:
 *
 *     normal -> prepared -> frozen -> updated -> finished -> normal
 *
 * On the old version's side the library calls the participants'
 * callbacks: prepare (serialise, preserve fds; may refuse), freeze (stop
 * accepting work and mutating state; write the final state), and later
 * either finish (the update is committed: exit) or cancel (the update was
 * rolled back: thaw and go on serving). Prepare and freeze run in
 * registration order, cancel and finish in reverse.
 *
 * On the new version's side the program states which schema versions of
 * each item it accepts, then takes over: it receives the preserved items
 * once the old version is frozen, and reports ready. A mismatch refuses
 * the update before the old version is frozen.
 *
 * The same binary does both: at start-up it calls liveup_open(),
 * registers its participants, declares what it accepts, calls
 * liveup_takeover() and then either finds its items (it is a new version)
 * or creates them (it is the first one).
 *
 * Threads: a session is not thread-safe; call it from one thread, or from
 * the thread liveup_start_thread() starts (then callbacks run on that
 * thread). Integration with an event loop: poll liveup_get_fd() for
 * POLLIN and call liveup_dispatch() when it is readable.
 *
 * Outside a keeper (no LIVEUP_* environment) every call works and there is
 * simply never an update: liveup_takeover() returns LIVEUP_FRESH and
 * liveup_get_fd() returns -1, so a program runs the same with or without
 * liveup.
 *
 * Errors: functions return >= 0 on success and a negative errno value on
 * failure; they never exit or abort. Names are at most LIVEUP_NAME_MAX - 1
 * bytes of [A-Za-z0-9._-]. */
#ifndef LIVEUP_H
#define LIVEUP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LIVEUP_NAME_MAX 64

struct liveup;

/* What liveup_takeover() found. */
enum {
        LIVEUP_FRESH = 0, /* first version (or no keeper): create everything */
        LIVEUP_TAKEN = 1, /* new version of an update: items were handed over */
};

/* Why a participant's cancel callback runs. */
enum liveup_cancel_reason {
        LIVEUP_CANCEL_REQUESTED = 1, /* `liveup cancel` */
        LIVEUP_CANCEL_REFUSED,       /* a participant's prepare refused */
        LIVEUP_CANCEL_NEW_FAILED,    /* the new version crashed, exited, hung or refused */
        LIVEUP_CANCEL_KEEPER_LOST,   /* the keeper went away mid-update */
};

struct liveup_participant_ops {
        /* Old version, entering `prepared`: serialise state (e.g. into a
         * memfd) and liveup_preserve_fd() what the new version needs.
         * Return < 0 to refuse the update; put the reason in `why`
         * (NUL-terminated, at most why_size bytes): it becomes the
         * refusal message `liveup update` prints. NULL: nothing to do. */
        int (*prepare)(struct liveup *lu, void *userdata, char *why, size_t why_size);
        /* Old version, entering `frozen`: stop accepting work and
         * mutating state; write the final state. Listening sockets stay
         * open (connections queue in the backlog). Fds preserved here are
         * handed over too (e.g. idle connections). Return < 0 to cancel. */
        int (*freeze)(struct liveup *lu, void *userdata, char *why, size_t why_size);
        /* Old version: the update was rolled back. Undo prepare/freeze
         * and go on serving. Must not fail. */
        void (*cancel)(struct liveup *lu, void *userdata, enum liveup_cancel_reason reason);
        /* Old version: the update is committed. Release what you hold;
         * after the last finish callback liveup_dispatch() returns
         * LIVEUP_EXIT and the program should exit. Must not fail. */
        void (*finish)(struct liveup *lu, void *userdata);
};

/* Open the session of this process. `flags` must be 0. Outside a keeper
 * this succeeds too (a session that never updates). -EBADF when
 * LIVEUP_FD is set but is not a SOCK_SEQPACKET socket. */
int liveup_open(struct liveup **ret, unsigned flags);
/* Close it; fds handed to the caller stay the caller's. NULL is fine.
 * Stops the liveup_start_thread() thread unless called from it (e.g.
 * from on_exit). */
void liveup_close(struct liveup *lu);

/* Register a participant (name unique in the session). */
int liveup_participant_add(struct liveup *lu, const char *name,
                           const struct liveup_participant_ops *ops, void *userdata);

/* Hand `fd` over to the next version under `name`, with the application's
 * schema version of what it carries. The library keeps its own duplicate
 * (the caller keeps `fd`), and sends it to the keeper at the next
 * prepare/freeze. Preserving an existing name replaces it. Callable at any
 * time (e.g. the listening socket at start-up). */
int liveup_preserve_fd(struct liveup *lu, const char *name, int fd, uint32_t schema);
/* Stop handing `name` over (e.g. a connection that closed). */
int liveup_unpreserve(struct liveup *lu, const char *name);

/* New version: accept item `name` only with a schema version in
 * [min_schema, max_schema]. Call before liveup_takeover() (after it:
 * -EBUSY). Items not declared are accepted whatever their version. */
int liveup_accept(struct liveup *lu, const char *name, uint32_t min_schema,
                  uint32_t max_schema);

/* Take over from the previous version, if this process is the new version
 * of an update: tell the keeper what we accept (a mismatch refuses the
 * update, the old version is never frozen, and this returns -EPROTO), wait
 * until the old version is frozen and its items arrive. Returns
 * LIVEUP_TAKEN, or LIVEUP_FRESH when this is not an update (first version,
 * no keeper, or an old version that spoke only the systemd protocols).
 * Call once (again: -EALREADY), before liveup_ready(). A keeper request
 * that arrives meanwhile (PREPARE of an early update) waits for the next
 * liveup_dispatch(). */
int liveup_takeover(struct liveup *lu);

/* A handed-over fd, now owned by the caller (returned once; -ENOENT if
 * there is no such item). *ret_schema (may be NULL) gets its version. */
int liveup_retrieve_fd(struct liveup *lu, const char *name, uint32_t *ret_schema);

/* Create-or-retrieve a named memfd of `size` bytes and map it shared,
 * read-write: zero-copy state handover. After LIVEUP_TAKEN it is the old
 * version's memfd (its own size; *ret_size says it; *ret_restored = 1);
 * else a new zero-filled one (*ret_restored = 0). Either way it is
 * preserved under `name` with `schema`, so the next version gets it.
 * ret_size and ret_restored may be NULL. */
int liveup_memfd_map(struct liveup *lu, const char *name, size_t size, uint32_t schema,
                     void **ret_addr, size_t *ret_size, int *ret_restored);

/* Report that this version serves (the keeper then completes the update,
 * or holds in `updated` with --hold). Unclaimed handed-over items are
 * closed. A first version calls it too (`liveup run --ready-timeout`). */
int liveup_ready(struct liveup *lu);

/* Event loop integration: poll this fd for POLLIN (-1 outside a keeper),
 * then call liveup_dispatch(), which runs the callbacks due. Returns 0, or
 * LIVEUP_EXIT once the update is finished and this (old) version should
 * exit, or < 0. */
enum { LIVEUP_EXIT = 1 };
int liveup_get_fd(const struct liveup *lu);
int liveup_dispatch(struct liveup *lu);

/* For programs without an event loop: a thread that polls and dispatches.
 * on_exit (may be NULL) is called on that thread when dispatch returns
 * LIVEUP_EXIT; NULL means the thread calls exit(0). Outside a keeper no
 * thread is started (returns 0); a second call: -EALREADY. */
int liveup_start_thread(struct liveup *lu, void (*on_exit)(struct liveup *lu, void *userdata),
                        void *userdata);

/* The generation of this version: 1 for the first, +1 per update. */
unsigned liveup_generation(const struct liveup *lu);

#ifdef __cplusplus
}
#endif

#endif
