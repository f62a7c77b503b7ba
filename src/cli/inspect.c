/* `liveup inspect FILE.lpo [--json]`: what a patch file contains and what
 * it targets: its id, name, target object (path and build-id), flags,
 * creation time, every replaced function (target address, size, hash of
 * the original bytes, why it is in the patch when the file says), the
 * functions and data the patch adds, the sections that will be loaded
 * into the target, the symbols left undefined (resolved in the target at
 * apply time) and those of them bound to an exact target address.
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
                "function it replaces (address, size and hash of the original bytes,\n"
                "and why, when the file says), the functions and data it adds, the\n"
                "sections it loads, the symbols it resolves in the target and those\n"
                "bound to an exact address there.\n"
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

/* Names point into libelf's data of `elf`; each list sorted, no name
 * twice. */
struct contents {
        void *image; /* libelf's private copy */
        Elf *elf;
        struct section_info *sections;
        size_t n_sections;
        const char **undefined;
        size_t n_undefined;
        const char **new_funcs; /* defined functions that replace nothing */
        size_t n_new_funcs;
        const char **new_data;  /* defined data objects */
        size_t n_new_data;
};

static void contents_done(struct contents *c)
{
        free(c->sections);
        free(c->undefined);
        free(c->new_funcs);
        free(c->new_data);
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

/* Sort v[0..n) and drop repeated names; the new count. */
static size_t sort_unique(const char **v, size_t n)
{
        size_t k = 0;

        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_str);
        for (size_t i = 0; i < n; i++)
                if (k == 0 || strcmp(v[k - 1], v[i]) != 0)
                        v[k++] = v[i];
        return k;
}

static bool writable(Elf *elf, size_t shndx)
{
        Elf_Scn *scn = shndx < SHN_LORESERVE ? elf_getscn(elf, shndx) : NULL;
        GElf_Shdr sh;

        return scn && gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_WRITE);
}

static bool is_replacement(const char *const *repl, size_t n, const char *name)
{
        return n > 0 && bsearch(&name, repl, n, sizeof(*repl), cmp_str);
}

/* The undefined symbols, and the defined functions and data objects of
 * the patch (a function that is a replacement is not new; nor is the cold
 * part gcc split off a function, "name.cold", which goes with it; nor are
 * read-only constants, which a patch carries as copies). */
static int read_symbols(const struct lp_file *p, struct contents *c, Elf_Scn *scn,
                        const GElf_Shdr *sh)
{
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t entsize = gelf_fsize(c->elf, ELF_T_SYM, 1, EV_CURRENT), count;
        _cleanup_free_ const char **repl = NULL;
        size_t n_repl;

        if (!d || !d->d_buf || entsize == 0)
                return 0;
        count = d->d_size / entsize;
        if (count > INT_MAX)
                return 0;
        repl = calloc(MAX(p->n_funcs, (size_t)1), sizeof(*repl));
        c->undefined = calloc(MAX(count, (size_t)1), sizeof(*c->undefined));
        c->new_funcs = calloc(MAX(count, (size_t)1), sizeof(*c->new_funcs));
        c->new_data = calloc(MAX(count, (size_t)1), sizeof(*c->new_data));
        if (!repl || !c->undefined || !c->new_funcs || !c->new_data)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_funcs; i++)
                repl[i] = p->funcs[i].new_name;
        n_repl = sort_unique(repl, p->n_funcs);

        for (size_t i = 1; i < count; i++) {
                GElf_Sym sym;
                const char *name;
                int type;

                if (!gelf_getsym(d, (int)i, &sym))
                        continue;
                name = elf_strptr(c->elf, sh->sh_link, sym.st_name);
                if (!name || !*name)
                        continue;
                type = GELF_ST_TYPE(sym.st_info);
                if (sym.st_shndx == SHN_UNDEF)
                        c->undefined[c->n_undefined++] = name;
                else if (type == STT_FUNC && !is_replacement(repl, n_repl, name) &&
                         !strstr(name, ".cold"))
                        c->new_funcs[c->n_new_funcs++] = name;
                else if ((type == STT_OBJECT && writable(c->elf, sym.st_shndx)) ||
                         type == STT_TLS || type == STT_COMMON)
                        c->new_data[c->n_new_data++] = name;
        }
        c->n_undefined = sort_unique(c->undefined, c->n_undefined);
        c->n_new_funcs = sort_unique(c->new_funcs, c->n_new_funcs);
        c->n_new_data = sort_unique(c->new_data, c->n_new_data);
        return 0;
}

/* The allocated sections and the symbols. The file has passed
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
                        r = read_symbols(p, c, scn, &sh);
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

/* "TITLE: N" and the names, one a line. */
static void print_names(const char *title, const char *const *names, size_t n)
{
        char buf[512];

        printf("%s: %zu\n", title, n);
        for (size_t i = 0; i < n; i++)
                printf("  %s\n", printable(names[i], buf, sizeof(buf)));
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
                if (fn->why)
                        printf(" - %s", fn->why);
                putchar('\n');
        }
        print_names("new functions", c->new_funcs, c->n_new_funcs);
        print_names("new data", c->new_data, c->n_new_data);

        width = 0;
        for (size_t i = 0; i < c->n_sections; i++)
                width = MAX(width, strlen(c->sections[i].name));
        printf("sections loaded into the target: %zu\n", c->n_sections);
        for (size_t i = 0; i < c->n_sections; i++)
                printf("  %-*s  %-6s  %" PRIu64 " byte%s\n", (int)MIN(width, (size_t)60),
                       printable(c->sections[i].name, buf, sizeof(buf)), c->sections[i].kind,
                       c->sections[i].size, c->sections[i].size == 1 ? "" : "s");
        print_names("symbols resolved in the target", c->undefined, c->n_undefined);

        width = 0;
        for (size_t i = 0; i < p->n_binds; i++)
                width = MAX(width, strlen(p->binds[i].sym));
        printf("symbols bound to target addresses: %zu\n", p->n_binds);
        for (size_t i = 0; i < p->n_binds; i++) {
                const struct lp_bind *b = &p->binds[i];

                printf("  %-*s  -> %s at 0x%016" PRIx64 ", %s%s\n", (int)MIN(width, (size_t)60),
                       b->sym, b->name, b->addr, b->flags & LP_BIND_FUNC ? "function" : "data",
                       b->flags & LP_BIND_LOCAL ? ", static" : "");
        }
}

static struct json_object *json_hex(uint64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
        return json_object_new_string(buf);
}

/* A JSON array of the names, or NULL. */
static struct json_object *json_names(const char *const *names, size_t n)
{
        struct json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++)
                if (json_object_array_add(a, json_object_new_string(names[i])) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

static int print_json(const struct lp_file *p, const struct contents *c)
{
        struct json_object *root, *funcs, *secs, *undef, *binds, *new_funcs, *new_data;
        char when[64], entry[2 * LP_ENTRY_BYTES + 1];
        const char *text;

        root = json_object_new_object();
        funcs = json_object_new_array();
        secs = json_object_new_array();
        undef = json_object_new_array();
        binds = json_object_new_array();
        new_funcs = json_names(c->new_funcs, c->n_new_funcs);
        new_data = json_names(c->new_data, c->n_new_data);
        if (!root || !funcs || !secs || !undef || !binds || !new_funcs || !new_data) {
                json_object_put(root);
                json_object_put(funcs);
                json_object_put(secs);
                json_object_put(undef);
                json_object_put(binds);
                json_object_put(new_funcs);
                json_object_put(new_data);
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
        json_object_object_add(root, "bindings", binds);
        json_object_object_add(root, "new_functions", new_funcs);
        json_object_object_add(root, "new_data", new_data);

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
                json_object_object_add(jf, "why",
                                       fn->why ? json_object_new_string(fn->why) : NULL);
                json_object_array_add(funcs, jf);
        }
        for (size_t i = 0; i < p->n_binds; i++) {
                const struct lp_bind *b = &p->binds[i];
                struct json_object *jb = json_object_new_object();

                if (!jb) {
                        json_object_put(root);
                        return -ENOMEM;
                }
                json_object_object_add(jb, "symbol", json_object_new_string(b->sym));
                json_object_object_add(jb, "target_symbol", json_object_new_string(b->name));
                json_object_object_add(jb, "address", json_hex(b->addr));
                json_object_object_add(jb, "kind", json_object_new_string(
                                                           b->flags & LP_BIND_FUNC ? "function"
                                                                                   : "data"));
                json_object_object_add(jb, "static",
                                       json_object_new_boolean(b->flags & LP_BIND_LOCAL));
                json_object_array_add(binds, jb);
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
