/* A weak reference may stay unresolved. */
extern int maybe_there(int x) __attribute__((weak));

int parse_header(const char *s)
{
        return maybe_there ? maybe_there(*s) : *s;
}
