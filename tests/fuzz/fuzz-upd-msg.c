/* libFuzzer target for the live-update message parser (upd_msg_parse,
 * src/update/proto.c) and the NOTIFY_SOCKET parser (upd_notify_parse):
 * any input must give a message or a refusal with a reason, never a
 * crash, a leak or undefined behaviour. The first byte picks how many
 * fds "came with" the packet (0..2) and which parser runs. Built and run
 * by tests/fuzz/run.sh (clang -fsanitize=fuzzer); not part of `make
 * check`. */
#include "update/notify.h"
#include "update/proto.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct upd_msg m;
        struct errbuf err = {};
        int r;

        if (size < 1)
                return 0;
        if (data[0] & 0x80) {
                struct upd_notify_msg n;
                (void)upd_notify_parse((const char *)data + 1, size - 1, &n);
                return 0;
        }
        r = upd_msg_parse(data + 1, size - 1, data[0] % 3, &m, &err);
        if (r >= 0) {
                /* What callers read must be sane. */
                if (!upd_msg_type_name(m.type))
                        __builtin_trap();
                if (upd_msg_has(&m, UPD_TAG_NAME) && !upd_name_valid(m.name))
                        __builtin_trap();
                for (size_t i = 0; i < m.n_argv; i++)
                        if (!m.argv[i] || !m.argv[i][0])
                                __builtin_trap();
                if (m.n_argv && m.argv[m.n_argv])
                        __builtin_trap();
                for (size_t i = 0; i < m.n_items; i++)
                        if (!upd_name_valid(m.items[i].name))
                                __builtin_trap();
                if (strlen(m.why) >= UPD_TEXT_MAX)
                        __builtin_trap();
                upd_msg_done(&m);
        } else if (!err.msg[0] && r != -ENOMEM)
                __builtin_trap(); /* every refusal says why */
        return 0;
}
