/* For the shared library target: replaces an exported function and a
 * static one, uses the library's variable. */
extern int lib_counter;

int lib_compute(int x)
{
        lib_counter += 2;
        return x * 5 + 2;
}

static int lib_scale(int x)
{
        return x * 6;
}
