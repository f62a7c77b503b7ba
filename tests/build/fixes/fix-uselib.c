/* For the executable that uses the shared library: calls into the
 * library (lib_compute, which the executable imports) and uses a variable
 * of the library that the executable does not import (lib_counter): that
 * one is found only by reading the library, through the executable's
 * DT_RUNPATH. */
extern int lib_counter;
int lib_compute(int x);

int app_work(int x)
{
        return lib_compute(x) * 3 + lib_counter;
}
