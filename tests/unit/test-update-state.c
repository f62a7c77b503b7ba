/* Unit tests of the live-update state machine (src/update/state.c): the
 * forward path, every cancel path, and that every other (state, event)
 * pair is refused (returns -EINVAL, leaves the output untouched). */
#include "tap.h"

#include "update/state.h"

TEST(forward_path)
{
        static const enum upd_event path[] = { UPD_EVENT_UPDATE, UPD_EVENT_FROZEN,
                                               UPD_EVENT_READY, UPD_EVENT_FINISH,
                                               UPD_EVENT_DONE };
        static const enum upd_state want[] = { UPD_STATE_PREPARED, UPD_STATE_FROZEN,
                                               UPD_STATE_UPDATED, UPD_STATE_FINISHED,
                                               UPD_STATE_NORMAL };
        enum upd_state s = UPD_STATE_NORMAL;

        for (size_t i = 0; i < ELEMENTSOF(path); i++) {
                CHECK_OK(upd_state_next(s, path[i], &s));
                CHECK(s == want[i]);
        }
}

TEST(cancel_paths)
{
        enum upd_state from[] = { UPD_STATE_PREPARED, UPD_STATE_FROZEN, UPD_STATE_UPDATED };
        enum upd_state s;

        for (size_t i = 0; i < ELEMENTSOF(from); i++) {
                CHECK_OK(upd_state_next(from[i], UPD_EVENT_CANCEL, &s));
                CHECK(s == UPD_STATE_NORMAL);
        }
        s = UPD_STATE_UPDATED;
        CHECK_ERR(upd_state_next(UPD_STATE_NORMAL, UPD_EVENT_CANCEL, &s), EINVAL);
        CHECK_ERR(upd_state_next(UPD_STATE_FINISHED, UPD_EVENT_CANCEL, &s), EINVAL);
        CHECK(s == UPD_STATE_UPDATED); /* untouched */
}

TEST(exactly_eight_transitions)
{
        int allowed = 0;
        enum upd_state s;

        for (unsigned st = 0; st < _UPD_STATE_MAX; st++)
                for (unsigned e = 0; e < _UPD_EVENT_MAX; e++)
                        if (upd_state_next((enum upd_state)st, (enum upd_event)e, &s) == 0)
                                allowed++;
        CHECK(allowed == 8);
        /* A second update while one runs is refused by the table. */
        for (unsigned st = 1; st < _UPD_STATE_MAX; st++)
                CHECK_ERR(upd_state_next((enum upd_state)st, UPD_EVENT_UPDATE, &s), EINVAL);
        /* Finish only from updated. */
        CHECK_ERR(upd_state_next(UPD_STATE_FROZEN, UPD_EVENT_FINISH, &s), EINVAL);
        CHECK_ERR(upd_state_next(UPD_STATE_PREPARED, UPD_EVENT_READY, &s), EINVAL);
}

TEST(names)
{
        enum upd_state s;

        CHECK_STREQ(upd_state_name(UPD_STATE_NORMAL), "normal");
        CHECK_STREQ(upd_state_name(UPD_STATE_FINISHED), "finished");
        CHECK_STREQ(upd_state_name(99), "?");
        CHECK_STREQ(upd_event_name(UPD_EVENT_CANCEL), "cancel");
        CHECK_OK(upd_state_from_name("frozen", &s));
        CHECK(s == UPD_STATE_FROZEN);
        CHECK_ERR(upd_state_from_name("thawed", &s), EINVAL);
        CHECK(upd_state_busy(UPD_STATE_UPDATED) && !upd_state_busy(UPD_STATE_NORMAL));
}

TAP_MAIN()
