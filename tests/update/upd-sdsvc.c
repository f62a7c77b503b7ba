/* Test service for live update that links nothing of liveup: it speaks
 * only systemd's protocols. It serves the same counter as upd-svc over a
 * Unix stream socket; the listening socket and the memfd holding the
 * counter live in the keeper's fd store (FDSTORE=1 + FDNAME= on
 * NOTIFY_SOCKET), and each version started gets them back in
 * LISTEN_FDS/LISTEN_FDNAMES. It reports READY=1 and STATUS=, and on
 * SIGTERM says STOPPING=1 and exits 0 (the old version during finish).
 * The first version also stores a "tmp" pipe and removes it again
 * (FDSTOREREMOVE=1), so status must not list it.
 *
 *   upd-sdsvc --socket PATH [--mode normal|crash|exit|hang]
 *
 * MODE acts only in a version started with stored fds. Events on stdout:
 * "ready gen=G pid=P counter=N", "stopping pid=P". */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what, int e)
{
        fprintf(stderr, "upd-sdsvc: %s: %s\n", what, strerror(e));
        exit(1);
}

/* sd_notify with optional fds. */
static void notify(const char *text, const int *fds, size_t n)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
        union {
                char buf[CMSG_SPACE(sizeof(int) * 8)];
                struct cmsghdr align;
        } control;
        struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1 };
        int fd;

        if (!path)
                return;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (n) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
        }
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || sendmsg(fd, &mh, 0) < 0)
                die("notify", errno);
        close(fd);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "mode", required_argument, NULL, 'm' },
                {},
        };
        const char *path = NULL, *mode = "normal", *e;
        int listen_fd = -1, state_fd = -1, conns[64], c;
        size_t n_conns = 0;
        uint64_t *counter;
        unsigned gen = 0;
        bool restored = false;
        sigset_t mask;
        int sfd;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (c == 's')
                        path = optarg;
                else if (c == 'm')
                        mode = optarg;
                else
                        return 2;
        }
        if (!path)
                die("--socket PATH is required", EINVAL);
        if ((e = getenv("LIVEUP_GENERATION")))
                gen = (unsigned)atoi(e);

        e = getenv("LISTEN_PID");
        if (e && atoi(e) == (int)getpid() && getenv("LISTEN_FDS")) {
                int n = atoi(getenv("LISTEN_FDS"));
                char names[1024];
                snprintf(names, sizeof(names), "%s", getenv("LISTEN_FDNAMES") ?: "");
                char *save = NULL, *name = strtok_r(names, ":", &save);
                for (int i = 0; i < n; i++, name = strtok_r(NULL, ":", &save)) {
                        if (name && strcmp(name, "listener") == 0)
                                listen_fd = 3 + i;
                        else if (name && strcmp(name, "state") == 0)
                                state_fd = 3 + i;
                        else
                                close(3 + i); /* "tmp" must not be here */
                }
                restored = true;
                if (strcmp(mode, "crash") == 0)
                        abort();
                if (strcmp(mode, "exit") == 0)
                        exit(3);
                if (strcmp(mode, "hang") == 0)
                        for (;;)
                                pause();
        }
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        unsetenv("LISTEN_PID");
        if (listen_fd < 0) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
                unlink(path);
                listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
                    listen(listen_fd, 64) < 0)
                        die("listener", errno);
                notify("FDSTORE=1\nFDNAME=listener", &listen_fd, 1);
        }
        if (state_fd < 0) {
                int p[2];
                state_fd = memfd_create("state", MFD_CLOEXEC);
                if (state_fd < 0 || ftruncate(state_fd, 4096) < 0)
                        die("memfd", errno);
                notify("FDSTORE=1\nFDNAME=state", &state_fd, 1);
                if (pipe(p) < 0)
                        die("pipe", errno);
                notify("FDSTORE=1\nFDNAME=tmp", p, 2);
                notify("FDSTOREREMOVE=1\nFDNAME=tmp", NULL, 0);
                close(p[0]);
                close(p[1]);
        }
        counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
        if (counter == MAP_FAILED)
                die("mmap", errno);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);

        char st[128];
        snprintf(st, sizeof(st), "READY=1\nSTATUS=serving generation %u", gen);
        notify(st, NULL, 0);
        printf("ready gen=%u pid=%d restored=%d counter=%llu\n", gen, (int)getpid(), restored,
               (unsigned long long)*counter);
        fflush(stdout);

        for (;;) {
                struct pollfd pfd[66];
                size_t n = 0;

                pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
                pfd[n++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
                for (size_t i = 0; i < n_conns; i++)
                        pfd[n++] = (struct pollfd){ .fd = conns[i], .events = POLLIN };
                if (poll(pfd, n, -1) < 0)
                        continue;
                if (pfd[0].revents) {
                        notify("STOPPING=1", NULL, 0);
                        printf("stopping pid=%d\n", (int)getpid());
                        fflush(stdout);
                        return 0;
                }
                if (pfd[1].revents && n_conns < 64) {
                        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd >= 0)
                                conns[n_conns++] = fd;
                }
                for (size_t i = n - 2; i-- > 0;) {
                        char buf[256], out[128];
                        ssize_t k;
                        int len;

                        if (!pfd[2 + i].revents)
                                continue;
                        k = read(conns[i], buf, sizeof(buf) - 1);
                        if (k <= 0) {
                                close(conns[i]);
                                conns[i] = conns[--n_conns];
                                continue;
                        }
                        len = snprintf(out, sizeof(out), "%llu gen=%u pid=%d\n",
                                       (unsigned long long)++*counter, gen, (int)getpid());
                        if (write(conns[i], out, (size_t)len) != len) {
                                close(conns[i]);
                                conns[i] = conns[--n_conns];
                        }
                }
        }
}
