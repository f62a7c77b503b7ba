/* An exported function the target does not have: refused (a typo, or a
 * helper that should be static). */
int parse_header(const char *s)
{
        return *s;
}

int brand_new_function(int x)
{
        return x + 1;
}
