# The answer filter of tests/realworld/lib.sh: reads the utf8-server's
# answers on stdin; counts and checks the load's ("L<n> OK 200", n = 1, 2,
# ... in order: anything else is a wrong, lost or reordered answer); a
# sync request "S" is answered "S loads=N bad=M" at once, a wait request
# "W<k>" ("W12") "W<k> loads=N bad=M" as soon as k load answers have come
# (N >= k), or after WAIT seconds without them (N < k: the load stalled);
# every other line goes to REPLIES (a FIFO, opened first) as it is, at
# once. A wait is held by blocking on the server's output (select), not
# by polling; one request at a time is outstanding (lib.sh's `ask`).
#   python3 answers.py REPLIES
import os
import select
import sys
import time

WAIT = 10.0  # seconds a "W<k>" is held at most

replies = open(sys.argv[1], "w", buffering=1)
n = bad = 0
wait = None  # the held wait request: (tag, k, deadline)


def counts(tag):
    replies.write("%s loads=%d bad=%d\n" % (tag, n, bad))


def release(force):
    global wait
    if wait and (force or n >= wait[1]):
        counts(wait[0])
        wait = None


def answer(line):
    global n, bad, wait
    tag = line.split(" ", 1)[0]
    if tag.startswith("L") and tag[1:].isdigit():
        n += 1
        if line != "L%d OK 200" % n:
            bad += 1
            if bad <= 3:
                sys.stderr.write("bad load answer: %s\n" % line[:120])
        release(False)
    elif tag == "S":
        counts(tag)
    elif tag.startswith("W") and tag[1:].isdigit():
        wait = (tag, int(tag[1:]), time.monotonic() + WAIT)
        release(False)
    else:
        replies.write(line + "\n")


fd = sys.stdin.fileno()
pending = b""
while True:
    timeout = None if wait is None else max(0.0, wait[2] - time.monotonic())
    if not select.select([fd], [], [], timeout)[0]:
        release(True)  # the deadline passed
        continue
    data = os.read(fd, 65536)
    if not data:
        break
    lines = (pending + data).split(b"\n")
    pending = lines.pop()
    for line in lines:
        answer(line.decode("utf-8", "replace"))
if pending:
    answer(pending.decode("utf-8", "replace"))
release(True)  # the server's output ended
