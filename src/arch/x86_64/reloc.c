/* x86-64 relocations of ELF relocatable objects (the System V psABI,
 * "Relocation Types"), as gcc emits them for -fPIC code at -O0..-O3:
 * absolute (64, 32, 32S), pc-relative (PC32, PC64), branches (PLT32, which
 * we resolve like PC32 but through a stub when the callee is out of
 * ±2 GiB), and GOT references (GOTPCREL and the relaxable GOTPCRELX /
 * REX_GOTPCRELX), which we point at a slot we allocate. TLS models are not
 * supported (a patch that touches thread-locals is refused by name). */
#include "arch/arch.h"

#include <elf.h>
#include <string.h>

enum arch_reloc_kind arch_reloc_classify(uint32_t type)
{
        switch (type) {
        case R_X86_64_NONE:
                return ARCH_RELOC_NONE;
        case R_X86_64_64:
        case R_X86_64_PC32:
        case R_X86_64_32:
        case R_X86_64_32S:
        case R_X86_64_PC64:
                return ARCH_RELOC_DIRECT;
        case R_X86_64_PLT32:
                return ARCH_RELOC_BRANCH;
        case R_X86_64_GOTPCREL:
        case R_X86_64_GOTPCRELX:
        case R_X86_64_REX_GOTPCRELX:
                return ARCH_RELOC_GOT;
        case R_X86_64_TLSGD:
        case R_X86_64_TLSLD:
        case R_X86_64_DTPOFF32:
        case R_X86_64_DTPOFF64:
        case R_X86_64_GOTTPOFF:
        case R_X86_64_TPOFF32:
        case R_X86_64_TPOFF64:
        case R_X86_64_GOTPC32_TLSDESC:
        case R_X86_64_TLSDESC_CALL:
                return ARCH_RELOC_TLS;
        default:
                return ARCH_RELOC_UNSUPPORTED;
        }
}

const char *arch_reloc_name(uint32_t type)
{
        static const struct {
                uint32_t type;
                const char *name;
        } names[] = {
                { R_X86_64_NONE, "R_X86_64_NONE" },
                { R_X86_64_64, "R_X86_64_64" },
                { R_X86_64_PC32, "R_X86_64_PC32" },
                { R_X86_64_GOT32, "R_X86_64_GOT32" },
                { R_X86_64_PLT32, "R_X86_64_PLT32" },
                { R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL" },
                { R_X86_64_32, "R_X86_64_32" },
                { R_X86_64_32S, "R_X86_64_32S" },
                { R_X86_64_PC64, "R_X86_64_PC64" },
                { R_X86_64_GOTPCRELX, "R_X86_64_GOTPCRELX" },
                { R_X86_64_REX_GOTPCRELX, "R_X86_64_REX_GOTPCRELX" },
                { R_X86_64_TLSGD, "R_X86_64_TLSGD" },
                { R_X86_64_TLSLD, "R_X86_64_TLSLD" },
                { R_X86_64_GOTTPOFF, "R_X86_64_GOTTPOFF" },
                { R_X86_64_TPOFF32, "R_X86_64_TPOFF32" },
                { R_X86_64_GOTOFF64, "R_X86_64_GOTOFF64" },
                { R_X86_64_GOTPC32, "R_X86_64_GOTPC32" },
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (names[i].type == type)
                        return names[i].name;
        return "R_X86_64_(unknown)";
}

static int put32(uint8_t *loc, int64_t v, bool is_signed)
{
        if (is_signed ? (v < INT32_MIN || v > INT32_MAX) : ((uint64_t)v > UINT32_MAX))
                return -ERANGE;
        uint32_t u = (uint32_t)v;
        memcpy(loc, &u, 4);
        return 0;
}

int arch_reloc_apply(uint32_t type, uint8_t *loc, uint64_t place, uint64_t value)
{
        switch (type) {
        case R_X86_64_NONE:
                return 0;
        case R_X86_64_64:
                memcpy(loc, &value, 8);
                return 0;
        case R_X86_64_PC64: {
                uint64_t v = value - place;
                memcpy(loc, &v, 8);
                return 0;
        }
        case R_X86_64_32:
                return put32(loc, (int64_t)value, false);
        case R_X86_64_32S:
                return put32(loc, (int64_t)value, true);
        case R_X86_64_PC32:
        case R_X86_64_PLT32:
        case R_X86_64_GOTPCREL:
        case R_X86_64_GOTPCRELX:
        case R_X86_64_REX_GOTPCRELX:
                return put32(loc, (int64_t)(value - place), true);
        default:
                return -EOPNOTSUPP;
        }
}

size_t arch_reloc_width(uint32_t type)
{
        switch (type) {
        case R_X86_64_NONE:
                return 0;
        case R_X86_64_64:
        case R_X86_64_PC64:
                return 8;
        default:
                return 4;
        }
}

void arch_reloc_span(uint32_t type, struct arch_reloc_span *ret)
{
        *ret = (struct arch_reloc_span){ .before = 0, .width = arch_reloc_width(type) };
        switch (type) {
        case R_X86_64_PC32:
        case R_X86_64_PLT32:
        case R_X86_64_GOTPCREL:
        case R_X86_64_GOTPC32_TLSDESC:
                ret->bias = 4;
                break;
        case R_X86_64_GOTPCRELX:
        case R_X86_64_REX_GOTPCRELX:
        case R_X86_64_GOTTPOFF:
                /* mov foo@GOTPCREL(%rip), %reg may become lea or mov $imm;
                 * call/jmp *foo@GOTPCREL(%rip) may become addr32 call foo:
                 * REX prefix, opcode and ModRM (ld's relaxation). */
                ret->before = 3;
                ret->bias = 4;
                break;
        case R_X86_64_TLSGD:
                /* data16 lea x@tlsgd(%rip), %rdi; data16 data16 rex64
                 * call __tls_get_addr: 16 bytes, rewritten whole (GD->LE/IE). */
                ret->before = 4;
                ret->width = 12;
                ret->bias = 4;
                break;
        case R_X86_64_TLSLD:
                /* lea x@tlsld(%rip), %rdi; call __tls_get_addr: 12 bytes. */
                ret->before = 3;
                ret->width = 9;
                ret->bias = 4;
                break;
        case R_X86_64_TLSDESC_CALL:
                ret->width = 2; /* call *(%rax) may become xchg %ax,%ax */
                break;
        case R_X86_64_PC64:
                ret->bias = 0;
                break;
        default:
                break;
        }
}

size_t arch_stub_size(void)
{
        return 14; /* jmp *0(%rip); .quad target */
}

uint32_t arch_reloc_irelative(void)
{
        return R_X86_64_IRELATIVE;
}
