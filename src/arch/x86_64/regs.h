/* x86-64 register set: the kernel's user_regs_struct (NT_PRSTATUS). */
#pragma once

#include <sys/user.h>

struct arch_regs {
        struct user_regs_struct r;
};
