/* References the ambiguous static helper of the target. */
extern int helper(int x);

int parse_header(const char *s)
{
        return helper(*s);
}
