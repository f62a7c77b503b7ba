/* lpt_tag() becomes 43, from a patch too large for an arena: 3 MiB of
 * .bss (zeroed memory of its own) make its data part larger than an
 * arena's, so it gets mappings of its own, unmapped when it is
 * reverted. */
static unsigned char big[3u << 20];

int lpt_tag(void);

int lpt_tag(void)
{
        volatile unsigned char *b = big;

        b[sizeof(big) - 1] = 43;
        return b[sizeof(big) - 1];
}
