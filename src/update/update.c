/* The steps of an update, driven by events (docs/internals/update.md,
 * "State machine"): requests from the CLI, messages from the versions,
 * READY=1 on the notify socket, exits seen on pidfds, the deadline.
 *
 *   UPDATE    refuse first, changing nothing (busy, the running version not
 *             ready yet, binary missing or not executable); then normal -> prepared: PREPARE to the old
 *             version (libliveup) and wait for PREPARED, or nothing to do
 *             (systemd-style: the fd store is already here).
 *   PREPARED  spawn the new version (it initialises while the old serves).
 *   TAKEOVER  check its ACCEPTs against the items' schemas (mismatch:
 *             TAKEOVER_REFUSED and cancel, the old was never frozen), then
 *             FREEZE the old one.
 *   FROZEN    prepared -> frozen; hand the items over (ITEM..., ITEMS_END).
 *             systemd-style: passed through at spawn.
 *   READY     frozen -> updated; without --hold straight on to finish.
 *   finish    updated -> finished: FINISH to the old one (SIGKILL after
 *             5 s), or SIGTERM for a systemd-style one (SIGKILL after 30 s).
 *   exit      of the old one in finished: -> normal, COMMITTED to the new.
 *   cancel    new version SIGKILLed, CANCEL{reason} to the old one (if it
 *             was sent PREPARE), items closed, -> normal.
 *
 * Every transition goes through upd_state_next(), so an event that does
 * not apply in the current state changes nothing. */
#include "update/keeper-internal.h"

#include "base/log.h"
#include "update/msgio.h"
#include "update/spawn.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>

static bool step(struct keeper *k, enum upd_event e)
{
        enum upd_state to;

        if (upd_state_next(k->state, e, &to) < 0) {
                log_debug("%s: event %s ignored in state %s", k->name, upd_event_name(e),
                          upd_state_name(k->state));
                return false;
        }
        k->state = to;
        return true;
}

static void reset_update(struct keeper *k)
{
        strv_free(k->upd.argv);
        memset(&k->upd, 0, sizeof(k->upd));
        keeper_arm_timer(k);
}

static double secs_since(uint64_t t)
{
        return (double)(now_ns() - t) / 1e9;
}

static void describe_exit(char *buf, size_t size, int code, int sig)
{
        if (sig)
                snprintf(buf, size, "was killed by signal %d (%s)", sig, strsignal(sig));
        else
                snprintf(buf, size, "exited with status %d", code);
}

void update_cancel(struct keeper *k, uint32_t reason, const char *fmt, ...)
{
        char why[UPD_TEXT_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);

        if (!step(k, UPD_EVENT_CANCEL))
                return;
        if (k->nxt) {
                keeper_kill(k, k->nxt, SIGKILL);
                k->nxt->dying = true;
                k->nxt = NULL;
        }
        if (k->cur && k->cur->hello && k->upd.prepare_sent) {
                _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));
                if (b) {
                        upd_msg_begin(b, UPD_MSG_CANCEL);
                        upd_msg_put_u32(b, UPD_TAG_REASON, reason);
                        (void)keeper_send(k, k->cur, b, -EBADF);
                }
        }
        upd_fdstore_clear(&k->items);
        k->last_error = ECANCELED;
        snprintf(k->last_message, sizeof(k->last_message), "cancelled: %.1000s", why);
        k->last_duration_ms = (now_ns() - k->upd.started_ns) / 1000000;
        log_warning("update of '%s' cancelled: %s", k->name, why);
        control_result(k, k->upd.client, ECANCELED, "update of '%s' cancelled: %s", k->name,
                       why);
        reset_update(k);
}

/* ---- steps -------------------------------------------------------------- */

static void do_finish(struct keeper *k)
{
        if (!step(k, UPD_EVENT_FINISH))
                return;
        k->upd.deadline_ns = 0;
        if (k->cur->hello && keeper_send_empty(k, k->cur, UPD_MSG_FINISH) >= 0) {
                control_progress(k, "finished: the old version (pid %d) was told to exit",
                                 (int)k->cur->pid);
                k->finish_deadline_ns = now_ns() + UPD_FINISH_KILL_NS;
        } else {
                control_progress(k, "finished: SIGTERM to the old version (pid %d)",
                                 (int)k->cur->pid);
                keeper_kill(k, k->cur, SIGTERM);
                k->finish_deadline_ns = now_ns() + UPD_FINISH_KILL_SD_NS;
        }
        keeper_arm_timer(k);
}

static void become_updated(struct keeper *k)
{
        if (!step(k, UPD_EVENT_READY))
                return;
        k->upd.deadline_ns = 0;
        keeper_arm_timer(k);
        control_progress(k, "updated: the new version (pid %d) serves, the old one (pid %d) is %s",
                         (int)k->nxt->pid, (int)k->cur->pid,
                         k->cur->hello ? "frozen" : "still running");
        if (k->upd.hold) {
                control_result(k, k->upd.client, 0,
                               "update of '%s' held in updated: new pid %d, old pid %d; "
                               "'liveup finish %s' commits, 'liveup cancel %s' rolls back",
                               k->name, (int)k->nxt->pid, (int)k->cur->pid, k->name, k->name);
                return;
        }
        do_finish(k);
}

/* The schema rule: an item whose name the new version declared must have
 * a schema in its range. On a mismatch, `why` says which. */
static bool schemas_agree(struct keeper *k, struct version *v, char *why, size_t size)
{
        for (size_t i = 0; i < v->n_accepts; i++) {
                struct upd_item *it = upd_fdstore_find(&k->items, v->accepts[i].name);
                if (it && (it->schema < v->accepts[i].min || it->schema > v->accepts[i].max)) {
                        snprintf(why, size,
                                 "the new version (pid %d) refuses item '%s': schema %u, it "
                                 "accepts %u..%u",
                                 (int)v->pid, it->name, it->schema, v->accepts[i].min,
                                 v->accepts[i].max);
                        return false;
                }
        }
        return true;
}

static void refuse_takeover(struct keeper *k, const char *why)
{
        _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));

        if (b) {
                upd_msg_begin(b, UPD_MSG_TAKEOVER_REFUSED);
                upd_msg_put_str(b, UPD_TAG_WHY, why);
                (void)keeper_send(k, k->nxt, b, -EBADF);
        }
        update_cancel(k, UPD_CANCEL_NEW_FAILED, "%s", why);
}

static int send_items_end(struct keeper *k, struct version *v, uint32_t count, bool fresh)
{
        _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));

        if (!b)
                return -ENOMEM;
        upd_msg_begin(b, UPD_MSG_ITEMS_END);
        upd_msg_put_u32(b, UPD_TAG_COUNT, count);
        if (fresh)
                upd_msg_put_u32(b, UPD_TAG_FRESH, 1);
        return keeper_send(k, v, b, -EBADF);
}

static void send_items(struct keeper *k)
{
        _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));
        char why[UPD_TEXT_MAX];
        int r = -ENOMEM;

        if (!schemas_agree(k, k->nxt, why, sizeof(why))) {
                refuse_takeover(k, why);
                return;
        }
        if (b) {
                r = 0;
                for (size_t i = 0; i < k->items.n && r >= 0; i++) {
                        upd_msg_begin(b, UPD_MSG_ITEM);
                        upd_msg_put_str(b, UPD_TAG_NAME, k->items.items[i].name);
                        upd_msg_put_u32(b, UPD_TAG_SCHEMA, k->items.items[i].schema);
                        r = keeper_send(k, k->nxt, b, k->items.items[i].fd);
                }
        }
        if (r >= 0)
                r = send_items_end(k, k->nxt, (uint32_t)k->items.n, !k->cur->hello);
        if (r < 0) {
                update_cancel(k, UPD_CANCEL_NEW_FAILED,
                              "cannot hand the items to the new version (pid %d): %s",
                              (int)k->nxt->pid, strerror(-r));
                return;
        }
        k->upd.items_sent = true;
        control_progress(k, "frozen: %zu items handed to the new version (pid %d)", k->items.n,
                         (int)k->nxt->pid);
}

static int send_numbered(struct keeper *k, enum upd_msg_type type);

static void send_freeze(struct keeper *k)
{
        if (k->upd.freeze_sent)
                return;
        k->upd.freeze_sent = true;
        if (send_numbered(k, UPD_MSG_FREEZE) < 0)
                update_cancel(k, UPD_CANCEL_REQUESTED,
                              "the old version (pid %d) cannot be told to freeze",
                              (int)k->cur->pid);
}

/* PREPARE or FREEZE, with the update's number (see proto.h). */
static int send_numbered(struct keeper *k, enum upd_msg_type type)
{
        _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));

        if (!b)
                return -ENOMEM;
        upd_msg_begin(b, type);
        upd_msg_put_u32(b, UPD_TAG_COUNT, k->upd_seq);
        return keeper_send(k, k->cur, b, -EBADF);
}

static void after_frozen(struct keeper *k)
{
        if (k->nxt->takeover && !k->upd.items_sent) {
                send_items(k);
                if (k->state != UPD_STATE_FROZEN)
                        return;
        }
        if (k->nxt->ready)
                become_updated(k);
}

static void spawn_new(struct keeper *k)
{
        struct errbuf err = {};
        int r;

        r = keeper_spawn(k, k->upd.argv, k->cur->hello, &k->nxt, &err);
        if (r < 0) {
                update_cancel(k, UPD_CANCEL_NEW_FAILED, "cannot start the new version: %s",
                              errbuf_or_strerror(&err, r));
                return;
        }
        control_progress(k, "prepared: started the new version (pid %d, generation %u)",
                         (int)k->nxt->pid, k->nxt->generation);
        if (!k->cur->hello) {
                /* systemd-style: nothing to freeze, the old version keeps
                 * serving on the shared listening sockets. */
                if (step(k, UPD_EVENT_FROZEN)) {
                        k->upd.old_frozen = true;
                        control_progress(k, "frozen: passed through (the old version, pid %d, "
                                            "serves until the new one is ready)",
                                         (int)k->cur->pid);
                }
        }
}

/* ---- requests ----------------------------------------------------------- */

void update_request(struct keeper *k, struct client *c, struct upd_msg *m)
{
        char *const *argv;
        char path[PATH_MAX];
        int r;

        if (k->terminating || !k->cur) {
                control_result(k, c, ESHUTDOWN, "update of '%s' refused: the service is stopping",
                               k->name);
                return;
        }
        if (upd_state_busy(k->state)) {
                control_result(k, c, EBUSY,
                               "update of '%s' refused: an update is already in progress "
                               "(state %s)",
                               k->name, upd_state_name(k->state));
                return;
        }
        /* Before its first READY a version may not have said HELLO yet
         * either: we could not tell a libliveup service from a systemd
         * one. And a program that never reports ready cannot be updated
         * (the new version would never be ready). */
        if (!k->cur->ready)
                keeper_drain(k);
        if (k->cur && !k->cur->ready) {
                control_result(k, c, EAGAIN,
                               "update of '%s' refused: the running version (pid %d) has not "
                               "reported ready (liveup_ready() or READY=1)",
                               k->name, (int)k->cur->pid);
                return;
        }
        if (!k->cur || k->terminating) {
                control_result(k, c, ESHUTDOWN, "update of '%s' refused: the service is stopping",
                               k->name);
                return;
        }
        argv = m->n_argv ? m->argv : k->cur->argv;
        r = upd_check_exec(argv[0], path, sizeof(path));
        if (r < 0) {
                control_result(k, c, -r, "update of '%s' refused: the new version's binary '%s' %s",
                               k->name, argv[0],
                               r == -ENOENT ? "does not exist" : "is not executable");
                return;
        }
        k->upd.argv = strv_copy(argv);
        if (!k->upd.argv) {
                control_result(k, c, ENOMEM, "update of '%s' refused: out of memory", k->name);
                return;
        }
        k->upd.client = c;
        c->wait = CW_UPDATE;
        k->upd.hold = m->hold != 0;
        k->upd.timeout_ms = upd_msg_has(m, UPD_TAG_TIMEOUT_MS) && m->timeout_ms
                                    ? m->timeout_ms
                                    : UPD_DEFAULT_TIMEOUT_MS;
        k->upd.started_ns = now_ns();
        k->upd.deadline_ns = k->upd.started_ns + (uint64_t)k->upd.timeout_ms * 1000000ull;
        keeper_arm_timer(k);
        (void)step(k, UPD_EVENT_UPDATE);

        k->upd_seq++;
        if (k->cur->hello) {
                k->upd.prepare_sent = true;
                control_progress(k, "preparing: PREPARE to the old version (pid %d)",
                                 (int)k->cur->pid);
                if (send_numbered(k, UPD_MSG_PREPARE) < 0)
                        update_cancel(k, UPD_CANCEL_REQUESTED,
                                      "the old version (pid %d) cannot be reached",
                                      (int)k->cur->pid);
                return;
        }
        k->upd.old_prepared = true;
        spawn_new(k);
}

void update_finish_request(struct keeper *k, struct client *c)
{
        if (k->state != UPD_STATE_UPDATED) {
                control_result(k, c, EINVAL,
                               "cannot finish '%s': no update is held in updated (state %s)",
                               k->name, upd_state_name(k->state));
                return;
        }
        if (k->upd.client)
                control_drop(k, k->upd.client);
        k->upd.client = c;
        c->wait = CW_FINISH;
        do_finish(k);
}

void update_cancel_request(struct keeper *k, struct client *c)
{
        if (k->state == UPD_STATE_NORMAL || k->state == UPD_STATE_FINISHED) {
                control_result(k, c, EINVAL, "cannot cancel '%s': %s", k->name,
                               k->state == UPD_STATE_NORMAL
                                       ? "no update is in progress"
                                       : "the update is already finishing");
                return;
        }
        update_cancel(k, UPD_CANCEL_REQUESTED, "by request (liveup cancel)");
        control_result(k, c, 0, "update of '%s' cancelled: the old version (pid %d) serves",
                       k->name, k->cur ? (int)k->cur->pid : 0);
}

/* ---- events from the versions ------------------------------------------- */

static void on_ready(struct keeper *k, struct version *v)
{
        if (v->ready)
                return;
        v->ready = true;
        if (v == k->cur && k->state == UPD_STATE_NORMAL) {
                k->ready_deadline_ns = 0;
                keeper_arm_timer(k);
                log_info("%s: pid %d is ready", k->name, (int)v->pid);
                return;
        }
        if (v != k->nxt)
                return;
        control_progress(k, "the new version (pid %d) is ready", (int)v->pid);
        if (k->upd.old_frozen)
                become_updated(k);
        else if (k->upd.old_prepared)
                send_freeze(k); /* it never asked for the items */
}

void update_on_notify(struct keeper *k, struct version *v, bool ready)
{
        if (ready)
                on_ready(k, v);
}

static void on_old_message(struct keeper *k, struct version *v, struct upd_msg *m, int fd)
{
        bool collecting = (k->state == UPD_STATE_PREPARED || k->state == UPD_STATE_FROZEN) &&
                          k->upd.prepare_sent;
        int r;

        /* An answer to an earlier update (cancelled since) is stale. */
        if (upd_msg_has(m, UPD_TAG_COUNT) && m->count != k->upd_seq) {
                log_debug("%s: stale %s (update %u, now %u) from pid %d dropped", k->name,
                          upd_msg_type_name(m->type), m->count, k->upd_seq, (int)v->pid);
                safe_close(fd);
                return;
        }

        switch (m->type) {
        case UPD_MSG_PRESERVE:
                if (!collecting)
                        break;
                r = upd_fdstore_put(&k->items, m->name, TAKE_FD(fd), m->schema, true);
                if (r < 0)
                        update_cancel(k, UPD_CANCEL_REFUSED, "cannot hold item '%s': %s",
                                      m->name, strerror(-r));
                break;
        case UPD_MSG_UNPRESERVE:
                if (collecting)
                        (void)upd_fdstore_remove(&k->items, m->name);
                break;
        case UPD_MSG_PREPARED:
                if (k->state != UPD_STATE_PREPARED || k->upd.old_prepared)
                        break;
                k->upd.old_prepared = true;
                control_progress(k, "prepared: the old version (pid %d) preserved %zu items",
                                 (int)v->pid, k->items.n);
                spawn_new(k);
                break;
        case UPD_MSG_FROZEN:
                if (k->state != UPD_STATE_PREPARED || !k->upd.freeze_sent)
                        break;
                (void)step(k, UPD_EVENT_FROZEN);
                k->upd.old_frozen = true;
                control_progress(k, "frozen: the old version (pid %d) stopped; %zu items",
                                 (int)v->pid, k->items.n);
                after_frozen(k);
                break;
        case UPD_MSG_REFUSE:
                if (k->state == UPD_STATE_PREPARED || k->state == UPD_STATE_FROZEN)
                        update_cancel(k, UPD_CANCEL_REFUSED, "refused by the old version: %s",
                                      m->why);
                break;
        case UPD_MSG_READY:
                on_ready(k, v);
                break;
        case UPD_MSG_TAKEOVER:
                /* A first version (or one with nothing to take over). */
                (void)send_items_end(k, v, 0, true);
                break;
        default:
                log_debug("%s: message %s from pid %d ignored", k->name,
                          upd_msg_type_name(m->type), (int)v->pid);
                break;
        }
        safe_close(fd);
}

static void on_new_message(struct keeper *k, struct version *v, struct upd_msg *m, int fd)
{
        char why[UPD_TEXT_MAX];

        switch (m->type) {
        case UPD_MSG_ACCEPT: {
                struct accept_rule *a;

                if (v->takeover || v->n_accepts >= UPD_ITEMS_MAX)
                        break;
                a = realloc(v->accepts, (v->n_accepts + 1) * sizeof(*a));
                if (!a)
                        break;
                v->accepts = a;
                a = &a[v->n_accepts++];
                snprintf(a->name, sizeof(a->name), "%s", m->name);
                a->min = m->min;
                a->max = m->max;
                break;
        }
        case UPD_MSG_TAKEOVER:
                if (v->takeover)
                        break;
                v->takeover = true;
                if (!schemas_agree(k, v, why, sizeof(why))) {
                        refuse_takeover(k, why);
                        break;
                }
                control_progress(k, "the new version (pid %d) takes over", (int)v->pid);
                if (!k->cur->hello)
                        (void)send_items_end(k, v, 0, true);
                else if (k->upd.old_frozen)
                        after_frozen(k);
                else if (k->upd.old_prepared)
                        send_freeze(k);
                break;
        case UPD_MSG_READY:
                on_ready(k, v);
                break;
        default:
                log_debug("%s: message %s from the new version ignored", k->name,
                          upd_msg_type_name(m->type));
                break;
        }
        safe_close(fd);
}

void update_on_message(struct keeper *k, struct version *v, struct upd_msg *m, int fd)
{
        if (m->type == UPD_MSG_HELLO) {
                v->hello = true;
                safe_close(fd);
                return;
        }
        if (v == k->cur)
                on_old_message(k, v, m, fd);
        else if (v == k->nxt)
                on_new_message(k, v, m, fd);
        else
                safe_close(fd);
}

void update_on_sock_closed(struct keeper *k, struct version *v)
{
        if (v == k->cur && k->upd.prepare_sent &&
            (k->state == UPD_STATE_PREPARED || k->state == UPD_STATE_FROZEN))
                update_cancel(k, UPD_CANCEL_REQUESTED,
                              "the old version (pid %d) closed its connection to the keeper",
                              (int)v->pid);
}

static void commit(struct keeper *k)
{
        struct version *old = k->cur;

        k->finish_deadline_ns = 0;
        k->cur = k->nxt;
        k->nxt = NULL;
        (void)step(k, UPD_EVENT_DONE);
        if (!k->cur) {
                reset_update(k);
                return;
        }
        if (k->cur->hello)
                (void)keeper_send_empty(k, k->cur, UPD_MSG_COMMITTED);
        upd_fdstore_clear(&k->items);
        k->updates++;
        k->last_error = 0;
        k->last_duration_ms = (now_ns() - k->upd.started_ns) / 1000000;
        snprintf(k->last_message, sizeof(k->last_message),
                 "completed: pid %d (generation %u) replaced pid %d", (int)k->cur->pid,
                 k->cur->generation, old ? (int)old->pid : 0);
        control_progress(k, "normal: pid %d (generation %u) serves", (int)k->cur->pid,
                         k->cur->generation);
        control_result(k, k->upd.client, 0, "update of '%s' completed in %.3f s: pid %d serves",
                       k->name, secs_since(k->upd.started_ns), (int)k->cur->pid);
        reset_update(k);
}

void update_on_exit(struct keeper *k, struct version *v, int code, int sig)
{
        char how[128];

        describe_exit(how, sizeof(how), code, sig);
        if (v == k->nxt) {
                if (k->state == UPD_STATE_FINISHED) {
                        log_error("%s: the new version (pid %d) %s while the old one was "
                                  "finishing",
                                  k->name, (int)v->pid, how);
                        k->nxt = NULL;
                        return;
                }
                k->nxt = NULL; /* nothing left to kill */
                update_cancel(k, UPD_CANCEL_NEW_FAILED, "the new version (pid %d) %s%s",
                              (int)v->pid, how, v->ready ? "" : " before it was ready");
                return;
        }
        if (v != k->cur)
                return;

        switch (k->state) {
        case UPD_STATE_UPDATED:
                (void)step(k, UPD_EVENT_FINISH);
                log_warning("%s: the old version (pid %d) %s in updated: committing", k->name,
                            (int)v->pid, how);
                commit(k);
                return;
        case UPD_STATE_FINISHED:
                commit(k);
                return;
        case UPD_STATE_PREPARED:
        case UPD_STATE_FROZEN:
                k->cur = NULL;
                update_cancel(k, UPD_CANCEL_NEW_FAILED, "the old version (pid %d) %s", (int)v->pid,
                              how);
                break;
        case UPD_STATE_NORMAL:
                k->cur = NULL;
                break;
        default:
                break;
        }
        log_info("%s: pid %d %s", k->name, (int)v->pid, how);
        k->exit_status = sig ? 128 + sig : code;
        k->terminating = true;
        for (struct version *o = k->versions; o; o = o->next_in_list)
                keeper_kill(k, o, SIGTERM);
}

void update_on_timer(struct keeper *k, uint64_t now)
{
        if (k->upd.deadline_ns && now >= k->upd.deadline_ns) {
                double t = k->upd.timeout_ms / 1000.0;
                k->upd.deadline_ns = 0;
                if (!k->upd.old_prepared)
                        update_cancel(k, UPD_CANCEL_REQUESTED,
                                      "the old version (pid %d) did not prepare within %.1f s",
                                      (int)k->cur->pid, t);
                else if (k->nxt)
                        update_cancel(k, UPD_CANCEL_NEW_FAILED,
                                      "the new version (pid %d) was not ready within %.1f s",
                                      (int)k->nxt->pid, t);
                else
                        update_cancel(k, UPD_CANCEL_REQUESTED, "timed out after %.1f s", t);
        }
        if (k->finish_deadline_ns && now >= k->finish_deadline_ns) {
                k->finish_deadline_ns = 0;
                if (k->cur && k->state == UPD_STATE_FINISHED) {
                        log_warning("%s: the old version (pid %d) did not exit after finish: "
                                    "killing it",
                                    k->name, (int)k->cur->pid);
                        keeper_kill(k, k->cur, SIGKILL);
                }
        }
}
