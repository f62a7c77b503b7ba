/* upd-big: the service bench-update live-updates to time the handover of
 * a large state (and update-manyfds.sh to check it): one memfd of
 * --bytes (filled before it is handed over, untimed) and --fds more fds
 * (socketpairs), all preserved with libliveup.
 *
 *   upd-big --bytes N --fds N
 *
 * The old version writes CLOCK_MONOTONIC into a small memfd "times" when
 * its prepare and its freeze callbacks start. The new version, once
 * liveup_takeover() returned, maps the big memfd and retrieves every fd,
 * then takes the time: it prints (stdout, one line)
 *   "ready gen=G prepare_us=P freeze_us=F fds=N bytes=B check=ok|bad"
 * where P and F run from the old version's prepare / freeze to the new
 * version having everything mapped and received. check reads one byte per
 * 64 MiB of the big memfd after the clock stopped (it must hold the
 * first version's pattern). The first version prints "ready gen=1 ...".
 * Each version preserves everything again for the next update. */
#include <liveup.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct times {
        uint64_t prepare_ns, freeze_ns;
};

static struct times *times_;

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "upd-big: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static int on_prepare(struct liveup *lu, void *ud, char *why, size_t size)
{
        times_->prepare_ns = now_ns();
        return 0;
}

static int on_freeze(struct liveup *lu, void *ud, char *why, size_t size)
{
        times_->freeze_ns = now_ns();
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "bytes", required_argument, NULL, 'b' },
                { "fds", required_argument, NULL, 'f' },
                {},
        };
        static const struct liveup_participant_ops ops = { .prepare = on_prepare,
                                                           .freeze = on_freeze };
        size_t bytes = 1ul << 30, size;
        unsigned n_fds = 1000;
        struct liveup *lu;
        uint64_t done_ns = 0;
        unsigned char *big;
        int *fds, taken, restored, c, r;
        const char *check = "ok";

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (c == 'b')
                        bytes = strtoull(optarg, NULL, 0);
                else if (c == 'f')
                        n_fds = (unsigned)atoi(optarg) & ~1u;
                else
                        return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        fds = calloc(n_fds + 1, sizeof(int));
        if (!fds)
                die("calloc", ENOMEM);
        if ((r = liveup_open(&lu, 0)) < 0 ||
            (r = liveup_participant_add(lu, "big", &ops, NULL)) < 0)
                die("liveup", r);
        taken = liveup_takeover(lu);
        if (taken < 0)
                die("liveup_takeover", taken);

        /* Timed in a new version: from here to done_ns, everything
         * mapped and received (the clock started in the old version). */
        r = liveup_memfd_map(lu, "big", bytes, 1, (void **)&big, &size, &restored);
        if (r < 0)
                die("liveup_memfd_map big", r);
        if (taken == LIVEUP_TAKEN) {
                for (unsigned i = 0; i < n_fds; i++) {
                        char name[16];
                        snprintf(name, sizeof(name), "fd%u", i);
                        fds[i] = liveup_retrieve_fd(lu, name, NULL);
                        if (fds[i] < 0)
                                die(name, fds[i]);
                }
                done_ns = now_ns();
        } else {
                for (unsigned i = 0; i < n_fds; i += 2)
                        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &fds[i]) < 0)
                                die("socketpair", errno);
                memset(big, 0xa5, size); /* untimed: the state to hand over */
        }
        r = liveup_memfd_map(lu, "times", sizeof(struct times), 1, (void **)&times_, NULL, NULL);
        if (r < 0)
                die("liveup_memfd_map times", r);
        for (size_t off = 0; off < size; off += 64ul << 20)
                if (big[off] != 0xa5)
                        check = "bad";
        for (unsigned i = 0; i < n_fds; i++) {
                char name[16];
                snprintf(name, sizeof(name), "fd%u", i);
                if ((r = liveup_preserve_fd(lu, name, fds[i], 1)) < 0)
                        die("liveup_preserve_fd", r);
        }
        if ((r = liveup_ready(lu)) < 0)
                die("liveup_ready", r);
        if (taken == LIVEUP_TAKEN)
                printf("ready gen=%u prepare_us=%.1f freeze_us=%.1f fds=%u bytes=%zu check=%s\n",
                       liveup_generation(lu), (double)(done_ns - times_->prepare_ns) / 1e3,
                       (double)(done_ns - times_->freeze_ns) / 1e3, n_fds, size, check);
        else
                printf("ready gen=%u fds=%u bytes=%zu\n", liveup_generation(lu), n_fds, size);

        for (;;) {
                struct pollfd p = { .fd = liveup_get_fd(lu), .events = POLLIN };
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        die("poll", errno);
                if (liveup_dispatch(lu) == LIVEUP_EXIT)
                        break;
        }
        liveup_close(lu);
        free(fds);
        return 0;
}
