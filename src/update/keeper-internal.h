/* What keeper.c (set-up, event loop, versions, signals), control.c
 * (control clients) and update.c (the update's steps) share. One keeper
 * per process; single-threaded; nothing here blocks (all sockets are
 * non-blocking; a peer that cannot take a message is dropped or, for a
 * version, the update is cancelled). */
#pragma once

#include "update/fdstore.h"
#include "update/keeper.h"
#include "update/proto.h"
#include "update/state.h"

#include <limits.h>
#include <sys/types.h>

#define UPD_CLIENTS_MAX 64
#define UPD_FINISH_KILL_NS (5ull * 1000000000ull)     /* libliveup old version */
#define UPD_FINISH_KILL_SD_NS (30ull * 1000000000ull) /* SIGTERM'd systemd-style one */
#define UPD_DEFAULT_TIMEOUT_MS 30000u

struct keeper;

/* What an epoll event belongs to. */
enum watch_kind {
        W_CONTROL,
        W_NOTIFY,
        W_TIMER,
        W_SIGNAL,
        W_CLIENT,
        W_VERSION_SOCK,
        W_VERSION_PID,
};

struct watch {
        enum watch_kind kind;
        void *owner;
};

struct accept_rule {
        char name[UPD_NAME_MAX];
        uint32_t min, max;
};

struct version {
        struct version *next_in_list;
        pid_t pid;
        int pidfd, sock;
        struct watch w_pid, w_sock;
        unsigned generation;
        char **argv;
        uint64_t started_ns;
        bool hello;    /* libliveup spoke */
        bool takeover; /* asked for the items */
        bool ready;
        bool dying;    /* killed or told to finish; no longer a role */
        struct accept_rule *accepts;
        size_t n_accepts;
        char status[UPD_TEXT_MAX]; /* STATUS= */
};

enum client_wait {
        CW_NONE,
        CW_UPDATE, /* gets PROGRESS, then RESULT when the update ends (or holds) */
        CW_FINISH, /* gets RESULT when back in normal */
};

struct client {
        struct client *next;
        int fd;
        uid_t uid;
        struct watch w;
        enum client_wait wait;
};

struct keeper {
        char name[UPD_NAME_MAX];
        char dir[PATH_MAX];
        char ctl_path[PATH_MAX], notify_path[PATH_MAX];
        uid_t uid;
        int epfd, ctl_fd, notify_fd, timer_fd, sig_fd;
        struct watch w_ctl, w_notify, w_timer, w_sig;

        enum upd_state state;
        struct version *versions; /* every child not yet reaped */
        struct version *cur;      /* the serving (old) version */
        struct version *nxt;      /* the new version of the update under way */
        struct client *clients;
        size_t n_clients;
        unsigned last_generation;

        struct upd_fdstore sd_store; /* FDSTORE=1: every version gets these */
        struct upd_fdstore items;    /* preserved by the old version, this update */

        uint32_t upd_seq; /* number of the current (or last) update */
        struct {
                struct client *client; /* who asked (NULL once answered or gone) */
                char **argv;           /* the new command line (owned) */
                bool hold;
                uint32_t timeout_ms;
                uint64_t started_ns, deadline_ns;
                bool prepare_sent, old_prepared, freeze_sent, old_frozen, items_sent;
        } upd;

        uint64_t ready_deadline_ns;  /* first version's READY (run --ready-timeout) */
        double ready_timeout;
        uint64_t finish_deadline_ns; /* SIGKILL the finished old version */
        bool terminating;
        bool failed_ready;
        int exit_status;
        uint64_t started_ns;

        unsigned updates;
        uint32_t last_error;
        char last_message[UPD_TEXT_MAX];
        uint64_t last_duration_ms;
};

/* keeper.c */
int keeper_watch(struct keeper *k, int fd, struct watch *w);
void keeper_unwatch(struct keeper *k, int fd);
void keeper_arm_timer(struct keeper *k);
int keeper_spawn(struct keeper *k, char **argv, bool pdeathsig, struct version **ret,
                 struct errbuf *err);
void keeper_kill(struct keeper *k, struct version *v, int sig);
/* Send on a version's socket; a failure closes it (the peer is gone or
 * stuck) and returns < 0. */
int keeper_send(struct keeper *k, struct version *v, struct upd_msg_builder *b, int fd);
int keeper_send_empty(struct keeper *k, struct version *v, enum upd_msg_type type);
void keeper_close_version_sock(struct keeper *k, struct version *v);
/* Handle what the serving version and the notify socket have already
 * sent (bounded), so a request that raced its READY sees it. */
void keeper_drain(struct keeper *k);
char **strv_copy(char *const *v);
void strv_free(char **v);
char *strv_join(char *const *v);

/* control.c */
void control_accept(struct keeper *k);
void control_on_client(struct keeper *k, struct client *c, uint32_t events);
void control_drop(struct keeper *k, struct client *c);
/* PROGRESS to the client waiting for the update, if any. */
void control_progress(struct keeper *k, const char *fmt, ...) _printf_(2, 3);
/* RESULT to a client, then it is done (dropped). */
void control_result(struct keeper *k, struct client *c, int error, const char *fmt, ...)
        _printf_(4, 5);

/* update.c */
void update_request(struct keeper *k, struct client *c, struct upd_msg *m);
void update_finish_request(struct keeper *k, struct client *c);
void update_cancel_request(struct keeper *k, struct client *c);
void update_on_message(struct keeper *k, struct version *v, struct upd_msg *m, int fd);
void update_on_sock_closed(struct keeper *k, struct version *v);
void update_on_exit(struct keeper *k, struct version *v, int code, int sig);
void update_on_notify(struct keeper *k, struct version *v, bool ready);
void update_on_timer(struct keeper *k, uint64_t now);
/* Roll back (reason: enum liveup_cancel_reason numbers). */
void update_cancel(struct keeper *k, uint32_t reason, const char *fmt, ...) _printf_(3, 4);
