/* `liveup status [NAME] [--json]`: ask the keeper of NAME (or every
 * keeper that answers in the runtime folder) for its STATUS_REPLY and
 * print it: state, old/new pid, generation, command, uptime, updates and
 * the last one's result, the service's STATUS= text, and the preserved
 * items (name, kind, size, schema). Items are those the keeper holds: the
 * systemd fd store, and during an update what the old version preserved
 * (a libliveup service keeps its own until an update asks). With --json
 * stdout carries one JSON document: the service's object for NAME, else
 * {"services": [...]}. */
#include "cli/cli.h"

#include "base/log.h"
#include "update/client.h"
#include "update/msgio.h"
#include "update/state.h"

#include <json-c/json.h>
#include <string.h>

void verb_status_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup status [NAME] [--json]\n"
                "\n"
                "Show the live-update state of the service NAME, or of every service whose\n"
                "keeper answers: state, PIDs of the old and new version, generation,\n"
                "command, updates done and the last one's result, preserved items.\n"
                "\n"
                "Options:\n"
                "      --json  one JSON document on stdout\n"
                "  -h, --help  show this help\n"
                "\n"
                "Exit status: 0 success; 1 the service is unknown or not yours; 2 bad usage.\n"
                "See liveup-status(1).\n");
}

/* Seconds with millisecond precision ("2.064", not "2.0640000000000001"). */
static struct json_object *json_seconds(uint64_t ms)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%.3f", (double)ms / 1000.0);
        return json_object_new_double_s((double)ms / 1000.0, buf);
}

static const char *protocol_name(uint32_t p)
{
        return p == UPD_PROTOCOL_LIB ? "libliveup" : p == UPD_PROTOCOL_NOTIFY ? "notify" : "none";
}

/* Ask one keeper. Quiet: a stale socket in a listing is skipped. */
static int query(const char *name, bool quiet, struct upd_msg *ret)
{
        _cleanup_close_ int fd = -EBADF;
        struct errbuf err = {};
        int r;

        r = upd_client_connect(name, &fd, &err);
        if (r >= 0) {
                r = upd_msg_send_empty(fd, UPD_MSG_STATUS);
                if (r == -EPIPE || r == -ECONNRESET)
                        r = 0; /* a refusal may be queued for us: read it */
        }
        if (r >= 0)
                r = upd_client_recv(fd, 10000, ret, &err);
        if (r >= 0 && ret->type == UPD_MSG_RESULT) {
                if (!quiet)
                        log_error("status of '%s': %s", name,
                                  ret->message[0] ? ret->message : strerror((int)ret->error));
                upd_msg_done(ret);
                return -EPERM;
        }
        if (r >= 0 && ret->type != UPD_MSG_STATUS_REPLY) {
                upd_msg_done(ret);
                r = -EBADMSG;
        }
        if (r < 0 && !quiet)
                log_error("%s", err.msg[0] ? err.msg : cli_strerror(r));
        return r;
}

static json_object *to_json(const struct upd_msg *m)
{
        json_object *o = json_object_new_object();
        json_object *cmd = json_object_new_array();
        json_object *items = json_object_new_array();

        json_object_object_add(o, "name", json_object_new_string(m->name));
        json_object_object_add(o, "state", json_object_new_string(upd_state_name(m->state)));
        json_object_object_add(o, "old_pid", m->old_pid ? json_object_new_int((int)m->old_pid)
                                                        : NULL);
        json_object_object_add(o, "new_pid", m->new_pid ? json_object_new_int((int)m->new_pid)
                                                        : NULL);
        json_object_object_add(o, "generation", json_object_new_int((int)m->generation));
        json_object_object_add(o, "keeper_pid", json_object_new_int((int)m->keeper_pid));
        json_object_object_add(o, "protocol", json_object_new_string(protocol_name(m->protocol)));
        for (size_t i = 0; i < m->n_argv; i++)
                json_object_array_add(cmd, json_object_new_string(m->argv[i]));
        json_object_object_add(o, "command", cmd);
        json_object_object_add(o, "uptime_s", json_seconds(m->uptime_ms));
        json_object_object_add(o, "updates", json_object_new_int((int)m->updates));
        if (upd_msg_has(m, UPD_TAG_LAST_MESSAGE)) {
                json_object *l = json_object_new_object();
                json_object_object_add(l, "ok", json_object_new_boolean(m->last_error == 0));
                json_object_object_add(l, "message", json_object_new_string(m->last_message));
                json_object_object_add(l, "duration_s",
                                       json_seconds(m->last_duration_ms));
                json_object_object_add(o, "last_update", l);
        } else
                json_object_object_add(o, "last_update", NULL);
        json_object_object_add(o, "status", upd_msg_has(m, UPD_TAG_SVC_STATUS)
                                                    ? json_object_new_string(m->svc_status)
                                                    : NULL);
        for (size_t i = 0; i < m->n_items; i++) {
                json_object *it = json_object_new_object();
                json_object_object_add(it, "name", json_object_new_string(m->items[i].name));
                json_object_object_add(it, "kind",
                                       json_object_new_string(upd_item_kind_name(m->items[i].kind)));
                json_object_object_add(it, "schema", json_object_new_int64(m->items[i].schema));
                if (m->items[i].kind == UPD_ITEM_MEMFD)
                        json_object_object_add(it, "size",
                                               json_object_new_int64((int64_t)m->items[i].size));
                json_object_array_add(items, it);
        }
        json_object_object_add(o, "items", items);
        return o;
}

static void print_text(const struct upd_msg *m)
{
        printf("%s: %s\n", m->name, upd_state_name(m->state));
        printf("  pid %u (generation %u)", m->old_pid, m->generation);
        if (m->new_pid)
                printf(", new version pid %u", m->new_pid);
        printf("; keeper pid %u; protocol %s\n", m->keeper_pid, protocol_name(m->protocol));
        printf("  command:");
        for (size_t i = 0; i < m->n_argv; i++)
                printf(" %s", m->argv[i]);
        printf("\n  up %.1f s, %u updates", m->uptime_ms / 1000.0, m->updates);
        if (upd_msg_has(m, UPD_TAG_LAST_MESSAGE))
                printf("; last update %s (%.3f s)", m->last_message,
                       m->last_duration_ms / 1000.0);
        printf("\n");
        if (upd_msg_has(m, UPD_TAG_SVC_STATUS))
                printf("  status: %s\n", m->svc_status);
        if (m->n_items)
                printf("  items:\n");
        for (size_t i = 0; i < m->n_items; i++) {
                printf("    %-20s %-10s schema %u", m->items[i].name,
                       upd_item_kind_name(m->items[i].kind), m->items[i].schema);
                if (m->items[i].kind == UPD_ITEM_MEMFD)
                        printf(", %llu bytes", (unsigned long long)m->items[i].size);
                printf("\n");
        }
}

int verb_status(int argc, char **argv)
{
        enum { OPT_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, OPT_JSON },
                {},
        };
        bool json = false;
        char **names = NULL;
        size_t n = 0;
        struct upd_msg m;
        json_object *all;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        verb_status_usage(stdout);
                        return EXIT_OK;
                case OPT_JSON:
                        json = true;
                        break;
                default:
                        return cli_bad_option("status", c, argv);
                }
        }
        if (argc - optind > 1) {
                log_error("status: unexpected argument '%s' (try 'liveup status --help')",
                          argv[optind + 1]);
                return EXIT_USAGE;
        }
        if (optind < argc) {
                if (query(argv[optind], false, &m) < 0)
                        return EXIT_REFUSED;
                if (json) {
                        json_object *o = to_json(&m);
                        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
                        json_object_put(o);
                } else
                        print_text(&m);
                upd_msg_done(&m);
                return EXIT_OK;
        }

        r = upd_client_list(&names, &n);
        if (r < 0) {
                log_error("status: cannot list the runtime folder: %s", cli_strerror(r));
                return EXIT_REFUSED;
        }
        all = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                if (query(names[i], true, &m) >= 0) {
                        if (json)
                                json_object_array_add(all, to_json(&m));
                        else
                                print_text(&m);
                        upd_msg_done(&m);
                }
                free(names[i]);
        }
        free(names);
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "services", all);
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
                json_object_put(o);
        } else
                json_object_put(all);
        return EXIT_OK;
}
