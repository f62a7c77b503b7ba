/* `liveup inspect FILE.lpo [--json]`: what a patch file contains and what
 * it targets: its id, name, target object (path and build-id), flags,
 * creation time, every replaced function (target address, size, hash of
 * the original bytes), the sections that will be loaded into the target
 * and the symbols left undefined (resolved in the target at apply time).
 *
 * The file is read with lp_file_open(), which validates all of it: a file
 * that is missing, not ELF, not a patch, corrupt, truncated or of another
 * format version gives one error line and exit status 2, never a crash.
 * Section and symbol names come from the object and are printed as text
 * only after control characters are replaced (a hostile file must not
 * drive the terminal); JSON output escapes them. */
#include "cli/cli.h"

#include "base/log.h"
#include "elf/elf.h"
#include "livepatch/format.h"

#include <gelf.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>
#include <time.h>

void verb_inspect_usage(FILE *f)
{
        fprintf(f,
                "Usage: liveup inspect FILE.lpo [--json]\n"
                "\n"
                "Show what a patch file contains and targets: its id and name, the\n"
                "target object's path and build-id, flags, creation time, every\n"
                "function it replaces (address, size and hash of the original bytes),\n"
                "the sections it loads and the symbols it resolves in the target.\n"
                "\n"
                "Options:\n"
                "      --json     one JSON document on stdout\n"
                "  -v, --verbose  debug messages on stderr\n"
                "  -h, --help     show this help\n"
                "\n"
                "Exit status: 0 shown, 2 bad usage or a file that is not a valid patch.\n"
                "See liveup-inspect(1).\n");
}

/* ---- What the object holds besides the metadata ------------------------- */

struct section_info {
        const char *name;
        const char *kind;
        uint64_t size;
};

struct contents {
        void *image; /* libelf's private copy */
        Elf *elf;
        struct section_info *sections;
        size_t n_sections;
        const char **undefined;
        size_t n_undefined;
};

static void contents_done(struct contents *c)
{
        free(c->sections);
        free(c->undefined);
        if (c->elf)
                elf_end(c->elf);
        free(c->image);
        *c = (struct contents){};
}

static const char *section_kind(const GElf_Shdr *sh)
{
        if (sh->sh_flags & SHF_TLS)
                return "tls";
        if (sh->sh_flags & SHF_EXECINSTR)
                return "code";
        if (sh->sh_type == SHT_NOBITS)
                return "bss";
        if (sh->sh_flags & SHF_WRITE)
                return "data";
        return "rodata";
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_symbols(struct contents *c, Elf_Scn *scn, const GElf_Shdr *sh)
{
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t entsize = gelf_fsize(c->elf, ELF_T_SYM, 1, EV_CURRENT), count, n = 0;

        if (!d || !d->d_buf || entsize == 0)
                return 0;
        count = d->d_size / entsize;
        if (count > INT_MAX)
                return 0;
        c->undefined = calloc(MAX(count, (size_t)1), sizeof(*c->undefined));
        if (!c->undefined)
                return -ENOMEM;
        for (size_t i = 1; i < count; i++) {
                GElf_Sym sym;
                const char *name;

                if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx != SHN_UNDEF)
                        continue;
                name = elf_strptr(c->elf, sh->sh_link, sym.st_name);
                if (name && *name)
                        c->undefined[n++] = name;
        }
        qsort(c->undefined, n, sizeof(*c->undefined), cmp_str);
        c->n_undefined = 0;
        for (size_t i = 0; i < n; i++)
                if (c->n_undefined == 0 ||
                    strcmp(c->undefined[c->n_undefined - 1], c->undefined[i]) != 0)
                        c->undefined[c->n_undefined++] = c->undefined[i];
        return 0;
}

/* The allocated sections and the undefined symbols. The file has passed
 * lp_file_open(), but libelf is still given its own copy. */
static int read_contents(const struct lp_file *p, struct contents *c)
{
        Elf_Scn *scn = NULL;
        size_t shstrndx = 0, n = 0;
        int r;

        (void)elf_library_init();
        c->image = malloc(MAX(p->image_size, (size_t)1));
        if (!c->image)
                return -ENOMEM;
        memcpy(c->image, p->image, p->image_size);
        c->elf = elf_memory(c->image, p->image_size);
        if (!c->elf || elf_getshdrnum(c->elf, &n) < 0 || elf_getshdrstrndx(c->elf, &shstrndx) < 0)
                return -EBADMSG;
        c->sections = calloc(MAX(n, (size_t)1), sizeof(*c->sections));
        if (!c->sections)
                return -ENOMEM;
        while ((scn = elf_nextscn(c->elf, scn))) {
                GElf_Shdr sh;
                const char *name;

                if (!gelf_getshdr(scn, &sh))
                        continue;
                if (sh.sh_type == SHT_SYMTAB && !c->undefined) {
                        r = read_symbols(c, scn, &sh);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* Empty ones (.text of a file built with
                 * -ffunction-sections) load nothing. */
                if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_size == 0 || c->n_sections >= n)
                        continue;
                name = elf_strptr(c->elf, shstrndx, sh.sh_name);
                c->sections[c->n_sections++] = (struct section_info){
                        .name = name ? name : "",
                        .kind = section_kind(&sh),
                        .size = sh.sh_size,
                };
        }
        return 0;
}

/* ---- Output -------------------------------------------------------------- */

/* `s` with control characters shown as '?', into buf. */
static const char *printable(const char *s, char *buf, size_t size)
{
        size_t i = 0;

        for (; s[i] && i + 1 < size; i++)
                buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        buf[i] = 0;
        return buf;
}

/* "2025-11-22 10:11:12 UTC", or false when the time is not representable. */
static bool format_time(uint64_t t, char *buf, size_t size)
{
        struct tm tm;
        time_t tt;

        if (t > (uint64_t)INT64_MAX / 2)
                return false;
        tt = (time_t)t;
        if (!gmtime_r(&tt, &tm))
                return false;
        return strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) > 0;
}

static void hex_bytes(const uint8_t *p, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 0xf];
        }
        out[2 * n] = 0;
}

static void print_text(const struct lp_file *p, const struct contents *c)
{
        char when[64], buf[512];
        size_t width = 0;

        printf("patch %s (%s), file %s\n", p->id, p->name, p->path);
        printf("  target:    %s\n", p->target);
        printf("  build-id:  %s\n", p->build_id_hex);
        printf("  flags:     %s\n", p->flags & LP_FLAG_CUMULATIVE ? "cumulative" : "none");
        if (format_time(p->created, when, sizeof(when)))
                printf("  created:   %s\n", when);
        else
                printf("  created:   %" PRIu64 " (seconds since the epoch)\n", p->created);

        for (size_t i = 0; i < p->n_funcs; i++)
                width = MAX(width, strlen(p->funcs[i].name));
        printf("replaces %zu function%s:\n", p->n_funcs, p->n_funcs == 1 ? "" : "s");
        for (size_t i = 0; i < p->n_funcs; i++) {
                const struct lp_func *fn = &p->funcs[i];

                printf("  %-*s  at 0x%016" PRIx64 ", %" PRIu64 " byte%s, hash 0x%016" PRIx64
                       "%s",
                       (int)MIN(width, (size_t)60), fn->name, fn->addr, fn->size,
                       fn->size == 1 ? "" : "s", fn->hash,
                       fn->flags & LP_FUNC_LOCAL ? " (static)" : "");
                if (strcmp(fn->name, fn->new_name) != 0)
                        printf(", by %s", fn->new_name);
                putchar('\n');
        }

        width = 0;
        for (size_t i = 0; i < c->n_sections; i++)
                width = MAX(width, strlen(c->sections[i].name));
        printf("sections loaded into the target: %zu\n", c->n_sections);
        for (size_t i = 0; i < c->n_sections; i++)
                printf("  %-*s  %-6s  %" PRIu64 " byte%s\n", (int)MIN(width, (size_t)60),
                       printable(c->sections[i].name, buf, sizeof(buf)), c->sections[i].kind,
                       c->sections[i].size, c->sections[i].size == 1 ? "" : "s");
        printf("symbols resolved in the target: %zu\n", c->n_undefined);
        for (size_t i = 0; i < c->n_undefined; i++)
                printf("  %s\n", printable(c->undefined[i], buf, sizeof(buf)));
}

static struct json_object *json_hex(uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
        return json_object_new_string(buf);
}

static int print_json(const struct lp_file *p, const struct contents *c)
{
        struct json_object *root, *funcs, *secs, *undef;
        char when[64], entry[2 * LP_ENTRY_BYTES + 1];
        const char *text;

        root = json_object_new_object();
        funcs = json_object_new_array();
        secs = json_object_new_array();
        undef = json_object_new_array();
        if (!root || !funcs || !secs || !undef) {
                json_object_put(root);
                json_object_put(funcs);
                json_object_put(secs);
                json_object_put(undef);
                return -ENOMEM;
        }
        json_object_object_add(root, "file", json_object_new_string(p->path));
        json_object_object_add(root, "id", json_object_new_string(p->id));
        json_object_object_add(root, "name", json_object_new_string(p->name));
        json_object_object_add(root, "target", json_object_new_string(p->target));
        json_object_object_add(root, "build_id", json_object_new_string(p->build_id_hex));
        json_object_object_add(root, "format_version", json_object_new_int((int32_t)p->version));
        json_object_object_add(root, "cumulative",
                               json_object_new_boolean(p->flags & LP_FLAG_CUMULATIVE));
        json_object_object_add(root, "created", json_object_new_uint64(p->created));
        json_object_object_add(root, "created_utc",
                               format_time(p->created, when, sizeof(when))
                                       ? json_object_new_string(when)
                                       : NULL);
        json_object_object_add(root, "functions", funcs);
        json_object_object_add(root, "sections", secs);
        json_object_object_add(root, "undefined", undef);

        for (size_t i = 0; i < p->n_funcs; i++) {
                const struct lp_func *fn = &p->funcs[i];
                struct json_object *jf = json_object_new_object();

                if (!jf) {
                        json_object_put(root);
                        return -ENOMEM;
                }
                hex_bytes(fn->entry, LP_ENTRY_BYTES, entry);
                json_object_object_add(jf, "name", json_object_new_string(fn->name));
                json_object_object_add(jf, "replacement", json_object_new_string(fn->new_name));
                json_object_object_add(jf, "address", json_hex(fn->addr));
                json_object_object_add(jf, "size", json_object_new_uint64(fn->size));
                json_object_object_add(jf, "hash", json_hex(fn->hash));
                json_object_object_add(jf, "static",
                                       json_object_new_boolean(fn->flags & LP_FUNC_LOCAL));
                json_object_object_add(jf, "entry", json_object_new_string(entry));
                json_object_array_add(funcs, jf);
        }
        for (size_t i = 0; i < c->n_sections; i++) {
                struct json_object *js = json_object_new_object();

                if (!js) {
                        json_object_put(root);
                        return -ENOMEM;
                }
                json_object_object_add(js, "name", json_object_new_string(c->sections[i].name));
                json_object_object_add(js, "kind", json_object_new_string(c->sections[i].kind));
                json_object_object_add(js, "size", json_object_new_uint64(c->sections[i].size));
                json_object_array_add(secs, js);
        }
        for (size_t i = 0; i < c->n_undefined; i++)
                json_object_array_add(undef, json_object_new_string(c->undefined[i]));

        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text)
                puts(text);
        json_object_put(root);
        return text ? 0 : -ENOMEM;
}

/* ---- The verb ------------------------------------------------------------ */

int verb_inspect(int argc, char **argv)
{
        enum { OPT_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "verbose", no_argument, NULL, 'v' },
                { "json", no_argument, NULL, OPT_JSON },
                {},
        };
        _cleanup_(lp_file_freep) struct lp_file *p = NULL;
        _cleanup_(contents_done) struct contents c = {};
        struct errbuf err = {};
        bool json = false;
        const char *file;
        int ch, r;

        opterr = 0;
        while ((ch = getopt_long(argc, argv, ":hv", options, NULL)) >= 0) {
                switch (ch) {
                case 'h':
                        verb_inspect_usage(stdout);
                        return EXIT_OK;
                case 'v':
                        log_set_level(LOG_LEVEL_DEBUG);
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                default:
                        return cli_bad_option("inspect", ch, argv);
                }
        }
        r = cli_one_operand("inspect", "FILE.lpo", argc, argv, &file);
        if (r)
                return r;

        r = lp_file_open(file, &p, &err);
        if (r < 0) {
                if (err.msg[0])
                        log_error("%s", err.msg);
                else
                        log_error("'%s': %s", file, cli_strerror(r));
                return r == -ENOMEM ? EXIT_REFUSED : EXIT_USAGE;
        }
        r = read_contents(p, &c);
        if (r < 0) {
                log_error("'%s': cannot read its sections: %s", p->path, cli_strerror(r));
                return r == -ENOMEM ? EXIT_REFUSED : EXIT_USAGE;
        }
        if (json)
                r = print_json(p, &c);
        else {
                print_text(p, &c);
                r = 0;
        }
        if (r < 0 || fflush(stdout) != 0 || ferror(stdout)) {
                log_error("cannot print '%s': %s", p->path, cli_strerror(r < 0 ? r : -errno));
                return EXIT_REFUSED;
        }
        return EXIT_OK;
}
