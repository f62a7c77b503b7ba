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
#
# The .liveup metadata, read and written here from its layout
# (src/livepatch/format.h, docs/internals/lpo.md), not with liveup's code:
#   lpo.py meta FILE                   FILE's metadata as JSON, with
#                                      inspect --json's names
#   lpo.py meta-check JSON FILE        inspect --json (JSON) says what FILE
#                                      holds: every metadata field, and
#                                      the new functions and data of its
#                                      symbol table
#   lpo.py rewrite IN OUT CODE         OUT is IN with its metadata rewritten:
#                                      CODE (Python statements) edits `m`,
#                                      the metadata as `meta` prints it
#                                      (plus "header_size", "version"
#                                      when set: forced), and the section
#                                      is written again (version 2 when
#                                      there are bindings, else 1)
import json
import struct
import sys

MAGIC = b"LIVEUP\x1a\x01"
HEADER = "<8sIIIIIIIIIIII64sQ"        # version 1: 128 bytes
HEADER_V1_SIZE = 128
BINDS = "<IIII"                       # version 2: after the version 1 header
FUNC = "<IIQQQ16sII"                  # 56 bytes
BIND = "<IIQII"                       # 24 bytes
FUNC_LOCAL = 1
BIND_FUNC, BIND_DATA, BIND_LOCAL = 1, 2, 4


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


def meta_section(e, path):
    s = e.section(".liveup")
    if s is None:
        fail("%s: no .liveup section" % path)
    return s


def decode_meta(sec):
    """The .liveup bytes as a dict with inspect --json's names."""
    if sec[:8] != MAGIC:
        fail("bad magic")
    (_magic, version, header_size, flags, n_funcs, funcs_off, func_size, strtab_off,
     strtab_size, id_str, name_str, target_str, build_id_len, build_id,
     created) = struct.unpack_from(HEADER, sec, 0)
    n_binds = binds_off = bind_size = 0
    if header_size >= HEADER_V1_SIZE + 16:
        (n_binds, binds_off, bind_size, _r) = struct.unpack_from(BINDS, sec, HEADER_V1_SIZE)
    strtab = sec[strtab_off:strtab_off + strtab_size]

    def string(off):
        return strtab[off:strtab.index(b"\0", off)].decode()

    m = {"format_version": version, "header_size": header_size, "id": string(id_str),
         "name": string(name_str), "target": string(target_str),
         "build_id": build_id[:build_id_len].hex(), "cumulative": bool(flags & 1),
         "created": created, "functions": [], "bindings": []}
    for i in range(n_funcs):
        (name, new, addr, size, h, entry, fflags, why) = struct.unpack_from(
            FUNC, sec, funcs_off + i * func_size)
        m["functions"].append({
            "name": string(name), "replacement": string(new), "address": "0x%016x" % addr,
            "size": size, "hash": "0x%016x" % h, "static": bool(fflags & FUNC_LOCAL),
            "entry": entry.hex(), "why": string(why) if why else None})
    for i in range(n_binds):
        (sym, name, addr, bflags, _r) = struct.unpack_from(BIND, sec, binds_off + i * bind_size)
        m["bindings"].append({
            "symbol": string(sym), "target_symbol": string(name), "address": "0x%016x" % addr,
            "kind": "function" if bflags & BIND_FUNC else "data",
            "static": bool(bflags & BIND_LOCAL)})
    return m


def encode_meta(m):
    """The writer's layout: header, functions, bindings, strings (offset 0
    is the empty string). Version 2 when there are bindings."""
    strtab = bytearray(b"\0")
    offsets = {}

    def string(s):
        if s not in offsets:
            offsets[s] = len(strtab)
            strtab.extend(s.encode() + b"\0")
        return offsets[s]

    binds = m.get("bindings", [])
    header_size = m.get("header_size", HEADER_V1_SIZE + 16)
    version = m.get("version", 2 if binds else 1)
    funcs_off = header_size
    binds_off = funcs_off + 56 * len(m["functions"])
    strtab_off = binds_off + 24 * len(binds)
    body = bytearray()
    for f in m["functions"]:
        body += struct.pack(FUNC, string(f["name"]), string(f["replacement"]),
                            int(f["address"], 16), f["size"], int(f["hash"], 16),
                            bytes.fromhex(f["entry"]), FUNC_LOCAL if f["static"] else 0,
                            string(f["why"]) if f.get("why") else 0)
    for b in binds:
        flags = BIND_FUNC if b["kind"] == "function" else BIND_DATA
        body += struct.pack(BIND, string(b["symbol"]), string(b["target_symbol"]),
                            int(b["address"], 16), flags | (BIND_LOCAL if b["static"] else 0), 0)
    bid = bytes.fromhex(m["build_id"])
    header = struct.pack(HEADER, MAGIC, version, header_size, 1 if m["cumulative"] else 0,
                         len(m["functions"]), funcs_off, 56, strtab_off, 0, string(m["id"]),
                         string(m["name"]), string(m["target"]), len(bid),
                         bid.ljust(64, b"\0"), m["created"])
    header += struct.pack(BINDS, len(binds), binds_off, 24, 0)
    header = header[:header_size].ljust(header_size, b"\0")
    # strtab_size is known only now.
    header = header[:36] + struct.pack("<I", len(strtab)) + header[40:]
    return bytes(header + body + strtab)


def new_symbols(e, replacements):
    """The defined functions that replace nothing, and the data objects,
    of the object's symbol table: sorted, each name once."""
    funcs, data = set(), set()
    for (name, _v, _s, _bind, typ, shndx) in e.symbols():
        if not name or shndx == 0:
            continue
        if typ == 2 and name not in replacements:    # STT_FUNC
            funcs.add(name)
        elif typ in (1, 5, 6):                       # STT_OBJECT, STT_COMMON, STT_TLS
            data.add(name)
    return sorted(funcs), sorted(data)


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


def cmd_meta(args):
    e = Elf(args[0])
    s = meta_section(e, args[0])
    print(json.dumps(decode_meta(e.data[s[4]:s[4] + s[5]]), indent=1))


def cmd_meta_check(args):
    d = load_json(args[0])
    e = Elf(args[1])
    s = meta_section(e, args[1])
    m = decode_meta(e.data[s[4]:s[4] + s[5]])
    for k in ("format_version", "id", "name", "target", "build_id", "cumulative", "created",
              "bindings"):
        if d.get(k) != m[k]:
            fail("%s: inspect says %r, the file %r" % (k, d.get(k), m[k]))
    if len(d["functions"]) != len(m["functions"]):
        fail("inspect shows %d functions, the file has %d" % (len(d["functions"]),
                                                              len(m["functions"])))
    for got, want in zip(d["functions"], m["functions"]):
        for k, v in want.items():
            if got.get(k, "missing") != v:
                fail("function %s: %s: inspect says %r, the file %r" %
                     (want["name"], k, got.get(k, "missing"), v))
    funcs, data = new_symbols(e, {f["replacement"] for f in m["functions"]})
    if d["new_functions"] != funcs or d["new_data"] != data:
        fail("new functions %s and data %s, the symbol table has %s and %s" %
             (d["new_functions"], d["new_data"], funcs, data))


def cmd_rewrite(args):
    e = Elf(args[0])
    s = meta_section(e, args[0])
    m = decode_meta(e.data[s[4]:s[4] + s[5]])
    del m["header_size"]
    exec(args[2], {"m": m})
    sec = encode_meta(m)
    # The new section goes at the end of the file (a relocatable object
    # may place sections anywhere); its header points there.
    data = bytearray(e.data)
    data += b"\0" * (-len(data) % 8)
    off = len(data)
    data += sec
    i = e.names.index(".liveup")
    struct.pack_into("<QQ", data, e.shoff + i * e.shentsize + 0x18, off, len(sec))
    with open(args[1], "wb") as f:
        f.write(data)


cmds = {"funcs": cmd_funcs, "check": cmd_check, "patch": cmd_patch, "meta-size": cmd_meta_size,
        "build-id": cmd_build_id, "meta": cmd_meta, "meta-check": cmd_meta_check,
        "rewrite": cmd_rewrite}
if len(sys.argv) < 3 or sys.argv[1] not in cmds:
    fail("usage: lpo.py funcs|check|patch|meta-size|build-id|meta|meta-check|rewrite ARGS...")
cmds[sys.argv[1]](sys.argv[2:])
