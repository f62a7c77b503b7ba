/* Replaces an exported function (parse_header) and a static one
 * (count_items); uses the target's static and global variables and a
 * static function of the target, libc, a new helper and new data. */
#include <stdio.h>

extern int items_total;
extern int items_seen;                          /* a static of the target */
extern int format_item(char *buf, size_t size, int v); /* a static too */

static int fix_calls;

static int clamp(int v)
{
        return v < 0 ? 0 : v;
}

int parse_header(const char *s)
{
        char buf[32];
        int n = 0;

        while (*s && *s != ':' && *s != ';')
                n = n * 31 + *s++;
        items_total++;
        fix_calls++;
        format_item(buf, sizeof(buf), n);
        printf("parse_header (fixed): %s\n", buf);
        return clamp(n);
}

static int count_items(const int *v, int n)
{
        int c = 0;

        for (int i = 0; i < n; i++)
                if (v[i] != 0)
                        c++;
        items_seen += c;
        return c;
}
