/* Does not compile. */
int parse_header(const char *s)
{
        return s +;
}
