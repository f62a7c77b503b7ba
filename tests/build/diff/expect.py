#!/usr/bin/env python3
# Checks one list line of a golden case's `expect` file (see run.sh) against
# the patch (`liveup inspect --json` output) and the deployed program,
# whose ELF symbol table it reads itself (64-bit little-endian only).
#
#   expect.py EXPECT KIND JSON BIN
#
# KIND is one of
#   replaced  the patch's "functions" are exactly the `replaced:` names,
#             plus any of the `optional:` ones; each is a function of BIN
#             (its "address", when given, is the one BIN's symbol has)
#   why       every entry of "functions" says why it is there
#   new       "new_functions" are exactly the `new:` names
#   newdata   "new_data" are exactly the `newdata:` names
#   absent    no entry of "functions" is one of the `absent:` names
#   has       BIN has a symbol for each `has:` name (what gcc emitted)
#   lacks     BIN has no symbol of any `lacks:` name
# (JSON is not read for has and lacks: pass "-".)
#
# A name may end in "*" (any suffix: gcc's clone numbers) and may be
# NAME@FILE: the local symbol NAME of the source file FILE (BIN's symbol
# table groups a file's local symbols after its STT_FILE symbol), matched
# in the patch by address. Exits 0 when the check holds; otherwise 1, with
# one line on stderr saying why.
import fnmatch
import json
import struct
import sys

STT_FUNC, STT_OBJECT, STT_FILE = 2, 1, 4
LISTS = ("replaced", "optional", "new", "newdata", "absent", "has", "lacks")


def fail(msg):
    sys.stderr.write("expect.py: %s\n" % msg)
    sys.exit(1)


def symbols(path):
    """(name, value, size, bind, type, shndx, file) of BIN's .symtab."""
    try:
        with open(path, "rb") as f:
            d = f.read()
    except OSError as e:
        fail("%s: %s" % (path, e))
    if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
        fail("%s: not a 64-bit little-endian ELF file" % path)
    shoff = struct.unpack_from("<Q", d, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", d, 0x3a)
    secs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]

    def cstr(off):
        return d[off:d.index(b"\0", off)].decode()

    out = []
    for s in secs:
        if s[1] != 2:  # SHT_SYMTAB
            continue
        strtab = secs[s[6]]
        cur = None
        for i in range(1, s[5] // 24):
            name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", d,
                                                                        s[4] + i * 24)
            name = cstr(strtab[4] + name)
            bind, typ = info >> 4, info & 0xf
            if typ == STT_FILE:
                cur = name
                continue
            out.append((name, value, size, bind, typ, shndx, cur if bind == 0 else None))
    if not out:
        fail("%s: no symbol table" % path)
    return out


def parse_expect(path):
    lists = {k: [] for k in LISTS}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            key, val = line.split(":", 1)
            if key in lists:
                lists[key] += val.split()
    return lists


def name_matches(pattern, name):
    if pattern.endswith("*"):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern


def split(pattern):
    if "@" in pattern:
        return pattern.split("@", 1)
    return pattern, None


def file_matches(file, want):
    return file is not None and (file == want or file.endswith("/" + want))


def addresses(syms, name, file):
    """Addresses of BIN's defined functions and objects matching name (in file)."""
    return {s[1] for s in syms
            if s[4] in (STT_FUNC, STT_OBJECT) and s[5] != 0 and name_matches(name, s[0])
            and (file is None or file_matches(s[6], file))}


def entry_matches(pattern, entry, syms):
    """A "functions" entry (a dict) is the function the pattern names."""
    name, file = split(pattern)
    if not name_matches(name, entry.get("name", "")):
        return False
    if file is None:
        return True
    if "address" not in entry:
        fail("'%s' replaced, but the patch gives no address to tell which file's it is"
             % entry["name"])
    return int(entry["address"], 16) in addresses(syms, entry["name"], file)


def exact_set(what, entries, patterns, optional, match):
    """entries are exactly patterns (each matched at least once), plus optional ones."""
    for e in entries:
        if not any(match(p, e) for p in patterns + optional):
            fail("%s: unexpected %s (expected %s%s)" % (
                what, describe(e), " ".join(patterns) or "none",
                (", optionally " + " ".join(optional)) if optional else ""))
    for p in patterns:
        if not any(match(p, e) for e in entries):
            fail("%s: %s missing (got %s)" % (
                what, p, " ".join(describe(e) for e in entries) or "none"))


def describe(e):
    if isinstance(e, dict):
        return "%s@%s" % (e.get("name"), e.get("address")) if "address" in e else str(e.get("name"))
    return str(e)


def names_list(d, key):
    v = d.get(key)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        fail("\"%s\" is not a list of names: %s" % (key, json.dumps(v)[:300]))
    return v


def functions(d):
    v = d.get("functions")
    if not isinstance(v, list) or not all(isinstance(x, dict) and isinstance(x.get("name"), str)
                                          for x in v):
        fail("\"functions\" is not a list of objects with a name: %s" % json.dumps(v)[:300])
    return v


def main():
    if len(sys.argv) != 5:
        fail("usage: expect.py EXPECT KIND JSON BIN")
    lists = parse_expect(sys.argv[1])
    kind, bin_path = sys.argv[2], sys.argv[4]
    syms = symbols(bin_path)
    d = None
    if kind not in ("has", "lacks"):
        try:
            with open(sys.argv[3]) as f:
                d = json.load(f)
        except Exception as e:
            fail("%s: not one JSON document: %s" % (sys.argv[3], e))

    if kind == "replaced":
        funcs = functions(d)
        exact_set("replaced", funcs, lists["replaced"], lists["optional"],
                  lambda p, e: entry_matches(p, e, syms))
        for e in funcs:
            known = addresses(syms, e["name"], None)
            if not known:
                fail("replaced %s is not a function of %s" % (e["name"], bin_path))
            if "address" in e and int(e["address"], 16) not in known:
                fail("replaced %s at %s, but %s has it at %s" % (
                    e["name"], e["address"], bin_path,
                    " ".join("0x%x" % a for a in sorted(known))))
    elif kind == "why":
        # "why: NAME TEXT": NAME's reason contains TEXT; every entry has one.
        wants = []
        with open(sys.argv[1]) as f:
            for line in f:
                if line.startswith("why:"):
                    name, _, text = line[4:].strip().partition(" ")
                    wants.append((name, text.strip()))
        for e in functions(d):
            if not isinstance(e.get("why"), str) or not e["why"].strip():
                fail("%s: no \"why\" (got %s)" % (e["name"], json.dumps(e.get("why"))))
            for name, text in wants:
                if e["name"] == name and text not in e["why"]:
                    fail("%s: why is %s, expected it to say %s" % (
                        name, json.dumps(e["why"]), json.dumps(text)))
    elif kind in ("new", "newdata"):
        key = "new_functions" if kind == "new" else "new_data"
        exact_set(kind, names_list(d, key), lists[kind], [], name_matches)
    elif kind == "absent":
        for e in functions(d):
            for p in lists["absent"]:
                if entry_matches(p, e, syms):
                    fail("%s replaced, but it must not be (it is %s)" % (describe(e), p))
    elif kind == "has":
        for p in lists["has"]:
            name, file = split(p)
            if not addresses(syms, name, file):
                fail("%s has no symbol %s: gcc no longer emits what this case is about"
                     % (bin_path, p))
    elif kind == "lacks":
        for p in lists["lacks"]:
            found = [s[0] for s in syms if name_matches(p, s[0])]
            if found:
                fail("%s has a symbol %s (%s): gcc no longer emits what this case is about"
                     % (bin_path, p, " ".join(found)))
    else:
        fail("unknown check '%s'" % kind)


main()
