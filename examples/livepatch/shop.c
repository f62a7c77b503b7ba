/* shop: a small multithreaded program with a visible bug, for `make demo`
 * and the README's walk-through of a live patch.
 *
 * Four worker threads price orders in a loop; every 300 ms the main
 * thread prints the last order. The bug: format_price() forgets to pad the
 * cents, so 1205 cents prints as "$12.5" instead of "$12.05". fix.c, next
 * to this file, is the corrected function; `liveup build --replace fix.c
 * --target shop` turns it into a patch that `liveup apply` puts into the
 * running program. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct order {
        unsigned id;
        unsigned cents;
};

/* A static the fix uses too: how many prices were formatted. */
static unsigned long prices_formatted;
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_line[128];
static atomic_uint next_id = 1000;

void format_price(char *buf, size_t size, unsigned cents);

__attribute__((noinline)) void format_price(char *buf, size_t size, unsigned cents)
{
        __atomic_fetch_add(&prices_formatted, 1, __ATOMIC_RELAXED);
        snprintf(buf, size, "$%u.%u", cents / 100, cents % 100); /* BUG: %02u */
}

static void *worker(void *arg)
{
        unsigned seed = (unsigned)(uintptr_t)arg;

        for (;;) {
                struct order o = { atomic_fetch_add(&next_id, 1), 1205 + rand_r(&seed) % 3 };
                char price[32], line[128];

                format_price(price, sizeof(price), o.cents);
                snprintf(line, sizeof(line), "order %u: total %s", o.id, price);
                pthread_mutex_lock(&last_lock);
                memcpy(last_line, line, sizeof(line));
                pthread_mutex_unlock(&last_lock);
                usleep(1000);
        }
        return NULL;
}

int main(void)
{
        pthread_t t;

        setvbuf(stdout, NULL, _IOLBF, 0);
        for (uintptr_t i = 1; i <= 4; i++)
                pthread_create(&t, NULL, worker, (void *)i);
        for (;;) {
                usleep(300 * 1000);
                pthread_mutex_lock(&last_lock);
                printf("%s   (%lu prices so far)\n", last_line, prices_formatted);
                pthread_mutex_unlock(&last_lock);
        }
}
