/* The functions of the live-patching test target that tests replace.
 *
 * lpt-func.c defines them; it is linked into the executable (PIE -O0,
 * PIE -O2, non-PIE -O2) or built as liblpt.so (the shared-library
 * variant). lpt-main.c is the program around them. */
#pragma once

/* compute(x) is x + 1 in the original; a patch changes that "delta",
 * compute(x) - x. For x == LPT_MARKER it returns -1: the constant is an
 * immediate in compute()'s code, which the "bytes differ" test rewrites
 * in a copy of the binary (no caller passes it, so the copy behaves the
 * same). */
#define LPT_MARKER 0x7eadbeef

int compute(int x);

/* How many times compute() ran (a static of lpt-func.c). */
unsigned long lpt_calls_get(void);

/* Read one byte from fd (retrying on EINTR); the byte, or -1. A thread
 * blocked here keeps wait_here() on its stack. */
int wait_here(int fd);

/* Empty: one `ret` at -O2, too short for a jump. */
void lpt_nop(void);

/* 42; left out of the "alt" build of liblpt.so (-DLPT_NO_EXTRA), so a
 * patch that calls it cannot be applied to a process using that one. */
int lpt_extra(void);
