# The answer filter of tests/realworld/lib.sh: reads the utf8-server's
# answers on stdin; counts and checks the load's ("L<n> OK 200", n = 1, 2,
# ... in order: anything else is a wrong, lost or reordered answer); a
# sync request "S" is answered "S loads=N bad=M"; every other line goes
# to REPLIES (a FIFO, opened first) as it is, at once.
#   python3 answers.py REPLIES
import sys

replies = open(sys.argv[1], "w", buffering=1)
n = bad = 0
for line in sys.stdin:
    line = line.rstrip("\n")
    tag = line.split(" ", 1)[0]
    if tag.startswith("L") and tag[1:].isdigit():
        n += 1
        if line != "L%d OK 200" % n:
            bad += 1
            if bad <= 3:
                sys.stderr.write("bad load answer: %s\n" % line[:120])
    elif tag == "S":
        replies.write("S loads=%d bad=%d\n" % (n, bad))
    else:
        replies.write(line + "\n")
