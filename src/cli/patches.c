/* liveup patches [PID|--all] [--json]
 *
 * What is applied where, read from each process's own registry (the
 * process is the truth). Reading needs no ptrace attach and never stops
 * the process. Without arguments, the same as --all. */
#include "cli/cli.h"

#include "base/log.h"
#include "base/util.h"
#include "livepatch/registry.h"

#include <dirent.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <string.h>
#include <time.h>

void verb_patches_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup patches [PID | --all] [--json]\n"
                "\n"
                "List the live patches applied to a process, or to every process\n"
                "(the default), in the order they were applied, with the functions\n"
                "each one replaces. Reads the registry inside each process; nothing\n"
                "is stopped.\n"
                "\n"
                "Options:\n"
                "  --all       every process (default)\n"
                "  --json      print one JSON document on stdout\n"
                "  -h, --help  show this help\n");
}

static void print_text(pid_t pid, const struct lp_registry *reg)
{
        printf("pid %d: %u patch%s\n", pid, reg->hdr.n_patches,
               reg->hdr.n_patches == 1 ? "" : "es");
        for (uint32_t i = 0; i < reg->hdr.n_patches; i++) {
                const struct lp_reg_patch *pt = &reg->patches[i];
                char when[64] = "?";
                time_t t = (time_t)pt->applied_at;
                struct tm tm;

                if (localtime_r(&t, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                printf("  %s  (%s) on %s, applied %s%s%s\n", pt->id, pt->name, pt->target, when,
                       pt->state ? ", " : "",
                       pt->state ? lp_registry_state_name(pt->state) : "");
                for (uint32_t k = 0; k < pt->n_funcs; k++) {
                        const struct lp_reg_func *rf = &reg->funcs[pt->first_func + k];
                        printf("    %s  0x%" PRIx64 " -> 0x%" PRIx64 "\n", rf->name, rf->addr,
                               rf->new_addr);
                }
        }
        for (uint32_t a = 0; a < reg->hdr.n_arenas; a++) {
                const struct lp_reg_arena *ar = &reg->arenas[a];
                printf("  arena 0x%" PRIx64 ": code %" PRIu64 " of %" PRIu64 " KiB free, data "
                       "%" PRIu64 " of %" PRIu64 " KiB free\n",
                       ar->base, lp_registry_arena_free(reg, a, false) / 1024,
                       ar->text_size / 1024, lp_registry_arena_free(reg, a, true) / 1024,
                       ar->data_size / 1024);
        }
}

static struct json_object *json_hex(uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
        return json_object_new_string(buf);
}

static struct json_object *to_json(pid_t pid, const struct lp_registry *reg)
{
        struct json_object *jp = json_object_new_object();
        struct json_object *arr = json_object_new_array();
        char buf[32];

        json_object_object_add(jp, "pid", json_object_new_int(pid));
        for (uint32_t i = 0; i < reg->hdr.n_patches; i++) {
                const struct lp_reg_patch *pt = &reg->patches[i];
                struct json_object *jo = json_object_new_object();
                struct json_object *fa = json_object_new_array();
                char hex[2 * LP_BUILD_ID_MAX + 1] = "";

                for (uint32_t b = 0; b < pt->build_id_len; b++)
                        snprintf(hex + 2 * b, 3, "%02x", pt->build_id[b]);
                json_object_object_add(jo, "id", json_object_new_string(pt->id));
                json_object_object_add(jo, "name", json_object_new_string(pt->name));
                json_object_object_add(jo, "target", json_object_new_string(pt->target));
                json_object_object_add(jo, "build_id", json_object_new_string(hex));
                json_object_object_add(jo, "applied_at", json_object_new_uint64(pt->applied_at));
                json_object_object_add(jo, "state",
                                       json_object_new_string(pt->state == LP_REG_STATE_APPLIED
                                                                      ? "applied"
                                                              : pt->state == LP_REG_STATE_APPLYING
                                                                      ? "applying"
                                                                      : "reverting"));
                snprintf(buf, sizeof(buf), "0x%" PRIx64, pt->base);
                json_object_object_add(jo, "image", json_object_new_string(buf));
                json_object_object_add(jo, "image_size", json_object_new_uint64(pt->size));
                if (pt->data_base)
                        json_object_object_add(jo, "data", json_hex(pt->data_base));
                json_object_object_add(jo, "arena",
                                       pt->arena ? json_hex(reg->arenas[pt->arena - 1].base) : NULL);
                for (uint32_t k = 0; k < pt->n_funcs; k++) {
                        const struct lp_reg_func *rf = &reg->funcs[pt->first_func + k];
                        struct json_object *jf = json_object_new_object();
                        json_object_object_add(jf, "name", json_object_new_string(rf->name));
                        snprintf(buf, sizeof(buf), "0x%" PRIx64, rf->addr);
                        json_object_object_add(jf, "address", json_object_new_string(buf));
                        snprintf(buf, sizeof(buf), "0x%" PRIx64, rf->new_addr);
                        json_object_object_add(jf, "replacement", json_object_new_string(buf));
                        json_object_array_add(fa, jf);
                }
                json_object_object_add(jo, "functions", fa);
                json_object_array_add(arr, jo);
        }
        json_object_object_add(jp, "patches", arr);
        arr = json_object_new_array();
        for (uint32_t a = 0; a < reg->hdr.n_arenas; a++) {
                const struct lp_reg_arena *ar = &reg->arenas[a];
                struct json_object *ja = json_object_new_object();

                json_object_object_add(ja, "code", json_hex(ar->base));
                json_object_object_add(ja, "code_size", json_object_new_uint64(ar->text_size));
                json_object_object_add(ja, "code_free",
                                       json_object_new_uint64(
                                               lp_registry_arena_free(reg, a, false)));
                json_object_object_add(ja, "data", json_hex(ar->base + ar->text_size));
                json_object_object_add(ja, "data_size", json_object_new_uint64(ar->data_size));
                json_object_object_add(ja, "data_free",
                                       json_object_new_uint64(
                                               lp_registry_arena_free(reg, a, true)));
                json_object_array_add(arr, ja);
        }
        json_object_object_add(jp, "arenas", arr);
        return jp;
}

int verb_patches(int argc, char **argv)
{
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool json = false;
        _cleanup_free_ struct lp_registry *reg = calloc(1, sizeof(*reg));
        struct json_object *arr = NULL;
        int c, r = EXIT_OK;
        pid_t one = 0;

        if (!reg)
                return EXIT_REFUSED;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'a':
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        verb_patches_usage(stdout);
                        return EXIT_OK;
                default:
                        return cli_bad_option("patches", c, argv);
                }
        }
        if (argc - optind > 1) {
                log_error("patches: expected at most one PID (try 'liveup patches --help')");
                return EXIT_USAGE;
        }
        if (argc - optind == 1 && parse_pid(argv[optind], &one) < 0) {
                log_error("invalid pid '%s': not a positive number", argv[optind]);
                return EXIT_USAGE;
        }
        if (json)
                arr = json_object_new_array();

        if (one) {
                struct errbuf e = {};
                int q = lp_registry_read(one, reg, &e);
                if (q < 0) {
                        if (q == -ESRCH || q == -ENOENT)
                                log_error("pid %d: no such process", one);
                        else
                                log_error("%s", e.msg[0] ? e.msg : cli_strerror(q));
                        if (arr)
                                json_object_put(arr);
                        return EXIT_REFUSED;
                }
                if (arr)
                        json_object_array_add(arr, to_json(one, reg));
                else if (reg->hdr.n_patches)
                        print_text(one, reg);
                else
                        printf("pid %d: no patches\n", one);
        } else {
                _cleanup_closedir_ DIR *d = opendir("/proc");
                struct dirent *de;
                size_t n = 0;

                while (d && (de = readdir(d))) {
                        struct errbuf e = {};
                        pid_t pid;

                        if (parse_pid(de->d_name, &pid) < 0)
                                continue;
                        if (lp_registry_read(pid, reg, &e) < 0 || !reg->addr ||
                            reg->hdr.n_patches == 0)
                                continue;
                        n++;
                        if (arr)
                                json_object_array_add(arr, to_json(pid, reg));
                        else
                                print_text(pid, reg);
                }
                if (!arr && n == 0)
                        printf("no process has live patches\n");
        }
        if (arr) {
                struct json_object *top = json_object_new_object();
                json_object_object_add(top, "processes", arr);
                printf("%s\n", json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY));
                json_object_put(top);
        }
        return r;
}
