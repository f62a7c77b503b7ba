/* Logging at the edges.
 *
 * Libraries return codes and at most call log_debug(); the CLI and the
 * keeper decide what the user sees and print it once with log_error().
 * Messages go to stderr as "liveup: <message>" (STYLE.md: lowercase, names
 * the object and the reason, no final period).
 *
 * log_level is process-global: set it once from main() (--verbose, or
 * LIVEUP_DEBUG=1 in the environment). */
#pragma once

#include "macro.h"

enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Reads LIVEUP_DEBUG from the environment. */
void log_setup_from_env(void);
void log_set_program(const char *name);

_printf_(2, 3) void log_full(enum log_level level, const char *fmt, ...);

#define log_error(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_full(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
        do {                                                                   \
                if (_unlikely_(log_get_level() >= LOG_LEVEL_DEBUG))            \
                        log_full(LOG_LEVEL_DEBUG, __VA_ARGS__);                \
        } while (0)
