/* A shared library target for the build tests: an exported function, a
 * static one and a variable. */
#define KEEP __attribute__((noipa, used))

int lib_compute(int x);

int lib_counter;

KEEP static int lib_scale(int x)
{
        return x * 5 + lib_counter;
}

KEEP int lib_compute(int x)
{
        lib_counter++;
        return lib_scale(x) + 1;
}
