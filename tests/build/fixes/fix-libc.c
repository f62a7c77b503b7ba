/* Calls libc functions the target itself never imports. */
#include <stdlib.h>
#include <string.h>

int parse_header(const char *s)
{
        char *copy = strdup(s);
        int n = copy ? (int)strlen(copy) : 0;

        free(copy);
        return n + abs(-1);
}
