/* The second static `helper` of the build-test targets (see target.c). */
#define KEEP __attribute__((noipa, used))

int use_b(int x);

KEEP static int helper(int x)
{
        return x - 1;
}

KEEP int use_b(int x)
{
        return helper(x);
}
