/* Client of the test services (upd-svc, upd-sdsvc): connect to the Unix
 * socket PATH and send each REQUEST (one line), printing each one-line
 * answer. With -i, requests come from stdin, one per line, over the one
 * connection (kept across an update: it must not be dropped); the client
 * prints "connected" first. Exit 1 when a request gets no answer within
 * 5 s or the connection fails.
 *
 *   upd-client PATH REQUEST...
 *   upd-client -i PATH */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int ask(int fd, const char *req)
{
        char buf[512];
        size_t got = 0;
        struct pollfd pf = { .fd = fd, .events = POLLIN };

        if (dprintf(fd, "%s\n", req) < 0)
                return -1;
        while (got == 0 || buf[got - 1] != '\n') {
                ssize_t n;
                if (poll(&pf, 1, 5000) <= 0)
                        return -1;
                n = read(fd, buf + got, sizeof(buf) - 1 - got);
                if (n <= 0)
                        return -1;
                got += (size_t)n;
                if (got >= sizeof(buf) - 1)
                        break;
        }
        buf[got] = 0;
        fputs(buf, stdout);
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        bool interactive = argc > 1 && strcmp(argv[1], "-i") == 0;
        int first = interactive ? 2 : 1;
        int fd;

        if (argc <= first) {
                fprintf(stderr, "usage: upd-client PATH REQUEST... | upd-client -i PATH\n");
                return 2;
        }
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[first]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "upd-client: connect %s: %s\n", argv[first], strerror(errno));
                return 1;
        }
        if (interactive) {
                char line[256];
                printf("connected\n");
                fflush(stdout);
                while (fgets(line, sizeof(line), stdin)) {
                        line[strcspn(line, "\n")] = 0;
                        if (ask(fd, line) < 0) {
                                printf("lost\n");
                                fflush(stdout);
                                return 1;
                        }
                }
                return 0;
        }
        for (int i = first + 1; i < argc; i++)
                if (ask(fd, argv[i]) < 0) {
                        fprintf(stderr, "upd-client: no answer to '%s'\n", argv[i]);
                        return 1;
                }
        return 0;
}
