/* Prints asm_value() every 50 ms. */
#include <stdio.h>
#include <unistd.h>

int asm_value(void);

int main(void)
{
        for (;;) {
                printf("value=%d\n", asm_value());
                fflush(stdout);
                usleep(50000);
        }
}
