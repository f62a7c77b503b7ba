/* bench-build: what `liveup build --diff` costs on a real project, next
 * to that project's own full build measured in the same run.
 *
 *   bench-build [--quick] [--json] [--reps N] [--liveup PATH]
 *               [--cache DIR] [--fetch PATH]
 *
 * The project: Lua 5.4.4 as Debian bookworm ships it (the lua5.4 source
 * package, upstream tree plus Debian's CVE patches), fetched once into
 * the cache folder by scripts/fetch-lua.sh; built by its own `make
 * linux` into one PIE executable, src/lua. The fix: the utf8.codes bug
 * of tests/realworld/lua-utf8codes.diff (iter_aux and iter_codes in
 * src/lutf8lib.c change).
 *
 * - full build: a fresh copy of the pristine tree (copy not timed), then
 *   `make linux` in it, timed from fork to exit. The first one's src/lua
 *   is the target of every liveup build below.
 * - liveup build --diff: `liveup build --diff FIX --src TREE --target
 *   BIN -o OUT.lpo --json -- make linux`, timed from fork to exit (its
 *   own copies of the tree, both builds through its compiler wrapper,
 *   the comparison of the objects, the check of the unpatched build
 *   against BIN, the .lpo). Its JSON gives the wall time of the
 *   unpatched and of the patched build (incremental or not); the rest
 *   is liveup's own work.
 * N repetitions of each (default 3, --quick 1), interleaved (full,
 * liveup, full, liveup...) so that a change in the machine's load
 * touches both; medians, with min and max. The goal, printed beside the
 * figures: a live patch from a source diff within twice the time of one
 * full build of the project. The bench reports what it measures and
 * never fails on a goal; it exits 77 (skipped) when the source cannot be
 * fetched, 1 when no liveup build succeeded. */
#include "common.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LIVEUP_PATH
#define LIVEUP_PATH "liveup"
#endif
#ifndef FETCH_LUA
#define FETCH_LUA "scripts/fetch-lua.sh"
#endif
#ifndef REALWORLD_DIR
#define REALWORLD_DIR "tests/realworld"
#endif
#ifndef CACHE_DIR
#define CACHE_DIR "."
#endif

#define GOAL_RATIO 2.0
#define MAX_REPS 100

struct options {
        unsigned reps;
        bool json;
        const char *liveup, *cache, *fetch;
};

/* One liveup build. */
struct lu_run {
        bool ok;
        double wall, unpatched, patched, total;
        bool incremental;
};

struct result {
        char lua[256]; /* lua5.4-src.info */
        double full[MAX_REPS]; /* make linux, s */
        unsigned n_full;
        struct lu_run lu[MAX_REPS];
        unsigned n_lu, lu_ok;
        char functions[256]; /* of the last successful build */
        long checked;
        char error[512]; /* the first failure, one line */
};

static char workdir[512];

/* Run argv in cwd (NULL: here), stdout to out_path and stderr to
 * err_path (NULL: /dev/null), with TMPDIR set to the work folder. The
 * exit status (128+signal when killed), or -errno; the wall time from
 * fork to exit in *ret_s. */
static int run(char *const argv[], const char *cwd, const char *out_path, const char *err_path,
               double *ret_s)
{
        uint64_t t0 = now_ns();
        int status;
        pid_t pid;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int o = open(out_path ? out_path : "/dev/null",
                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                int e = open(err_path ? err_path : "/dev/null",
                             O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (o < 0 || e < 0 || dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0)
                        _exit(126);
                if (cwd && chdir(cwd) < 0)
                        _exit(126);
                setenv("TMPDIR", workdir, 1);
                execvp(argv[0], argv);
                fprintf(stderr, "bench-build: cannot run %s: %m\n", argv[0]);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (ret_s)
                *ret_s = (double)(now_ns() - t0) / 1e9;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int copy_tree(const char *from, const char *to)
{
        char *argv[] = { "cp", "-R", (char *)from, (char *)to, NULL };

        return run(argv, NULL, NULL, NULL, NULL) == 0 ? 0 : -EIO;
}

static void remove_tree(const char *path)
{
        char *argv[] = { "rm", "-rf", (char *)path, NULL };

        (void)run(argv, NULL, NULL, NULL, NULL);
}

static void remove_workdir(void)
{
        if (workdir[0])
                remove_tree(workdir);
}

/* The last non-empty line of a file, for a one-line reason. */
static void last_line(const char *path, char *buf, size_t size)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *end, *start;

        buf[0] = 0;
        if (read_file_str(path, &text, &len) < 0)
                return;
        end = text + len;
        while (end > text && (end[-1] == '\n' || end[-1] == ' '))
                end--;
        *end = 0;
        start = strrchr(text, '\n');
        snprintf(buf, size, "%s", start ? start + 1 : text);
}

/* Keep the first failure. */
_printf_(2, 3) static void set_error(struct result *res, const char *fmt, ...)
{
        va_list ap;

        if (res->error[0])
                return;
        va_start(ap, fmt);
        vsnprintf(res->error, sizeof(res->error), fmt, ap);
        va_end(ap);
}

/* One full build: copy the tree to dir, `make linux` there. */
static int full_build(const char *src, const char *dir, struct result *res)
{
        char log[600], why[256];
        char *argv[] = { "make", "linux", NULL };
        double s;
        int st;

        snprintf(log, sizeof(log), "%s.log", dir);
        if (copy_tree(src, dir) < 0) {
                set_error(res, "cannot copy %s to %s", src, dir);
                return -EIO;
        }
        st = run(argv, dir, log, log, &s);
        if (st != 0) {
                last_line(log, why, sizeof(why));
                set_error(res, "make linux failed in %s: %s", dir, why);
                return -EIO;
        }
        res->full[res->n_full++] = s;
        fprintf(stderr, "bench-build: full build %u: %.2f s\n", res->n_full, s);
        return 0;
}

static double json_num(struct json_object *o, const char *key)
{
        struct json_object *v;

        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : NAN;
}

/* One `liveup build --diff`. */
static void liveup_build(const struct options *o, const char *src, const char *target,
                         unsigned i, struct result *res)
{
        char diff[600], out[600], err[600], lpo[600], why[512];
        char *argv[] = { (char *)o->liveup, "build", "--diff", diff, "--src", (char *)src,
                         "--target", (char *)target, "-o", lpo, "--json", "--", "make",
                         "linux", NULL };
        struct lu_run *r = &res->lu[res->n_lu++];
        struct json_object *doc, *v;
        double s;
        int st;

        snprintf(diff, sizeof(diff), "%s/lua-utf8codes.diff", REALWORLD_DIR);
        snprintf(out, sizeof(out), "%s/liveup-%u.json", workdir, i);
        snprintf(err, sizeof(err), "%s/liveup-%u.err", workdir, i);
        snprintf(lpo, sizeof(lpo), "%s/fix-%u.lpo", workdir, i);
        st = run(argv, NULL, out, err, &s);
        if (st != 0) {
                last_line(err, why, sizeof(why));
                set_error(res, "liveup build --diff failed (status %d): %s", st, why);
                fprintf(stderr, "bench-build: liveup build %u failed (status %d): %s\n",
                        res->n_lu, st, why);
                return;
        }
        doc = json_object_from_file(out);
        if (!doc) {
                set_error(res, "liveup build --diff printed no JSON document (%s)", out);
                return;
        }
        r->ok = true;
        r->wall = s;
        if (json_object_object_get_ex(doc, "seconds", &v)) {
                r->unpatched = json_num(v, "unpatched");
                r->patched = json_num(v, "patched");
                r->total = json_num(v, "total");
        } else {
                r->unpatched = r->patched = r->total = NAN;
        }
        r->incremental =
                json_object_object_get_ex(doc, "incremental", &v) && json_object_get_boolean(v);
        res->checked = json_object_object_get_ex(doc, "checked_functions", &v)
                               ? (long)json_object_get_int64(v)
                               : -1;
        res->functions[0] = 0;
        if (json_object_object_get_ex(doc, "functions", &v) &&
            json_object_is_type(v, json_type_array)) {
                for (size_t k = 0; k < json_object_array_length(v); k++) {
                        struct json_object *f = json_object_array_get_idx(v, k), *name;
                        size_t len = strlen(res->functions);
                        if (json_object_object_get_ex(f, "name", &name))
                                snprintf(res->functions + len, sizeof(res->functions) - len,
                                         "%s%s", k ? ", " : "", json_object_get_string(name));
                }
        }
        json_object_put(doc);
        res->lu_ok++;
        unlink(lpo);
        fprintf(stderr,
                "bench-build: liveup build %u: %.2f s (builds %.2f s + %.2f s, %s)\n",
                res->n_lu, s, r->unpatched, r->patched, r->incremental ? "incremental" : "full");
}

/* ---- statistics and output ------------------------------------------------ */

struct fig {
        double median, min, max;
        unsigned n;
};

static struct fig fig_of(const double *v, unsigned n)
{
        struct fig f = { NAN, NAN, NAN, 0 };
        double s[MAX_REPS];
        unsigned k = 0;

        for (unsigned i = 0; i < n; i++)
                if (!isnan(v[i]))
                        s[k++] = v[i];
        if (k == 0)
                return f;
        qsort(s, k, sizeof(*s), cmp_double);
        f.median = k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
        f.min = s[0];
        f.max = s[k - 1];
        f.n = k;
        return f;
}

/* The liveup figures, over the successful builds. */
struct lu_figs {
        struct fig wall, unpatched, patched, rest;
        unsigned incremental;
};

static struct lu_figs lu_figs_of(const struct result *res)
{
        double w[MAX_REPS], u[MAX_REPS], p[MAX_REPS], r[MAX_REPS];
        struct lu_figs f = {};
        unsigned k = 0;

        for (unsigned i = 0; i < res->n_lu; i++) {
                const struct lu_run *l = &res->lu[i];
                if (!l->ok)
                        continue;
                w[k] = l->wall;
                u[k] = l->unpatched;
                p[k] = l->patched;
                r[k] = l->total - l->unpatched - l->patched;
                f.incremental += l->incremental;
                k++;
        }
        f.wall = fig_of(w, k);
        f.unpatched = fig_of(u, k);
        f.patched = fig_of(p, k);
        f.rest = fig_of(r, k);
        return f;
}

static void row(const char *name, const struct fig *f)
{
        if (f->n == 0)
                printf("| %s | - | - | - |\n", name);
        else
                printf("| %s | %.2f | %.2f | %.2f |\n", name, f->median, f->min, f->max);
}

static void print_table(const struct options *o, const struct result *res)
{
        struct fig full = fig_of(res->full, res->n_full);
        struct lu_figs lu = lu_figs_of(res);
        double ratio = lu.wall.median / full.median;
        char patched[64];

        printf("%s\n", res->lua[0] ? res->lua : "Lua 5.4.4 (Debian bookworm lua5.4)");
        printf("Fix: tests/realworld/lua-utf8codes.diff; build command: make linux; "
               "%u repetition%s each, interleaved; seconds\n\n",
               o->reps, o->reps == 1 ? "" : "s");
        printf("| | median | min | max |\n|---|---:|---:|---:|\n");
        row("one full build (`make linux` in a fresh copy)", &full);
        row("`liveup build --diff`, end to end", &lu.wall);
        row("  its unpatched build (through the wrapper)", &lu.unpatched);
        snprintf(patched, sizeof(patched), "  its patched build (%s)",
                 lu.wall.n == 0             ? "-"
                 : lu.incremental == lu.wall.n ? "incremental"
                 : lu.incremental == 0       ? "full"
                                             : "incremental in part");
        row(patched, &lu.patched);
        row("  the rest: copies, comparison, check against the target, .lpo", &lu.rest);
        printf("\nliveup builds: %u of %u succeeded", res->lu_ok, res->n_lu);
        if (res->lu_ok)
                printf("; patch: %s; %ld functions of the unpatched build checked against "
                       "the target",
                       res->functions[0] ? res->functions : "(none)", res->checked);
        printf("\n");
        if (res->error[0])
                printf("error: %s\n", res->error);
        printf("\nGoal (reported, not enforced):\n");
        if (lu.wall.n && full.n)
                printf("  liveup build --diff within %.0fx one full build: %.2f / %.2f s = "
                       "%.2fx (%s)\n",
                       GOAL_RATIO, lu.wall.median, full.median, ratio,
                       ratio < GOAL_RATIO ? "met" : "NOT met");
        else
                printf("  liveup build --diff within %.0fx one full build: not measured\n",
                       GOAL_RATIO);
}

static void json_fig(const char *name, const struct fig *f, bool comma)
{
        if (f->n == 0)
                printf("\"%s\":null", name);
        else
                printf("\"%s\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f,\"n\":%u}", name,
                       f->median, f->min, f->max, f->n);
        printf("%s", comma ? "," : "");
}

static void print_json(const struct options *o, const struct result *res)
{
        struct fig full = fig_of(res->full, res->n_full);
        struct lu_figs lu = lu_figs_of(res);
        bool measured = lu.wall.n && full.n;
        double ratio = lu.wall.median / full.median;

        printf("{\"project\":");
        json_string(res->lua);
        printf(",\"build_command\":\"make linux\",\"reps\":%u,\"seconds\":{", o->reps);
        json_fig("full_build", &full, true);
        json_fig("liveup_build", &lu.wall, true);
        json_fig("liveup_unpatched_build", &lu.unpatched, true);
        json_fig("liveup_patched_build", &lu.patched, true);
        json_fig("liveup_rest", &lu.rest, false);
        printf("},\"incremental\":%u,\"liveup_ok\":%u,\"liveup_runs\":%u,\"functions\":[",
               lu.incremental, res->lu_ok, res->n_lu);
        for (const char *p = res->functions; *p;) {
                size_t n = strcspn(p, ",");
                char name[128];

                snprintf(name, sizeof(name), "%.*s", (int)MIN(n, sizeof(name) - 1), p);
                if (p != res->functions)
                        printf(",");
                json_string(name);
                p += n;
                p += strspn(p, ", ");
        }
        printf("],\"checked_functions\":%ld,", res->checked);
        if (measured)
                printf("\"ratio\":%.3f,", ratio);
        else
                printf("\"ratio\":null,");
        printf("\"goal_ratio\":%.1f,\"goal_met\":%s,\"error\":", GOAL_RATIO,
               measured && ratio < GOAL_RATIO ? "true" : "false");
        json_error(res->error);
        printf("}\n");
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: bench-build [--quick] [--json] [--reps N] [--liveup PATH]\n"
                "                   [--cache DIR] [--fetch PATH]\n"
                "  --reps N      repetitions of each build (default 3, 1..%d)\n"
                "  --quick       one repetition\n"
                "  --json        one JSON document on stdout instead of the table\n"
                "  --liveup PATH the liveup executable (default: the one built here)\n"
                "  --cache DIR   where the Lua source is fetched to and kept\n"
                "                (default %s)\n"
                "  --fetch PATH  scripts/fetch-lua.sh\n",
                MAX_REPS, CACHE_DIR);
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "quick", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { "reps", required_argument, NULL, 'r' },
                { "liveup", required_argument, NULL, 'l' },
                { "cache", required_argument, NULL, 'c' },
                { "fetch", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct options o = { .reps = 3, .cache = CACHE_DIR, .fetch = FETCH_LUA };
        char src[600], tree[600], info[700], why[512], target[700], dir[600], fetch_err[600];
        _cleanup_free_ struct result *res = calloc(1, sizeof(*res));
        _cleanup_free_ char *text = NULL;
        const char *env;
        size_t len;
        pid_t reps;
        int opt, st;

        if (!res)
                return 1;
        env = getenv("LIVEUP");
        o.liveup = env && *env ? env : LIVEUP_PATH;
        while ((opt = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (opt) {
                case 'q':
                        o.reps = 1;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'r':
                        if (parse_pid(optarg, &reps) < 0 || reps > MAX_REPS) {
                                fprintf(stderr, "bench-build: bad --reps '%s' (1..%d)\n", optarg,
                                        MAX_REPS);
                                return 2;
                        }
                        o.reps = (unsigned)reps;
                        break;
                case 'l':
                        o.liveup = optarg;
                        break;
                case 'c':
                        o.cache = optarg;
                        break;
                case 'f':
                        o.fetch = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        /* The source, fetched once (the tests share the cache). */
        env = getenv("TMPDIR");
        snprintf(workdir, sizeof(workdir), "%s/bench-build.XXXXXX", env && *env ? env : "/tmp");
        if (!mkdtemp(workdir)) {
                fprintf(stderr, "bench-build: cannot make %s: %m\n", workdir);
                return 1;
        }
        atexit(remove_workdir);
        snprintf(fetch_err, sizeof(fetch_err), "%s/fetch.err", workdir);
        {
                char *fargv[] = { (char *)o.fetch, (char *)o.cache, NULL };
                st = run(fargv, NULL, NULL, fetch_err, NULL);
        }
        if (st != 0) {
                last_line(fetch_err, why, sizeof(why));
                if (st == 77) {
                        fprintf(stderr,
                                "bench-build: skipped: cannot fetch the Lua source into %s: %s\n",
                                o.cache, why);
                        return 77;
                }
                fprintf(stderr, "bench-build: %s %s failed (status %d): %s\n", o.fetch, o.cache,
                        st, why);
                return 1;
        }
        snprintf(src, sizeof(src), "%s/lua5.4-src", o.cache);
        snprintf(info, sizeof(info), "%s/lua5.4-src.info", o.cache);
        if (read_file_str(info, &text, &len) == 0) {
                text[strcspn(text, "\n")] = 0;
                snprintf(res->lua, sizeof(res->lua), "%s", text);
        }
        /* liveup reads this copy (and never writes to it). */
        snprintf(tree, sizeof(tree), "%s/src", workdir);
        if (copy_tree(src, tree) < 0) {
                fprintf(stderr, "bench-build: cannot copy %s to %s\n", src, tree);
                return 1;
        }

        /* full, liveup, full, liveup, ...: the first full build is the
         * target. */
        snprintf(dir, sizeof(dir), "%s/full-0", workdir);
        if (full_build(src, dir, res) < 0) {
                fprintf(stderr, "bench-build: %s\n", res->error);
                return 1;
        }
        snprintf(target, sizeof(target), "%s/src/lua", dir);
        for (unsigned i = 0; i < o.reps; i++) {
                liveup_build(&o, tree, target, i, res);
                if (i + 1 < o.reps) {
                        snprintf(dir, sizeof(dir), "%s/full-%u", workdir, i + 1);
                        if (full_build(src, dir, res) < 0)
                                break;
                        remove_tree(dir);
                }
        }

        if (o.json)
                print_json(&o, res);
        else
                print_table(&o, res);
        return res->lu_ok ? 0 : 1;
}
