/* Calls a function that neither the target nor its libraries define. */
int no_such_function(int x);

int parse_header(const char *s)
{
        return no_such_function(*s);
}
