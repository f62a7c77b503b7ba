/* What the verbs of the liveup command share: exit statuses, the entry
 * point of each verb (one file per verb: stacks.c, ...) and small helpers
 * for option parsing and messages. */
#pragma once

#include "base/macro.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>

/* Exit statuses (DESIGN.md: the contract tests and docs rely on). */
enum {
        EXIT_OK = 0,
        EXIT_REFUSED = 1, /* refused or failed safely: the target is as it was */
        EXIT_USAGE = 2,   /* bad usage or bad input */
};

/* A verb gets argv with argv[0] = its own name, and returns an exit
 * status. Its usage goes to `f` (stdout for --help, never stderr). */
struct verb {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv);
        void (*usage)(FILE *f);
};

int verb_stacks(int argc, char **argv);
void verb_stacks_usage(FILE *f);
int verb_apply(int argc, char **argv);
void verb_apply_usage(FILE *f);
int verb_revert(int argc, char **argv);
void verb_revert_usage(FILE *f);
int verb_patches(int argc, char **argv);
void verb_patches_usage(FILE *f);
int verb_build(int argc, char **argv);
void verb_build_usage(FILE *f);
int verb_inspect(int argc, char **argv);
void verb_inspect_usage(FILE *f);
int verb_run(int argc, char **argv);
void verb_run_usage(FILE *f);
int verb_update(int argc, char **argv);
void verb_update_usage(FILE *f);
int verb_status(int argc, char **argv);
void verb_status_usage(FILE *f);
int verb_finish(int argc, char **argv);
void verb_finish_usage(FILE *f);
int verb_cancel(int argc, char **argv);
void verb_cancel_usage(FILE *f);

struct upd_msg_builder;
/* Live-update verbs: connect to the keeper of `name`, send the built
 * request, print its PROGRESS lines on stderr, and return EXIT_OK when
 * the RESULT says done, else log its one line and return EXIT_REFUSED
 * (also when the keeper cannot be reached or says nothing within
 * timeout_ms). */
int cli_keeper_call(const char *name, struct upd_msg_builder *b, int timeout_ms);
/* The one operand of a verb at argv[optind] (getopt done), `what` naming
 * it in the error ("PID", "FILE.lpo"): 0, or log a usage error and return
 * EXIT_USAGE. */
int cli_one_operand(const char *verb, const char *what, int argc, char **argv,
                    const char **ret);
/* A verb whose only operand is NAME and whose request is one message of
 * `type` (an enum upd_msg_type) with no attribute: finish, cancel. */
int cli_keeper_simple_verb(const char *verb, int argc, char **argv, void (*usage)(FILE *f),
                           unsigned type, int timeout_ms);

/* Report a getopt_long() failure (called with opterr = 0, on '?' or ':')
 * as one line, naming the verb, and return EXIT_USAGE. */
int cli_bad_option(const char *verb, int c, char **argv);

/* Parse a --timeout value (seconds, > 0) into *ret; on junk, log one line
 * naming the verb and return EXIT_USAGE (else 0). */
int cli_parse_timeout(const char *verb, const char *arg, double *ret);

/* While a target is held, Ctrl-C must not cut an operation in the middle
 * (threads left stopped, or running injected code with our registers):
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT wait until cli_release_signals(). */
void cli_hold_signals(sigset_t *ret_saved);
void cli_release_signals(const sigset_t *saved);

/* The probe figures of a transition (see livepatch/transition.h), added
 * to the JSON object of one apply or revert: probes, probes_busy,
 * probe_held_max_us. In apply.c. */
struct json_object;
struct lp_transition_result;
void cli_json_add_probes(struct json_object *jo, const struct lp_transition_result *t);

/* strerror(-r) starting lowercase, as messages do ("no such process"). */
const char *cli_strerror(int r);
