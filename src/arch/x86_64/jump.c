/* x86-64 jumps written over function entries, and the landing pad that
 * must stay in front of them.
 *
 * Machine facts this file depends on:
 * - `jmp rel32` is e9 followed by a signed 32-bit displacement counted
 *   from the end of the 5-byte instruction, so it reaches
 *   [from + 5 - 2^31, from + 5 + 2^31 - 1].
 * - `jmp *0(%rip)` (ff 25 00 00 00 00) loads the target from the 8 bytes
 *   that follow it; it reaches anywhere and clobbers no register.
 * - With CET indirect-branch tracking, an indirect call or jump must land
 *   on `endbr64` (f3 0f 1e fa); a patched entry keeps it and puts the
 *   jump after it. */
#include "arch/arch.h"

#include <string.h>

#define JMP_REL32_LEN 5
#define JMP_ABS_LEN 14

static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };

size_t arch_jump_size(void)
{
        return JMP_REL32_LEN;
}

int arch_encode_jump(uint64_t from, uint64_t to, uint8_t *buf, size_t size)
{
        /* Two's-complement difference, as the CPU adds it to rip. */
        int64_t rel = (int64_t)(to - (from + JMP_REL32_LEN));
        uint32_t rel32;

        if (size < JMP_REL32_LEN)
                return -ENOBUFS;
        if (rel < INT32_MIN || rel > INT32_MAX)
                return -ERANGE;
        rel32 = (uint32_t)(int32_t)rel;
        buf[0] = 0xe9;
        for (int i = 0; i < 4; i++)
                buf[1 + i] = (uint8_t)(rel32 >> (8 * i));
        return JMP_REL32_LEN;
}

int arch_encode_jump_abs(uint64_t to, uint8_t *buf, size_t size)
{
        static const uint8_t jmp_rip[] = { 0xff, 0x25, 0x00, 0x00, 0x00, 0x00 };

        if (size < JMP_ABS_LEN)
                return -ENOBUFS;
        memcpy(buf, jmp_rip, sizeof(jmp_rip));
        for (int i = 0; i < 8; i++)
                buf[sizeof(jmp_rip) + i] = (uint8_t)(to >> (8 * i));
        return JMP_ABS_LEN;
}

size_t arch_landing_pad_size(const uint8_t *code, size_t size)
{
        if (size >= sizeof(endbr64) && memcmp(code, endbr64, sizeof(endbr64)) == 0)
                return sizeof(endbr64);
        return 0;
}
