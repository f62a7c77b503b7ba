/* The transition function of state.h: a lookup in UPD_TRANSITIONS, no
 * other rules. Pure; the keeper applies the result and logs it. */
#include "update/state.h"

#include <string.h>

static const char *const state_names[] = {
#define X(s, n, str) [n] = str,
        UPD_STATES(X)
#undef X
};

static const char *const event_names[] = {
#define X(e, str) [UPD_EVENT_##e] = str,
        UPD_EVENTS(X)
#undef X
};

const char *upd_state_name(unsigned state)
{
        return state < ELEMENTSOF(state_names) ? state_names[state] : "?";
}

const char *upd_event_name(unsigned event)
{
        return event < ELEMENTSOF(event_names) ? event_names[event] : "?";
}

int upd_state_from_name(const char *s, enum upd_state *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                if (s && strcmp(s, state_names[i]) == 0) {
                        *ret = (enum upd_state)i;
                        return 0;
                }
        return -EINVAL;
}

int upd_state_next(enum upd_state from, enum upd_event event, enum upd_state *ret)
{
        static const struct {
                enum upd_state from;
                enum upd_event event;
                enum upd_state to;
        } table[] = {
#define X(f, e, t) { UPD_STATE_##f, UPD_EVENT_##e, UPD_STATE_##t },
                UPD_TRANSITIONS(X)
#undef X
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].from == from && table[i].event == event) {
                        *ret = table[i].to;
                        return 0;
                }
        return -EINVAL;
}
