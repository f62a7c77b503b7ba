/* count_items is replaced only when built with -DWITH_COUNT (passed after
 * "--"); a static variable named like the target's is new data (warned). */
static int items_seen;

int parse_header(const char *s)
{
        return *s + items_seen++;
}

#ifdef WITH_COUNT
static int count_items(const int *v, int n)
{
        return n > 0 ? v[0] : 0;
}
#endif
