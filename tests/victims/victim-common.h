/* Helpers shared by the victim programs: argument parsing, "ready" and
 * report lines written with write(2) (never buffered, so a driver reading
 * a pipe sees them at once), and the control loop of the main thread.
 *
 * The control loop serves two event sources:
 * - stdin, when it is a pipe, a socket or a terminal: one command per line
 *   ("report", "quit", or victim-specific ones); end of file ends the loop.
 *   Any other stdin (/dev/null, as a non-interactive shell gives to a
 *   background job, or a regular file) is ignored, so the victim then runs
 *   until it gets SIGTERM.
 * - SIGTERM/SIGINT, read through a signalfd. victim_block_term() must run
 *   in the main thread before any thread is created, so that every thread
 *   inherits the blocked mask and the signal waits for the signalfd.
 *
 * Every victim dies with the process that started it (PR_SET_PDEATHSIG,
 * SIGKILL): a test that crashes or times out leaves no busy victim
 * spinning on the machine's two CPUs. So a driver must stay alive while
 * its victim is used: do not start a victim in a subshell that exits
 * (`pid=$(victim & echo $!)` kills it at once). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum victim_end {
        VICTIM_END_QUIT, /* "quit" on stdin */
        VICTIM_END_EOF,  /* stdin closed */
        VICTIM_END_TERM, /* SIGTERM or SIGINT */
};

/* Called for each command line other than "quit" (without the newline). */
typedef void (*victim_command_fn)(const char *cmd, void *userdata);

/* Get SIGKILL when the parent exits (see above); exits at once when the
 * parent is already gone. Call first thing in main(). */
void victim_die_with_parent(void);

/* Block SIGTERM and SIGINT in the calling thread (see above). */
void victim_block_term(void);

/* Parse a decimal number in [min, max]; exits with status 2 and a message
 * naming `what` on junk. */
long victim_parse_long(const char *what, const char *s, long min, long max);

/* Write a whole formatted line to fd (retrying on EINTR and short
 * writes). Errors are ignored: a driver that closed its end does not
 * care. */
__attribute__((format(printf, 2, 3))) void victim_printf(int fd, const char *fmt, ...);

/* Serve stdin and SIGTERM until "quit", end of file or the signal.
 * `eintr`, when not NULL, is incremented for every EINTR the loop's own
 * blocking calls see (a caller whose main thread blocks every signal with
 * a handler treats those as spurious). */
enum victim_end victim_control_loop(victim_command_fn fn, void *userdata, atomic_ulong *eintr);

/* Number of threads of this process (entries of /proc/self/task). */
unsigned long victim_count_threads(void);

/* True when thread `tid` of this process sits in a syscall: the first
 * field of /proc/self/task/TID/syscall is the syscall number ("running"
 * or -1 otherwise). Victims use it to say "ready" only once their blocked
 * threads really block. */
bool victim_in_syscall(int tid);
