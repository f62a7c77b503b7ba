/* Unit tests of the x86-64 port's jump encoding and instruction decoding
 * (src/arch/x86_64/jump.c, insn.c): jump bytes and reach, the endbr64
 * landing pad, and what decoding reports for prologues, rip-relative
 * operands, direct and indirect branches, traps and invalid bytes. */
#include "tap.h"

#include "arch/arch.h"

#include <pthread.h>

#define B(...) ((const uint8_t[]){ __VA_ARGS__ })
#define BLEN(...) sizeof((const uint8_t[]){ __VA_ARGS__ })

static void decode(const uint8_t *code, size_t size, uint64_t addr, struct arch_insn *insn)
{
        CHECK_OK(arch_decode(code, size, addr, insn));
        CHECK(insn->addr == addr);
        CHECK(insn->len > 0 && insn->len <= size);
        CHECK(memcmp(insn->bytes, code, insn->len) == 0);
}

TEST(jump_encoding_round_trip)
{
        uint8_t buf[16];
        struct arch_insn insn;
        const uint64_t from = 0x401000, to = 0x402000;

        CHECK(arch_jump_size() == 5);
        CHECK(arch_encode_jump(from, to, buf, sizeof(buf)) == 5);
        /* e9, then to - (from + 5) little-endian. */
        CHECK(memcmp(buf, B(0xe9, 0xfb, 0x0f, 0x00, 0x00), 5) == 0);
        decode(buf, 5, from, &insn);
        CHECK(insn.len == 5);
        CHECK(insn.flags & ARCH_INSN_BRANCH);
        CHECK(insn.flags & ARCH_INSN_PC_RELATIVE);
        CHECK(!(insn.flags & (ARCH_INSN_CALL | ARCH_INSN_INDIRECT)));
        CHECK(insn.target == to);

        /* Backwards, and to itself. */
        CHECK(arch_encode_jump(0x7f0000001000, 0x7f0000000800, buf, sizeof(buf)) == 5);
        decode(buf, 5, 0x7f0000001000, &insn);
        CHECK(insn.target == 0x7f0000000800);
        CHECK(arch_encode_jump(from, from, buf, sizeof(buf)) == 5);
        CHECK(memcmp(buf, B(0xe9, 0xfb, 0xff, 0xff, 0xff), 5) == 0);
        CHECK_ERR(arch_encode_jump(from, to, buf, 4), ENOBUFS);
}

TEST(jump_reach_is_2gib)
{
        uint8_t buf[16];
        struct arch_insn insn;
        const uint64_t from = 0x7f0000000000;
        const uint64_t end = from + 5;

        CHECK(arch_encode_jump(from, end + INT32_MAX, buf, sizeof(buf)) == 5);
        decode(buf, 5, from, &insn);
        CHECK(insn.target == end + INT32_MAX);
        CHECK_ERR(arch_encode_jump(from, end + INT32_MAX + 1ull, buf, sizeof(buf)), ERANGE);

        CHECK(arch_encode_jump(from, end - 0x80000000ull, buf, sizeof(buf)) == 5);
        decode(buf, 5, from, &insn);
        CHECK(insn.target == end - 0x80000000ull);
        CHECK_ERR(arch_encode_jump(from, end - 0x80000001ull, buf, sizeof(buf)), ERANGE);

        /* Far apart in the address space. */
        CHECK_ERR(arch_encode_jump(0x400000, 0x7fff00000000, buf, sizeof(buf)), ERANGE);
        CHECK_ERR(arch_encode_jump(0x7fff00000000, 0x400000, buf, sizeof(buf)), ERANGE);
}

TEST(absolute_jump)
{
        uint8_t buf[16];
        struct arch_insn insn;
        const uint64_t to = 0x1122334455667788;

        CHECK(arch_encode_jump_abs(to, buf, sizeof(buf)) == 14);
        CHECK(memcmp(buf, B(0xff, 0x25, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11),
                     14) == 0);
        CHECK_ERR(arch_encode_jump_abs(to, buf, 13), ENOBUFS);
        /* jmp *0(%rip): indirect, through the 8 bytes right after it. */
        decode(buf, sizeof(buf), 0x5000, &insn);
        CHECK(insn.len == 6);
        CHECK(insn.flags & ARCH_INSN_BRANCH);
        CHECK(insn.flags & ARCH_INSN_INDIRECT);
        CHECK(insn.flags & ARCH_INSN_PC_RELATIVE);
        CHECK(insn.target == 0x5006);
}

TEST(endbr64_landing_pad)
{
        struct arch_insn insn;

        CHECK(arch_landing_pad_size(B(0xf3, 0x0f, 0x1e, 0xfa, 0x55), 5) == 4);
        CHECK(arch_landing_pad_size(B(0xf3, 0x0f, 0x1e, 0xfa), 4) == 4);
        CHECK(arch_landing_pad_size(B(0xf3, 0x0f, 0x1e, 0xfa), 3) == 0);
        CHECK(arch_landing_pad_size(B(0xf3, 0x0f, 0x1e, 0xfb), 4) == 0); /* endbr32 */
        CHECK(arch_landing_pad_size(B(0x55, 0x48, 0x89, 0xe5), 4) == 0);
        CHECK(arch_landing_pad_size(B(0), 0) == 0);
        decode(B(0xf3, 0x0f, 0x1e, 0xfa), 4, 0x1000, &insn);
        CHECK(insn.len == 4);
        CHECK_STREQ(insn.text, "endbr64");
        CHECK(insn.flags == 0);
}

TEST(decode_prologue_of_frame_setup)
{
        /* push rbp; mov rbp, rsp; sub rsp, 0x10; mov [rbp-4], edi */
        static const uint8_t code[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10,
                                        0x89, 0x7d, 0xfc, 0xc3 };
        struct arch_insn insns[8];
        size_t n = 0;

        CHECK_OK(arch_decode_prologue(code, sizeof(code), 0x401126, arch_jump_size(), insns,
                                      ELEMENTSOF(insns), &n));
        CHECK(n == 3);
        CHECK_STREQ(insns[0].text, "push rbp");
        CHECK(insns[0].len == 1 && insns[0].addr == 0x401126 && insns[0].flags == 0);
        CHECK_STREQ(insns[1].text, "mov rbp, rsp");
        CHECK(insns[1].len == 3 && insns[1].addr == 0x401127);
        CHECK_STREQ(insns[2].text, "sub rsp, 0x10");
        CHECK(insns[2].addr == 0x40112a);
        /* Whole instructions covering at least the jump. */
        CHECK(insns[0].len + insns[1].len + insns[2].len == 8);

        /* Exactly on a boundary: 4 bytes are two instructions. */
        CHECK_OK(arch_decode_prologue(code, sizeof(code), 0, 4, insns, ELEMENTSOF(insns), &n));
        CHECK(n == 2);
        CHECK_OK(arch_decode_prologue(code, sizeof(code), 0, 0, insns, ELEMENTSOF(insns), &n));
        CHECK(n == 0);
        /* Endbr64 first, then the same frame setup: 14 bytes for an
         * absolute jump after it. */
        static const uint8_t cet[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5,
                                       0x48, 0x83, 0xec, 0x10, 0x89, 0x7d, 0xfc, 0xc3 };
        CHECK_OK(arch_decode_prologue(cet, sizeof(cet), 0, 14, insns, ELEMENTSOF(insns), &n));
        CHECK(n == 5); /* 4 + 1 + 3 + 4 + 3 = 15 bytes */
        CHECK_STREQ(insns[4].text, "mov dword ptr [rbp - 4], edi");
        CHECK(insns[4].addr == 12);
}

TEST(decode_prologue_errors)
{
        static const uint8_t code[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10 };
        struct arch_insn insns[8];
        size_t n = 99;

        CHECK_ERR(arch_decode_prologue(code, sizeof(code), 0, 5, insns, 2, &n), ENOSPC);
        CHECK_ERR(arch_decode_prologue(code, 4, 0, 5, insns, ELEMENTSOF(insns), &n), ENODATA);
        /* The third instruction is cut short by the end of the buffer. */
        CHECK_ERR(arch_decode_prologue(code, 6, 0, 5, insns, ELEMENTSOF(insns), &n), ENODATA);
        /* Invalid bytes after a valid push. */
        CHECK_ERR(arch_decode_prologue(B(0x55, 0x06, 0x90, 0x90, 0x90, 0x90), 6, 0, 5, insns,
                                       ELEMENTSOF(insns), &n),
                  EILSEQ);
        CHECK(n == 99); /* untouched on failure */
}

TEST(rip_relative_operands)
{
        struct arch_insn insn;

        /* mov rax, qword ptr [rip + 0x10] */
        decode(B(0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00), 7, 0x1000, &insn);
        CHECK(insn.len == 7);
        CHECK(insn.flags == ARCH_INSN_PC_RELATIVE);
        CHECK(insn.target == 0x1000 + 7 + 0x10);
        CHECK(strstr(insn.text, "rip"));

        /* lea rdi, [rip - 0x20] */
        decode(B(0x48, 0x8d, 0x3d, 0xe0, 0xff, 0xff, 0xff), 7, 0x555555554000, &insn);
        CHECK(insn.flags == ARCH_INSN_PC_RELATIVE);
        CHECK(insn.target == 0x555555554000 + 7 - 0x20);

        /* cmp dword ptr [rip + 0x100], 5: the immediate follows the
         * displacement, and still counts from the instruction's end. */
        decode(B(0x83, 0x3d, 0x00, 0x01, 0x00, 0x00, 0x05), 7, 0x2000, &insn);
        CHECK(insn.len == 7);
        CHECK(insn.target == 0x2000 + 7 + 0x100);

        /* mov rax, [rbx + 0x10]: not pc-relative. */
        decode(B(0x48, 0x8b, 0x43, 0x10), 4, 0x2000, &insn);
        CHECK(insn.flags == 0 && insn.target == 0);
}

TEST(branches_and_calls)
{
        struct arch_insn insn;

        /* call rel32 */
        decode(B(0xe8, 0x00, 0x01, 0x00, 0x00), 5, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_CALL | ARCH_INSN_PC_RELATIVE));
        CHECK(insn.target == 0x1105);
        /* jmp rel8 */
        decode(B(0xeb, 0xfe), 2, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_BRANCH | ARCH_INSN_PC_RELATIVE));
        CHECK(insn.target == 0x1000);
        /* je rel32 */
        decode(B(0x0f, 0x84, 0x10, 0x00, 0x00, 0x00), 6, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_BRANCH | ARCH_INSN_PC_RELATIVE));
        CHECK(insn.target == 0x1016);
        /* loop rel8, jrcxz rel8 */
        decode(B(0xe2, 0x10), 2, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_BRANCH | ARCH_INSN_PC_RELATIVE));
        CHECK(insn.target == 0x1012);
        decode(B(0xe3, 0x10), 2, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_BRANCH | ARCH_INSN_PC_RELATIVE));
        /* call rax; jmp qword ptr [rax + 8] */
        decode(B(0xff, 0xd0), 2, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_CALL | ARCH_INSN_INDIRECT));
        CHECK(insn.target == 0);
        decode(B(0xff, 0x60, 0x08), 3, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_BRANCH | ARCH_INSN_INDIRECT));
        /* call qword ptr [rip + 0x2fe2] (a call through the GOT) */
        decode(B(0xff, 0x15, 0xe2, 0x2f, 0x00, 0x00), 6, 0x1000, &insn);
        CHECK(insn.flags == (ARCH_INSN_CALL | ARCH_INSN_INDIRECT | ARCH_INSN_PC_RELATIVE));
        CHECK(insn.target == 0x1006 + 0x2fe2);
        /* ret; ret 8 */
        decode(B(0xc3), 1, 0x1000, &insn);
        CHECK(insn.flags == ARCH_INSN_RET);
        decode(B(0xc2, 0x08, 0x00), 3, 0x1000, &insn);
        CHECK(insn.flags == ARCH_INSN_RET);
}

TEST(traps_and_plain_instructions)
{
        struct arch_insn insn;

        decode(B(0xcc), 1, 0, &insn);
        CHECK(insn.flags == ARCH_INSN_TRAP);
        CHECK_STREQ(insn.text, "int3");
        decode(B(0x0f, 0x0b), 2, 0, &insn);
        CHECK(insn.flags == ARCH_INSN_TRAP);
        decode(B(0xf4), 1, 0, &insn);
        CHECK(insn.flags == ARCH_INSN_TRAP);
        decode(B(0x0f, 0xff, 0x00, 0x00), 4, 0, &insn); /* ud0 */
        CHECK(insn.flags & ARCH_INSN_TRAP);
        /* syscall is not a trap: execution goes on after it. */
        decode(B(0x0f, 0x05), 2, 0, &insn);
        CHECK(!(insn.flags & ARCH_INSN_TRAP));
        decode(B(0x90), 1, 0, &insn);
        CHECK(insn.flags == ARCH_INSN_PADDING);
        CHECK_STREQ(insn.text, "nop");
        /* The assemblers' multi-byte padding: nopl 0(%rax,%rax), xchg %ax,%ax. */
        decode(B(0x0f, 0x1f, 0x44, 0x00, 0x00), 5, 0, &insn);
        CHECK(insn.len == 5 && insn.flags == ARCH_INSN_PADDING);
        decode(B(0x66, 0x90), 2, 0, &insn);
        CHECK(insn.len == 2 && insn.flags == ARCH_INSN_PADDING);
        /* Not padding: xchg %eax,%ecx. */
        decode(B(0x91), 1, 0, &insn);
        CHECK(!(insn.flags & ARCH_INSN_PADDING));
        /* A 15-byte instruction: the longest there is. */
        decode(B(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00,
                 0x00, 0x00),
               15, 0, &insn);
        CHECK(insn.len == 15);
}

TEST(invalid_bytes)
{
        struct arch_insn insn = { .len = 77 };

        CHECK_ERR(arch_decode(B(0x06), 1, 0, &insn), EILSEQ);       /* push es */
        CHECK_ERR(arch_decode(B(0x27, 0x90), 2, 0, &insn), EILSEQ); /* daa */
        CHECK_ERR(arch_decode(B(0x0f, 0x04, 0x00), 3, 0, &insn), EILSEQ);
        CHECK_ERR(arch_decode(B(0xff, 0xff), 2, 0, &insn), EILSEQ);
        /* Cut short: a mov with a 4-byte displacement, 3 bytes given. */
        CHECK_ERR(arch_decode(B(0x48, 0x8b, 0x05), 3, 0, &insn), EILSEQ);
        CHECK_ERR(arch_decode(B(0x90), 0, 0, &insn), EILSEQ);
        CHECK(insn.len == 77); /* untouched on failure */
}

static void *decode_many(void *arg)
{
        static const uint8_t code[] = { 0x55, 0x48, 0x89, 0xe5, 0x48, 0x8b, 0x05,
                                        0x10, 0x00, 0x00, 0x00, 0xc3 };
        uintptr_t id = (uintptr_t)arg;

        for (int i = 0; i < 20000; i++) {
                struct arch_insn insns[4];
                size_t n;
                uint64_t addr = 0x1000 * id + (uint64_t)i;

                if (arch_decode_prologue(code, sizeof(code), addr, 12, insns, 4, &n) < 0 ||
                    n != 4 || insns[2].target != addr + 11 + 0x10 ||
                    strcmp(insns[2].text, "mov rax, qword ptr [rip + 0x10]") != 0)
                        return (void *)1;
        }
        return NULL;
}

TEST(decoding_from_several_threads)
{
        pthread_t t[4];

        for (uintptr_t i = 0; i < ELEMENTSOF(t); i++)
                CHECK(pthread_create(&t[i], NULL, decode_many, (void *)(i + 1)) == 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                void *res = (void *)1;

                CHECK(pthread_join(t[i], &res) == 0);
                CHECK(res == NULL);
        }
}

TAP_MAIN()
