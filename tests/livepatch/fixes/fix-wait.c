/* wait_here() again, returning the byte plus one: the tests only need a
 * patch of a function a thread can be parked in. */
#include <errno.h>
#include <unistd.h>

int wait_here(int fd);

int wait_here(int fd)
{
        unsigned char c;
        ssize_t n;

        do
                n = read(fd, &c, 1);
        while (n < 0 && errno == EINTR);
        return n == 1 ? c + 1 : -1;
}
