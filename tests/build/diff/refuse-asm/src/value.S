/* A function written in assembler without .type or .size: the object has
 * no function symbol for it, only a label. */
        .text
        .globl asm_value
asm_value:
        movl $1, %eax
        ret
        .section .note.GNU-stack,"",@progbits
