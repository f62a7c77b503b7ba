/* The target has two statics named helper (target.c, target-b.c). */
static int helper(int x)
{
        return x + 2;
}
