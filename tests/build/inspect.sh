#!/bin/sh
# `liveup inspect`: the text and JSON views of a patch, and every kind of
# bad file (missing, not ELF, not a patch, another ELF type, wrong magic,
# another version, hostile sizes, bad bindings, truncated at many
# lengths): exit status 2 and one line, never a crash. Files with
# bindings, reasons or the old header are made by rewriting a patch's
# metadata with tests/build/lpo.py, which reads and writes the format on
# its own (`build --diff` writes them for real).
. "$LIVEUP_BUILD_TESTS/lib.sh"

plan 38

bin=$TARGETS/target-pie-o2
real=$(readlink -f "$bin")
"$LIVEUP" build --replace "$FIXES/fix-basic.c" --target "$bin" -o good.lpo > /dev/null 2> "$T/build.err"
check "a patch to inspect" [ -s good.lpo ]

run_liveup inspect good.lpo
check "text: exit status 0, nothing on stderr" [ "$RC" -eq 0 -a ! -s "$T/err" ]
check "text: the patch, its target and build-id" sh -c "
        grep -q '^patch fix-basic-[0-9a-f]\{8\} (fix-basic), file good.lpo$' '$T/out' &&
        grep -q '^  target:    $real$' '$T/out' &&
        grep -q '^  build-id:  [0-9a-f]\{40\}$' '$T/out' &&
        grep -q '^  flags:     none$' '$T/out' &&
        grep -q '^  created:   [0-9-]* [0-9:]* UTC$' '$T/out'"
check "text: the replaced functions" sh -c "
        grep -q '^replaces 2 functions:$' '$T/out' &&
        grep -q '^  parse_header  at 0x[0-9a-f]\{16\}, [0-9]* bytes, hash 0x[0-9a-f]\{16\}$' '$T/out' &&
        grep -q '^  count_items   at 0x[0-9a-f]\{16\}, [0-9]* bytes, hash 0x[0-9a-f]\{16\} (static)$' '$T/out'"
check "text: sections and the symbols resolved in the target" sh -c "
        grep -q '^  \.text\.parse_header  *code  *[0-9]* bytes$' '$T/out' &&
        grep -q '^symbols resolved in the target: ' '$T/out' &&
        grep -q '^  items_seen$' '$T/out'"
check "text: the new helper and variable, no bindings" sh -c "
        grep -A1 '^new functions: 1$' '$T/out' | grep -q '^  clamp$' &&
        grep -A1 '^new data: 1$' '$T/out' | grep -q '^  fix_calls$' &&
        grep -q '^symbols bound to target addresses: 0$' '$T/out'"
run_liveup inspect --json good.lpo
check "json: exit status 0, one document" lpo check "$T/out" "d['format_version'] == 1 and d['file'] == 'good.lpo'"
check "json: the replaced functions match the target" lpo funcs "$T/out" "$bin" parse_header count_items
check "json: every metadata field and the new symbols match the file" lpo meta-check "$T/out" good.lpo
check "json: no reasons, no bindings; clamp and fix_calls are new" lpo check "$T/out" \
        "([f['why'] for f in d['functions']] == [None, None] and d['bindings'] == [] and
          d['new_functions'] == ['clamp'] and d['new_data'] == ['fix_calls'])"

# ---- Reasons and bindings (format version 2) --------------------------------
lpo rewrite good.lpo bound.lpo "
m['functions'][0]['why'] = 'changed in src/http.c'
m['bindings'] = [
    dict(symbol='items_seen', target_symbol='items_seen', address='0x4028', kind='data',
         static=True),
    dict(symbol='format_item', target_symbol='format_item.constprop.0', address='0x1200',
         kind='function', static=True)]"
run_liveup inspect bound.lpo
check "text: a function's reason" sh -c "
        grep -q '^  parse_header  at 0x[0-9a-f]\{16\}, [0-9]* bytes, hash 0x[0-9a-f]\{16\} - changed in src/http.c$' '$T/out' &&
        grep -q '^  count_items   at 0x[0-9a-f]\{16\}, [0-9]* bytes, hash 0x[0-9a-f]\{16\} (static)$' '$T/out'"
check "text: the bindings" sh -c "
        grep -q '^symbols bound to target addresses: 2$' '$T/out' &&
        grep -q '^  items_seen   -> items_seen at 0x0000000000004028, data, static$' '$T/out' &&
        grep -q '^  format_item  -> format_item.constprop.0 at 0x0000000000001200, function, static$' '$T/out'"
run_liveup inspect --json bound.lpo
check "json: version 2, every field as lpo.py reads the file" lpo meta-check "$T/out" bound.lpo
check "json: the reason and the bindings" lpo check "$T/out" "(
        d['format_version'] == 2 and d['functions'][0]['why'] == 'changed in src/http.c' and
        d['functions'][1]['why'] is None and d['bindings'][1] == {
            'symbol': 'format_item', 'target_symbol': 'format_item.constprop.0',
            'address': '0x0000000000001200', 'kind': 'function', 'static': True})"

# A patch from before the bindings: the 128-byte header.
lpo rewrite good.lpo old.lpo "m['header_size'] = 128"
run_liveup inspect --json old.lpo
check "the old header (128 bytes) still reads" lpo meta-check "$T/out" old.lpo

lpo rewrite good.lpo bad.lpo "m['version'] = 1; m['bindings'] = [dict(symbol='items_seen',
    target_symbol='items_seen', address='0x4028', kind='data', static=True)]"
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: 1 bindings in a version 1 file (bindings need version 2)" \
        "bindings in a version 1 file (an older liveup would resolve them by name)"
lpo rewrite good.lpo bad.lpo "m['bindings'] = [dict(symbol='fix_calls', target_symbol='count',
    address='0x4028', kind='data', static=True)]"
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: binding 0: symbol 'fix_calls' is defined in the object, not undefined" \
        "a binding of a symbol the patch defines"
lpo rewrite good.lpo bad.lpo "m['bindings'] = [dict(symbol='count', target_symbol='count',
    address='0x4028', kind='data', static=True)]"
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: binding 0: symbol 'count' is not a symbol of the object" \
        "a binding of a symbol the patch does not have"
lpo rewrite good.lpo bad.lpo "m['version'] = 3"
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': patch format version 3, this liveup reads versions 1 to 2" "version 3"

# ---- Bad files: exit status 2, one line -----------------------------------
run_liveup inspect "$T/missing.lpo"
refused 2 "'$T/missing.lpo': No such file or directory" "a missing file"
run_liveup inspect "$T"
refused 2 "'$T': not a regular file" "a folder"
echo "hello" > text.lpo
run_liveup inspect text.lpo
refused 2 "'text.lpo': not an ELF file" "not ELF"
: > empty.lpo
run_liveup inspect empty.lpo
refused 2 "'empty.lpo': not an ELF file" "an empty file"
gcc -c -o plain.o "$FIXES/fix-basic.c"
run_liveup inspect plain.o
refused 2 "'plain.o': not a liveup patch (no .liveup section)" "an object without .liveup"
run_liveup inspect "$bin"
refused 2 "a patch is a relocatable object" "an executable"

lpo patch good.lpo bad.lpo 0 58
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: bad magic" "wrong magic"
lpo patch good.lpo bad.lpo 8 63000000
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': patch format version 99, this liveup reads versions 1 to 2" "version 99"
lpo patch good.lpo bad.lpo 20 ffffffff
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: function count 4294967295 is more than 65536" \
        "a huge function count"
lpo patch good.lpo bad.lpo 20 00010000
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: function table (256 entries at 144) out of range" \
        "a function table past the end"
lpo patch good.lpo bad.lpo 12 ffffff7f
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: header size" "a hostile header size"
lpo patch good.lpo bad.lpo 40 ffffffff
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: patch id offset out of range" \
        "a string offset out of range"
# strtab_size one short: the last string loses its NUL.
"$PYTHON" - good.lpo "$T/short.hex" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
# Find .liveup by its magic (the file has it once).
off = data.index(b"LIVEUP\x1a\x01")
strtab_size = struct.unpack_from("<I", data, off + 36)[0]
open(sys.argv[2], "w").write(struct.pack("<I", strtab_size - 1).hex())
PY
lpo patch good.lpo bad.lpo 36 "$(cat "$T/short.hex")"
run_liveup inspect bad.lpo
refused 2 "is not NUL-terminated" "a string without its NUL"
lpo patch good.lpo bad.lpo 52 41000000
run_liveup inspect bad.lpo
refused 2 "'bad.lpo': corrupt .liveup section: build-id length 65 is not 1 to 64" \
        "a build-id too long"

# Truncated at every 31st length, and at each of the last 32 (the unit
# test tries every length of its own files).
n=$(wc -c < good.lpo)
bad=0
len=0
while [ $len -lt "$n" ]; do
        head -c $len good.lpo > cut.lpo
        "$LIVEUP" inspect cut.lpo > "$T/out" 2> "$T/err"
        rc=$?
        if [ $rc -ne 2 ] || [ -s "$T/out" ] || [ "$(wc -l < "$T/err")" -ne 1 ]; then
                diag "length $len: status $rc: $(head -c 200 "$T/err")"
                bad=$((bad + 1))
        fi
        if [ $len -lt $((n - 32)) ]; then
                len=$((len + 31))
        else
                len=$((len + 1))
        fi
done
ok $bad "truncated files: exit status 2 and one line at every length tried"

# Each byte of the metadata header and the first function entry set to
# 0xff, and each byte of the header and both tables of bound.lpo: a
# clean result or exit status 2, never a crash.
mkdir flips
"$PYTHON" - good.lpo bound.lpo flips <<'PY'
import sys
for name, count in ((sys.argv[1], 144 + 56), (sys.argv[2], 144 + 2 * 56 + 2 * 24)):
    data = open(name, "rb").read()
    off = data.index(b"LIVEUP\x1a\x01")
    for i in range(count):
        bad = bytearray(data)
        bad[off + i] = 0xff
        open("%s/%s-%d.lpo" % (sys.argv[3], name[:-4], i), "wb").write(bad)
PY
bad=0
for f in flips/*.lpo; do
        "$LIVEUP" inspect "$f" > /dev/null 2> "$T/err"
        rc=$?
        if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then
                diag "$f: status $rc: $(head -c 200 "$T/err")"
                bad=$((bad + 1))
        fi
done
check "200 + 304 files, one per metadata byte" [ "$(ls flips | wc -l)" -eq 504 ]
ok $bad "every metadata header and table byte set to 0xff: shown or refused cleanly"

run_liveup inspect
refused 2 "inspect: missing FILE.lpo" "missing argument"
run_liveup inspect good.lpo extra
refused 2 "inspect: unexpected argument 'extra'" "two files"

done_testing
