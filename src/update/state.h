/* The live-update state machine of one service (docs/internals/update.md,
 * "State machine"), as data: states, events and the allowed transitions
 * come from X-macro tables, so names, numbers and rules cannot drift.
 *
 *     normal --update--> prepared --frozen--> frozen --ready--> updated
 *     updated --finish--> finished --done--> normal
 *     prepared | frozen | updated --cancel--> normal
 *
 * The numbers of the states travel in PROGRESS and STATUS_REPLY. */
#pragma once

#include "base/macro.h"

#define UPD_STATES(X)                                                          \
        X(NORMAL, 0, "normal")                                                 \
        X(PREPARED, 1, "prepared")                                             \
        X(FROZEN, 2, "frozen")                                                 \
        X(UPDATED, 3, "updated")                                               \
        X(FINISHED, 4, "finished")

enum upd_state {
#define X(s, n, str) UPD_STATE_##s = n,
        UPD_STATES(X)
#undef X
        _UPD_STATE_MAX,
};

#define UPD_EVENTS(X)                                                          \
        X(UPDATE, "update")  /* an update was asked for and passed the checks */ \
        X(FROZEN, "frozen")  /* the old version is frozen (or needs no freeze) */ \
        X(READY, "ready")    /* the new version serves */                      \
        X(FINISH, "finish")  /* commit: the old version is told to go */       \
        X(DONE, "done")      /* the old version has exited */                  \
        X(CANCEL, "cancel")  /* roll back: new killed, old thawed */

enum upd_event {
#define X(e, str) UPD_EVENT_##e,
        UPD_EVENTS(X)
#undef X
        _UPD_EVENT_MAX,
};

/* X(FROM, EVENT, TO) */
#define UPD_TRANSITIONS(X)                                                     \
        X(NORMAL, UPDATE, PREPARED)                                            \
        X(PREPARED, FROZEN, FROZEN)                                            \
        X(FROZEN, READY, UPDATED)                                              \
        X(UPDATED, FINISH, FINISHED)                                           \
        X(FINISHED, DONE, NORMAL)                                              \
        X(PREPARED, CANCEL, NORMAL)                                            \
        X(FROZEN, CANCEL, NORMAL)                                              \
        X(UPDATED, CANCEL, NORMAL)

const char *upd_state_name(unsigned state); /* "?" when out of range */
const char *upd_event_name(unsigned event);
/* -EINVAL when not a state name. */
int upd_state_from_name(const char *s, enum upd_state *ret);

/* The state `event` leads to from `from`; -EINVAL when the table has no
 * such transition (the caller refuses the request, nothing changes). */
int upd_state_next(enum upd_state from, enum upd_event event, enum upd_state *ret);

/* True while an update is under way (anything but normal). */
static inline bool upd_state_busy(enum upd_state s)
{
        return s != UPD_STATE_NORMAL;
}
