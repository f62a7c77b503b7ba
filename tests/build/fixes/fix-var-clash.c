/* Defines a variable the target already has: the patch would use its own
 * copy, silently. */
int items_total = 5;

int parse_header(const char *s)
{
        return items_total + *s;
}
