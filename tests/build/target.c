/* A program that `liveup build` builds patches against (it is never run by
 * the tests, only read). It has what fixes replace and reference: an
 * exported function, statics, static and global variables, a
 * thread-local, functions too short for a jump, two names for one
 * function, and a static `helper` that target-b.c has too (ambiguous).
 * noipa keeps each function whole at every optimisation level (no
 * inlining, cloning or dropping); `used` keeps unused statics. */
#include <stdio.h>
#include <string.h>

#define KEEP __attribute__((noipa, used))

int parse_header(const char *s);
void tiny(void);
void tiny_endbr(void);
int alias_target(int x);
int alias_other(int x);
int use_b(int x);

int items_total;
static int items_seen;
__thread int tls_counter;

KEEP static int helper(int x)
{
        return x + items_seen;
}

KEEP static int format_item(char *buf, size_t size, int v)
{
        return snprintf(buf, size, "item %d", v);
}

KEEP int parse_header(const char *s)
{
        int n = 0;

        while (*s && *s != ':')
                n = n * 31 + *s++;
        items_total++;
        return helper(n);
}

KEEP static int count_items(const int *v, int n)
{
        int c = 0;

        for (int i = 0; i < n; i++)
                if (v[i] > 0)
                        c++;
        items_seen += c;
        return c;
}

/* 3 bytes (ret; ud2) and 7 bytes (endbr64; ret; ud2). */
__attribute__((naked, used)) void tiny(void)
{
        __asm__("ret");
}

__attribute__((naked, used)) void tiny_endbr(void)
{
        __asm__(".byte 0xf3, 0x0f, 0x1e, 0xfa\n\tret");
}

KEEP int alias_target(int x)
{
        return x * 3 + items_total;
}
int alias_other(int x) __attribute__((alias("alias_target")));

int main(int argc, char **argv)
{
        char buf[32];
        int v[3] = { argc, 0, 1 };

        format_item(buf, sizeof(buf), count_items(v, 3));
        tls_counter++;
        printf("%d %s %d %d\n", parse_header(argv[0]), buf, alias_other(argc), use_b(argc));
        tiny();
        return 0;
}
