/* An executable that uses the build tests' shared library (found through
 * its DT_RUNPATH): a fix for it may call the library's functions. */
#define KEEP __attribute__((noipa, used))

int lib_compute(int x);
int app_work(int x);

KEEP int app_work(int x)
{
        return lib_compute(x) * 2;
}

int main(int argc, char **argv)
{
        return app_work(argc) == 0;
}
