/* Logging to stderr; see log.h for the rules on who logs what. */
#include "log.h"

#include <stdarg.h>
#include <string.h>

static enum log_level current_level = LOG_LEVEL_INFO;
static const char *program = "liveup";

void log_set_level(enum log_level level)
{
        current_level = level;
}

enum log_level log_get_level(void)
{
        return current_level;
}

void log_set_program(const char *name)
{
        program = name;
}

void log_setup_from_env(void)
{
        const char *e = getenv("LIVEUP_DEBUG");

        if (e && *e && strcmp(e, "0") != 0)
                current_level = LOG_LEVEL_DEBUG;
}

void log_full(enum log_level level, const char *fmt, ...)
{
        char buf[4096];
        va_list ap;
        int saved = errno;

        if (level > current_level)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s%s\n", program,
                level == LOG_LEVEL_WARNING ? "warning: "
                : level == LOG_LEVEL_DEBUG ? "debug: "
                                           : "",
                buf);
        errno = saved;
}
