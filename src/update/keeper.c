/* The keeper's set-up and event loop (docs/internals/update.md,
 * "Processes"): one epoll over the control socket, each client, each
 * version's socket and pidfd, the notify socket, one timerfd and a
 * signalfd for SIGTERM/SIGINT/SIGHUP. epoll_wait() takes one event at a
 * time, so a handler may free any object (a client, a reaped version)
 * without a later event of the same batch pointing at it.
 *
 * Lifecycle: bind the sockets (refusing when a keeper of that name
 * answers), spawn generation 1, loop until no version is left, unlink
 * the sockets, return the exit status of the version that was serving
 * when the service ended. SIGTERM/SIGINT/SIGHUP are forwarded to every
 * version. */
#include "update/keeper-internal.h"

#include "base/log.h"
#include "base/util.h"
#include "update/msgio.h"
#include "update/notify.h"
#include "update/runtime.h"
#include "update/spawn.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>

/* ---- string vectors ----------------------------------------------------- */

void strv_free(char **v)
{
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

char **strv_copy(char *const *v)
{
        size_t n = 0;
        char **c;

        while (v && v[n])
                n++;
        c = calloc(n + 1, sizeof(*c));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(v[i]))) {
                        strv_free(c);
                        return NULL;
                }
        return c;
}

char *strv_join(char *const *v)
{
        size_t len = 1;
        char *s;

        for (char *const *p = v; p && *p; p++)
                len += strlen(*p) + 1;
        s = calloc(1, len);
        if (!s)
                return NULL;
        for (char *const *p = v; p && *p; p++) {
                if (p != v)
                        strcat(s, " ");
                strcat(s, *p);
        }
        return s;
}

/* ---- epoll and timer ---------------------------------------------------- */

int keeper_watch(struct keeper *k, int fd, struct watch *w)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

        if (epoll_ctl(k->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        return 0;
}

void keeper_unwatch(struct keeper *k, int fd)
{
        if (fd >= 0)
                (void)epoll_ctl(k->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void keeper_arm_timer(struct keeper *k)
{
        uint64_t d[] = { k->upd.deadline_ns, k->ready_deadline_ns, k->finish_deadline_ns };
        uint64_t next = 0;
        struct itimerspec its = {};

        for (size_t i = 0; i < ELEMENTSOF(d); i++)
                if (d[i] && (!next || d[i] < next))
                        next = d[i];
        if (next) {
                its.it_value.tv_sec = (time_t)(next / 1000000000ull);
                its.it_value.tv_nsec = (long)(next % 1000000000ull);
        }
        (void)timerfd_settime(k->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- versions ----------------------------------------------------------- */

static void version_free(struct version *v)
{
        safe_close(v->pidfd);
        safe_close(v->sock);
        strv_free(v->argv);
        free(v->accepts);
        free(v);
}

void keeper_close_version_sock(struct keeper *k, struct version *v)
{
        keeper_unwatch(k, v->sock);
        v->sock = safe_close(v->sock);
}

int keeper_spawn(struct keeper *k, char **argv, bool pdeathsig, struct version **ret,
                 struct errbuf *err)
{
        struct upd_spawn_opts o = {
                .argv = argv,
                .name = k->name,
                .generation = k->last_generation + 1,
                .notify_path = k->notify_path,
                .listen = &k->sd_store,
                .pdeathsig = pdeathsig,
        };
        struct version *v;
        int r;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->pidfd = v->sock = -EBADF;
        v->argv = strv_copy(argv);
        if (!v->argv) {
                version_free(v);
                return -ENOMEM;
        }
        r = upd_spawn(&o, &v->pid, &v->pidfd, &v->sock, err);
        if (r < 0) {
                version_free(v);
                return r;
        }
        v->generation = ++k->last_generation;
        v->started_ns = now_ns();
        v->w_pid = (struct watch){ W_VERSION_PID, v };
        v->w_sock = (struct watch){ W_VERSION_SOCK, v };
        if (keeper_watch(k, v->pidfd, &v->w_pid) < 0 || keeper_watch(k, v->sock, &v->w_sock) < 0) {
                r = -errno;
                (void)syscall(SYS_pidfd_send_signal, v->pidfd, SIGKILL, NULL, 0);
                (void)waitpid(v->pid, NULL, 0);
                keeper_unwatch(k, v->pidfd);
                keeper_unwatch(k, v->sock);
                version_free(v);
                return r;
        }
        v->next_in_list = k->versions;
        k->versions = v;
        *ret = v;
        return 0;
}

void keeper_kill(struct keeper *k, struct version *v, int sig)
{
        /* Through the pidfd: the pid cannot have been reused. */
        (void)syscall(SYS_pidfd_send_signal, v->pidfd, sig, NULL, 0);
}

/* The version sockets are non-blocking, and a burst (ITEM for each of up
 * to UPD_ITEMS_MAX items) outruns the socket's send buffer (about 200
 * packets with an fd each at the default wmem) unless the version reads
 * meanwhile. So a full socket gets a short wait for room: up to
 * KEEPER_SEND_WAIT_MS per message, after which the version counts as
 * stuck (the send fails as before). */
#define KEEPER_SEND_WAIT_MS 1000

int keeper_send(struct keeper *k, struct version *v, struct upd_msg_builder *b, int fd)
{
        int r;

        if (v->sock < 0)
                return -ENOTCONN;
        for (;;) {
                struct pollfd p = { .fd = v->sock, .events = POLLOUT };

                r = upd_msg_send(v->sock, b, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
                if (r != -EAGAIN)
                        break;
                do
                        r = poll(&p, 1, KEEPER_SEND_WAIT_MS);
                while (r < 0 && errno == EINTR);
                if (r <= 0 || !(p.revents & POLLOUT)) {
                        r = -EAGAIN;
                        break;
                }
        }
        if (r < 0) {
                log_debug("%s: cannot send to pid %d: %s", k->name, (int)v->pid, strerror(-r));
                keeper_close_version_sock(k, v);
        }
        return r;
}

int keeper_send_empty(struct keeper *k, struct version *v, enum upd_msg_type type)
{
        _cleanup_free_ struct upd_msg_builder *b = malloc(sizeof(*b));

        if (!b)
                return -ENOMEM;
        upd_msg_begin(b, type);
        return keeper_send(k, v, b, -EBADF);
}

static void on_version_sock(struct keeper *k, struct version *v, uint32_t events)
{
        struct errbuf err = {};
        struct upd_msg m;
        int fd = -EBADF;
        int r;

        /* One message per wake-up: a chatty version cannot starve the
         * others (epoll is level-triggered, we come back). */
        r = upd_msg_recv(v->sock, &m, &fd, &err);
        if (r == -EAGAIN)
                return;
        if (r == -EBADMSG) {
                log_warning("%s: dropped a bad message from pid %d: %s", k->name, (int)v->pid,
                            err.msg);
                return;
        }
        if (r < 0) {
                keeper_close_version_sock(k, v);
                update_on_sock_closed(k, v);
                return;
        }
        update_on_message(k, v, &m, fd);
        upd_msg_done(&m);
}

static void reap(struct keeper *k, struct version *v)
{
        siginfo_t si = {};
        int code = 0, sig = 0;

        if (waitid((idtype_t)P_PIDFD, (id_t)v->pidfd, &si, WEXITED | WNOHANG) < 0 ||
            si.si_pid == 0)
                return;
        if (si.si_code == CLD_EXITED)
                code = si.si_status;
        else
                sig = si.si_status;
        keeper_unwatch(k, v->pidfd);
        keeper_close_version_sock(k, v);
        for (struct version **p = &k->versions; *p; p = &(*p)->next_in_list)
                if (*p == v) {
                        *p = v->next_in_list;
                        break;
                }
        update_on_exit(k, v, code, sig);
        version_free(v);
}

/* ---- notify socket ------------------------------------------------------ */

static struct version *version_by_pid(struct keeper *k, pid_t pid)
{
        for (struct version *v = k->versions; v; v = v->next_in_list)
                if (v->pid == pid)
                        return v;
        return NULL;
}

static void on_notify(struct keeper *k)
{
        struct upd_notify_msg n;
        struct version *v;
        int r;

        r = upd_notify_recv(k->notify_fd, &n);
        if (r == -EAGAIN)
                return;
        if (r < 0) {
                log_debug("%s: dropped a bad notify message: %s", k->name, strerror(-r));
                return;
        }
        v = n.pid > 0 ? version_by_pid(k, n.pid) : NULL;
        if (!v || v->dying) {
                log_debug("%s: notify message from pid %d, not a version: dropped", k->name,
                          (int)n.pid);
                for (size_t i = 0; i < n.n_fds; i++)
                        close(n.fds[i]);
                return;
        }
        if (n.has_status)
                snprintf(v->status, sizeof(v->status), "%s", n.status);
        if (n.fdstoreremove)
                (void)upd_fdstore_remove(&k->sd_store, n.fdname);
        for (size_t i = 0; i < n.n_fds; i++) {
                if (!n.fdstore) {
                        close(n.fds[i]);
                        continue;
                }
                /* Names repeat only within one message (several fds). */
                if (i == 0)
                        (void)upd_fdstore_remove(&k->sd_store, n.fdname);
                r = upd_fdstore_put(&k->sd_store, n.fdname, n.fds[i], 0, false);
                if (r < 0)
                        log_warning("%s: cannot store fd '%s' of pid %d: %s", k->name,
                                    n.fdname, (int)v->pid, strerror(-r));
        }
        if (n.stopping)
                log_debug("%s: pid %d is stopping", k->name, (int)v->pid);
        if (n.ready)
                update_on_notify(k, v, true);
}

void keeper_drain(struct keeper *k)
{
        struct pollfd p;

        for (int i = 0; i < 64 && k->cur && k->cur->sock >= 0; i++) {
                p = (struct pollfd){ .fd = k->cur->sock, .events = POLLIN };
                if (poll(&p, 1, 0) <= 0)
                        break;
                on_version_sock(k, k->cur, p.revents);
        }
        for (int i = 0; i < 64; i++) {
                p = (struct pollfd){ .fd = k->notify_fd, .events = POLLIN };
                if (poll(&p, 1, 0) <= 0)
                        break;
                on_notify(k);
        }
}

/* ---- signals ------------------------------------------------------------ */

static void on_signal(struct keeper *k)
{
        struct signalfd_siginfo si;

        if (read(k->sig_fd, &si, sizeof(si)) != sizeof(si))
                return;
        if (!k->terminating)
                log_info("%s: got %s: stopping the service", k->name, strsignal((int)si.ssi_signo));
        k->terminating = true;
        if (upd_state_busy(k->state) && k->state != UPD_STATE_FINISHED)
                update_cancel(k, UPD_CANCEL_REQUESTED, "the keeper is stopping");
        for (struct version *v = k->versions; v; v = v->next_in_list)
                keeper_kill(k, v, (int)si.ssi_signo);
}

static void on_timer(struct keeper *k)
{
        uint64_t ticks;
        uint64_t now = now_ns();

        (void)!read(k->timer_fd, &ticks, sizeof(ticks));
        if (k->ready_deadline_ns && now >= k->ready_deadline_ns) {
                k->ready_deadline_ns = 0;
                if (k->cur && !k->cur->ready) {
                        log_error("service '%s' (pid %d) was not ready within %.1f s: killing it",
                                  k->name, (int)k->cur->pid, k->ready_timeout);
                        k->failed_ready = true;
                        k->terminating = true;
                        keeper_kill(k, k->cur, SIGKILL);
                }
        }
        update_on_timer(k, now);
        keeper_arm_timer(k);
}

/* ---- set-up ------------------------------------------------------------- */

/* Is a keeper answering at `sa`? */
static bool answers(const struct sockaddr_un *sa, socklen_t len)
{
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

        return fd >= 0 && connect(fd, (const struct sockaddr *)sa, len) == 0;
}

static int bind_control(struct keeper *k)
{
        struct sockaddr_un sa;
        socklen_t len;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = upd_runtime_addr(k->dir, k->name, "sock", &sa, &len);
        if (r < 0)
                return r;
        snprintf(k->ctl_path, sizeof(k->ctl_path), "%s", sa.sun_path);
        if (answers(&sa, len))
                return -EADDRINUSE;
        (void)unlink(sa.sun_path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, len) < 0)
                return -errno;
        if (chmod(sa.sun_path, 0600) < 0 || listen(fd, 16) < 0)
                return -errno;
        k->ctl_fd = TAKE_FD(fd);
        return 0;
}

static int setup(struct keeper *k, const struct upd_keeper_config *cfg)
{
        struct sockaddr_un sa;
        socklen_t len;
        sigset_t mask;
        int r;

        snprintf(k->name, sizeof(k->name), "%s", cfg->name);
        k->uid = getuid();
        k->started_ns = now_ns();
        k->ready_timeout = cfg->ready_timeout;
        r = upd_runtime_dir(k->dir, sizeof(k->dir));
        if (r < 0) {
                log_error("cannot run '%s': no runtime folder (set LIVEUP_RUNTIME_DIR or "
                          "XDG_RUNTIME_DIR)", k->name);
                return r;
        }
        r = upd_runtime_mkdir(k->dir);
        if (r < 0) {
                log_error("cannot run '%s': cannot create %s: %s", k->name, k->dir,
                          strerror(-r));
                return r;
        }

        k->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (k->epfd < 0)
                return -errno;
        r = bind_control(k);
        if (r == -EADDRINUSE) {
                log_error("cannot run '%s': a keeper of that name already runs (%s answers)",
                          k->name, k->ctl_path);
                return r;
        }
        if (r < 0) {
                log_error("cannot run '%s': control socket in %s: %s", k->name, k->dir,
                          strerror(-r));
                return r;
        }
        r = upd_runtime_addr(k->dir, k->name, "notify", &sa, &len);
        if (r >= 0) {
                snprintf(k->notify_path, sizeof(k->notify_path), "%s", sa.sun_path);
                r = upd_notify_bind(k->notify_path, &k->notify_fd);
        }
        if (r < 0) {
                log_error("cannot run '%s': notify socket in %s: %s", k->name, k->dir,
                          strerror(-r));
                return r;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        k->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        k->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (k->sig_fd < 0 || k->timer_fd < 0)
                return -errno;

        k->w_ctl = (struct watch){ W_CONTROL, NULL };
        k->w_notify = (struct watch){ W_NOTIFY, NULL };
        k->w_timer = (struct watch){ W_TIMER, NULL };
        k->w_sig = (struct watch){ W_SIGNAL, NULL };
        if (keeper_watch(k, k->ctl_fd, &k->w_ctl) < 0 ||
            keeper_watch(k, k->notify_fd, &k->w_notify) < 0 ||
            keeper_watch(k, k->timer_fd, &k->w_timer) < 0 ||
            keeper_watch(k, k->sig_fd, &k->w_sig) < 0)
                return -errno;
        return 0;
}

static void teardown(struct keeper *k)
{
        while (k->clients)
                control_drop(k, k->clients);
        while (k->versions) {
                struct version *v = k->versions;
                k->versions = v->next_in_list;
                version_free(v);
        }
        upd_fdstore_clear(&k->sd_store);
        upd_fdstore_clear(&k->items);
        strv_free(k->upd.argv);
        if (k->ctl_fd >= 0)
                (void)unlink(k->ctl_path);
        if (k->notify_fd >= 0)
                (void)unlink(k->notify_path);
        safe_close(k->ctl_fd);
        safe_close(k->notify_fd);
        safe_close(k->timer_fd);
        safe_close(k->sig_fd);
        safe_close(k->epfd);
}

int upd_keeper_run(const struct upd_keeper_config *cfg)
{
        struct keeper k = {
                .epfd = -EBADF,
                .ctl_fd = -EBADF,
                .notify_fd = -EBADF,
                .timer_fd = -EBADF,
                .sig_fd = -EBADF,
        };
        struct errbuf err = {};
        int r;

        r = setup(&k, cfg);
        if (r < 0) {
                teardown(&k);
                return 1;
        }
        r = keeper_spawn(&k, cfg->argv, false, &k.cur, &err);
        if (r < 0) {
                log_error("cannot run '%s': %s", k.name, errbuf_or_strerror(&err, r));
                teardown(&k);
                return 1;
        }
        log_info("%s: started pid %d (generation 1)", k.name, (int)k.cur->pid);
        if (cfg->ready_timeout > 0) {
                k.ready_deadline_ns = now_ns() + (uint64_t)(cfg->ready_timeout * 1e9);
                keeper_arm_timer(&k);
        }

        while (k.versions) {
                struct epoll_event ev;
                struct watch *w;
                int n;

                n = epoll_wait(k.epfd, &ev, 1, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error("%s: epoll_wait: %s", k.name, strerror(errno));
                        break;
                }
                if (n == 0)
                        continue;
                w = ev.data.ptr;
                switch (w->kind) {
                case W_CONTROL:
                        control_accept(&k);
                        break;
                case W_NOTIFY:
                        on_notify(&k);
                        break;
                case W_TIMER:
                        on_timer(&k);
                        break;
                case W_SIGNAL:
                        on_signal(&k);
                        break;
                case W_CLIENT:
                        control_on_client(&k, w->owner, ev.events);
                        break;
                case W_VERSION_SOCK:
                        on_version_sock(&k, w->owner, ev.events);
                        break;
                case W_VERSION_PID:
                        reap(&k, w->owner);
                        break;
                }
        }
        r = k.failed_ready ? 1 : k.exit_status;
        teardown(&k);
        return r;
}
