#!/usr/bin/env python3
"""Sum TAP results from a Meson testlog.json; print "N passed, N failed"."""
import json
import re
import sys

passed = failed = skipped = 0
failed_names = []
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        out = t.get("stdout") or ""
        seen = 0
        for l in out.splitlines():
            m = re.match(r"^(not ok|ok)\b\s*\d*\s*(.*)$", l)
            if not m:
                continue
            seen += 1
            desc = m.group(2)
            if m.group(1) == "ok":
                if re.search(r"#\s*SKIP", desc, re.I):
                    skipped += 1
                else:
                    passed += 1
            else:
                failed += 1
                failed_names.append(t["name"] + ": " + desc)
        if seen == 0 or (t.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP") and
                         not any(n.startswith(t["name"] + ":") for n in failed_names)):
            # A program that crashed or printed no TAP: one failure.
            if t.get("result") in ("OK", "SKIP"):
                if seen == 0:
                    passed += 1
            else:
                failed += 1
                failed_names.append(t["name"] + ": " + str(t.get("result")))
for n in failed_names:
    print("FAILED: " + n)
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
