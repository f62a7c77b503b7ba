/* The keeper's control socket: `liveup update/status/finish/cancel`
 * connect here. A client is checked once, at accept, with SO_PEERCRED:
 * root or the keeper's own uid, else it gets RESULT{EPERM} and is closed.
 * It then sends one request (UPDATE, STATUS, FINISH or CANCEL); the
 * answer is a STATUS_REPLY or, for the others, PROGRESS messages and one
 * RESULT, after which the keeper closes the connection.
 *
 * Never blocked by a client: sockets are non-blocking, at most
 * UPD_CLIENTS_MAX at a time (more are closed at once), and a client whose
 * socket cannot take a message is dropped (an update it asked for goes
 * on; `liveup status` shows how it ended). */
#include "update/keeper-internal.h"

#include "base/log.h"
#include "update/fdstore.h"
#include "update/msgio.h"

#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

void control_drop(struct keeper *k, struct client *c)
{
        for (struct client **p = &k->clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        if (k->upd.client == c)
                k->upd.client = NULL;
        keeper_unwatch(k, c->fd);
        safe_close(c->fd);
        k->n_clients--;
        free(c);
}

void control_accept(struct keeper *k)
{
        struct ucred uc;
        socklen_t len = sizeof(uc);
        struct client *c;
        int fd;

        fd = accept4(k->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                close(fd);
                return;
        }
        if (uc.uid != 0 && uc.uid != k->uid) {
                log_warning("%s: refused a control connection from uid %u (pid %d)", k->name,
                            (unsigned)uc.uid, (int)uc.pid);
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "cannot drive service '%s': permission denied (uid %u is neither root "
                         "nor the user running it)",
                         k->name, (unsigned)uc.uid);
                (void)upd_msg_send_result(fd, EPERM, msg);
                close(fd);
                return;
        }
        if (k->n_clients >= UPD_CLIENTS_MAX) {
                (void)upd_msg_send_result(fd, EBUSY, "too many control connections");
                close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->fd = fd;
        c->uid = uc.uid;
        c->w = (struct watch){ W_CLIENT, c };
        if (keeper_watch(k, fd, &c->w) < 0) {
                close(fd);
                free(c);
                return;
        }
        c->next = k->clients;
        k->clients = c;
        k->n_clients++;
}

void control_result(struct keeper *k, struct client *c, int error, const char *fmt, ...)
{
        char msg[UPD_TEXT_MAX];
        va_list ap;

        if (!c)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        (void)upd_msg_send_result(c->fd, error, msg);
        control_drop(k, c);
}

void control_progress(struct keeper *k, const char *fmt, ...)
{
        _cleanup_free_ struct upd_msg_builder *b = NULL;
        char msg[UPD_TEXT_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_info("%s: %s", k->name, msg);
        if (!k->upd.client)
                return;
        b = malloc(sizeof(*b));
        if (!b)
                return;
        upd_msg_begin(b, UPD_MSG_PROGRESS);
        upd_msg_put_u32(b, UPD_TAG_STATE, k->state);
        upd_msg_put_str(b, UPD_TAG_DETAIL, msg);
        if (upd_msg_send(k->upd.client->fd, b, NULL, 0) < 0)
                control_drop(k, k->upd.client);
}

static void status_reply(struct keeper *k, struct client *c)
{
        _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));
        const struct upd_fdstore *stores[] = { &k->items, &k->sd_store };
        struct upd_item_info info;

        if (!b) {
                control_drop(k, c);
                return;
        }
        upd_msg_begin(b, UPD_MSG_STATUS_REPLY);
        upd_msg_put_str(b, UPD_TAG_NAME, k->name);
        upd_msg_put_u32(b, UPD_TAG_STATE, k->state);
        upd_msg_put_u32(b, UPD_TAG_OLD_PID, k->cur ? (uint32_t)k->cur->pid : 0);
        upd_msg_put_u32(b, UPD_TAG_NEW_PID, k->nxt ? (uint32_t)k->nxt->pid : 0);
        upd_msg_put_u32(b, UPD_TAG_GENERATION, k->cur ? k->cur->generation : 0);
        upd_msg_put_u32(b, UPD_TAG_KEEPER_PID, (uint32_t)getpid());
        upd_msg_put_u32(b, UPD_TAG_PROTOCOL,
                        !k->cur             ? UPD_PROTOCOL_NONE
                        : k->cur->hello     ? UPD_PROTOCOL_LIB
                        : k->cur->ready     ? UPD_PROTOCOL_NOTIFY
                                            : UPD_PROTOCOL_NONE);
        for (char **a = k->cur ? k->cur->argv : NULL; a && *a; a++)
                upd_msg_put_str(b, UPD_TAG_ARG, *a);
        upd_msg_put_u64(b, UPD_TAG_UPTIME_MS, (now_ns() - k->started_ns) / 1000000);
        upd_msg_put_u32(b, UPD_TAG_UPDATES, k->updates);
        if (k->updates || k->last_message[0]) {
                upd_msg_put_u32(b, UPD_TAG_LAST_ERROR, k->last_error);
                upd_msg_put_str(b, UPD_TAG_LAST_MESSAGE, k->last_message);
                upd_msg_put_u64(b, UPD_TAG_LAST_DURATION_MS, k->last_duration_ms);
        }
        if (k->cur && k->cur->status[0])
                upd_msg_put_str(b, UPD_TAG_SVC_STATUS, k->cur->status);
        for (size_t s = 0; s < ELEMENTSOF(stores); s++)
                for (size_t i = 0; i < stores[s]->n; i++) {
                        upd_fdstore_info(stores[s], i, &info);
                        upd_msg_put_item(b, &info);
                }
        if (upd_msg_send(c->fd, b, NULL, 0) < 0)
                log_debug("%s: status reply not sent", k->name);
        control_drop(k, c);
}

void control_on_client(struct keeper *k, struct client *c, uint32_t events)
{
        struct errbuf err = {};
        struct upd_msg m;
        int fd = -EBADF;
        int r;

        r = upd_msg_recv(c->fd, &m, &fd, &err);
        if (r == -EAGAIN)
                return;
        if (r == -EBADMSG) {
                log_warning("%s: refused a bad control message: %s", k->name, err.msg);
                control_result(k, c, EBADMSG, "bad request: %s", err.msg);
                return;
        }
        if (r < 0) {
                control_drop(k, c);
                return;
        }
        if (c->wait != CW_NONE) {
                control_result(k, c, EPROTO, "one request per connection");
                upd_msg_done(&m);
                return;
        }
        switch (m.type) {
        case UPD_MSG_STATUS:
                status_reply(k, c);
                break;
        case UPD_MSG_UPDATE:
                update_request(k, c, &m);
                break;
        case UPD_MSG_FINISH:
                update_finish_request(k, c);
                break;
        case UPD_MSG_CANCEL:
                update_cancel_request(k, c);
                break;
        default:
                control_result(k, c, EPROTO, "message %s is not a request",
                               upd_msg_type_name(m.type));
                break;
        }
        safe_close(fd); /* no request carries an fd (the parser checked) */
        upd_msg_done(&m);
}
