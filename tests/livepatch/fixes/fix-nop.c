/* lpt_nop() is a single `ret` at -O2: too short for a jump. */
void lpt_nop(void);

void lpt_nop(void)
{
        __asm__ volatile("" ::: "memory");
}
