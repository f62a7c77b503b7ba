#!/usr/bin/env python3
# Independent checks for the build tests: reads ELF files itself (64-bit
# little-endian only), so what liveup reports is compared with what the
# files say, not with liveup's own ELF code.
#
#   lpo.py funcs JSON TARGET NAME...   the patch (inspect --json output)
#                                      replaces exactly NAME..., each with
#                                      TARGET's address, size, binding,
#                                      first bytes and FNV-1a 64 hash
#   lpo.py check JSON EXPR             EXPR (Python, sees `d`) is true
#   lpo.py patch IN OUT OFFSET HEX     copy IN to OUT with the bytes HEX
#                                      written at OFFSET inside .liveup
#   lpo.py meta-size FILE              size of FILE's .liveup section
#   lpo.py build-id FILE               FILE's GNU build-id, in hex
import json
import struct
import sys


def fail(msg):
    sys.stderr.write("lpo.py: %s\n" % msg)
    sys.exit(1)


class Elf:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
            fail("%s: not a 64-bit little-endian ELF file" % path)
        (self.phoff, self.shoff) = struct.unpack_from("<QQ", d, 0x20)
        (self.phentsize, self.phnum, self.shentsize, self.shnum,
         self.shstrndx) = struct.unpack_from("<HHHHH", d, 0x36)
        self.sections = []
        for i in range(self.shnum):
            fields = struct.unpack_from("<IIQQQQIIQQ", d, self.shoff + i * self.shentsize)
            self.sections.append(fields)
        shstr = self.sections[self.shstrndx]
        self.names = [self.cstr(shstr[4] + s[0]) for s in self.sections]

    def cstr(self, off):
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode()

    def section(self, name):
        for i, n in enumerate(self.names):
            if n == name:
                return self.sections[i]
        return None

    def symbols(self):
        """(name, value, size, bind, type, shndx) of .symtab."""
        out = []
        for s in self.sections:
            if s[1] != 2:  # SHT_SYMTAB
                continue
            strtab = self.sections[s[6]]
            for i in range(1, s[5] // 24):
                (name, info, _other, shndx, value, size) = struct.unpack_from(
                    "<IBBHQQ", self.data, s[4] + i * 24)
                out.append((self.cstr(strtab[4] + name), value, size, info >> 4,
                            info & 0xf, shndx))
        return out

    def read_vaddr(self, addr, size):
        for i in range(self.phnum):
            (ptype, _flags, off, vaddr, _paddr, filesz, _memsz, _align) = struct.unpack_from(
                "<IIQQQQQQ", self.data, self.phoff + i * self.phentsize)
            if ptype == 1 and vaddr <= addr and addr + size <= vaddr + filesz:
                o = off + addr - vaddr
                return self.data[o:o + size]
        fail("0x%x+%d is not in a PT_LOAD" % (addr, size))


def fnv1a64(b):
    h = 0xcbf29ce484222325
    for c in b:
        h ^= c
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return h


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:
        fail("%s: not one JSON document: %s" % (path, e))


def cmd_funcs(args):
    d = load_json(args[0])
    target = Elf(args[1])
    want = sorted(args[2:])
    got = sorted(f["name"] for f in d["functions"])
    if got != want:
        fail("replaced %s, expected %s" % (got, want))
    syms = target.symbols()
    for f in d["functions"]:
        cands = [s for s in syms if s[0] == f["name"] and s[4] == 2 and s[5] != 0]
        glob = [s for s in cands if s[3] != 0]
        s = (glob or cands or [None])[0]
        if s is None:
            fail("%s: not a function of %s" % (f["name"], args[1]))
        if int(f["address"], 16) != s[1] or f["size"] != s[2]:
            fail("%s: address %s size %d, the target says 0x%x size %d" %
                 (f["name"], f["address"], f["size"], s[1], s[2]))
        if f["static"] != (s[3] == 0):
            fail("%s: static=%s but its binding is %d" % (f["name"], f["static"], s[3]))
        code = target.read_vaddr(s[1], s[2])
        if int(f["hash"], 16) != fnv1a64(code):
            fail("%s: hash %s, the bytes hash to 0x%016x" % (f["name"], f["hash"],
                                                              fnv1a64(code)))
        entry = code[:16].ljust(16, b"\0").hex()
        if f.get("entry", entry) != entry:
            fail("%s: entry %s, the bytes are %s" % (f["name"], f["entry"], entry))


def cmd_check(args):
    d = load_json(args[0])
    if not eval(args[1], {"d": d}):
        fail("not true: %s\n%s" % (args[1], json.dumps(d, indent=1)[:2000]))


def cmd_patch(args):
    e = Elf(args[0])
    s = e.section(".liveup")
    if s is None:
        fail("%s: no .liveup section" % args[0])
    off, new = int(args[2], 0), bytes.fromhex(args[3])
    if off + len(new) > s[5]:
        fail("offset %d is outside .liveup (%d bytes)" % (off, s[5]))
    data = bytearray(e.data)
    data[s[4] + off:s[4] + off + len(new)] = new
    with open(args[1], "wb") as f:
        f.write(data)


def cmd_meta_size(args):
    s = Elf(args[0]).section(".liveup")
    if s is None:
        fail("%s: no .liveup section" % args[0])
    print(s[5])


def cmd_build_id(args):
    e = Elf(args[0])
    for i, s in enumerate(e.sections):
        if s[1] != 7:  # SHT_NOTE
            continue
        off, end = s[4], s[4] + s[5]
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", e.data, off)
            name = e.data[off + 12:off + 12 + namesz]
            desc_off = off + 12 + ((namesz + 3) & ~3)
            if ntype == 3 and name == b"GNU\0":  # NT_GNU_BUILD_ID
                print(e.data[desc_off:desc_off + descsz].hex())
                return
            off = desc_off + ((descsz + 3) & ~3)
    fail("%s: no build-id" % args[0])


cmds = {"funcs": cmd_funcs, "check": cmd_check, "patch": cmd_patch, "meta-size": cmd_meta_size,
        "build-id": cmd_build_id}
if len(sys.argv) < 3 or sys.argv[1] not in cmds:
    fail("usage: lpo.py funcs|check|patch|meta-size|build-id ARGS...")
cmds[sys.argv[1]](sys.argv[2:])
