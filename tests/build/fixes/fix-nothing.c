/* Defines only a new helper: replaces nothing. */
static int unrelated(int x)
{
        return x;
}
