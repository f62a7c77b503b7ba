#!/bin/sh
# Golden tests of `liveup build --replace`: for each target (PIE and
# non-PIE, -O0 and -O2, a shared library, an executable using it), the
# functions a fix must replace, and must not (new helpers, gcc's clones),
# checked through `liveup inspect --json` against the target's own symbol
# table and bytes (tests/build/lpo.py reads the ELF files itself).
. "$LIVEUP_BUILD_TESTS/lib.sh"

plan 54

# ---- The same fix against four builds of one program --------------------
for t in target-pie-o0 target-pie-o2 target-nopie-o0 target-nopie-o2; do
        bin=$TARGETS/$t
        real=$(readlink -f "$bin")
        bid=$(lpo build-id "$bin")
        rm -f fix-basic.lpo
        run_liveup build --replace "$FIXES/fix-basic.c" --target "$bin"
        check "$t: fix-basic builds" succeeded
        line=$(cat "$T/out")
        check "$t: one line naming the output, functions, target and build-id" \
                [ "$line" = "built fix-basic.lpo: replaces count_items, parse_header in $real (build-id $bid)" \
                -o "$line" = "built fix-basic.lpo: replaces parse_header, count_items in $real (build-id $bid)" ]
        run_liveup inspect --json fix-basic.lpo
        cp "$T/out" "$T/basic.json"
        check "$t: replaces exactly parse_header and count_items, with the target's addresses, sizes and bytes" \
                lpo funcs "$T/basic.json" "$bin" parse_header count_items
        check "$t: id, name, target and build-id" lpo check "$T/basic.json" \
                "d['name'] == 'fix-basic' and __import__('re').fullmatch('fix-basic-[0-9a-f]{8}', d['id']) and d['target'] == '$real' and d['build_id'] == '$bid' and not d['cumulative']"
        check "$t: the target's statics, globals and libc are left to resolve at apply" \
                lpo check "$T/basic.json" \
                "{'items_seen', 'items_total', 'format_item'} <= set(d['undefined']) and ('printf' in d['undefined'] or 'puts' in d['undefined'])"
        check "$t: code and data of the patch are in their own sections" lpo check "$T/basic.json" \
                "{'.text.parse_header', '.text.count_items', '.text.clamp', '.bss.fix_calls'} <= {s['name'] for s in d['sections']}"
        check "$t: its unwind tables are loaded with it (one .eh_frame, read-only data), for the stop check" \
                lpo check "$T/basic.json" \
                "[(s['kind'], s['size'] > 0) for s in d['sections'] if s['name'] == '.eh_frame'] == [('rodata', True)]"
        run_liveup build --json --replace "$FIXES/fix-basic.c" --target "$bin" -o "$T/basic2.lpo"
        cp "$T/out" "$T/build.json"
        check "$t: build --json: the new helper is a helper, not a replacement" lpo check "$T/build.json" \
                "'clamp' in d['helpers'] and sorted(f['name'] for f in d['functions']) == ['count_items', 'parse_header'] and d['output'] == '$T/basic2.lpo'"
done

# ---- A shared library, and an executable that uses it ---------------------
lib=$TARGETS/libbuildtarget.so
run_liveup build --replace "$FIXES/fix-lib.c" --target "$lib" -o lib.lpo
check "shared library: fix-lib builds" succeeded
run_liveup inspect --json lib.lpo
cp "$T/out" "$T/lib.json"
check "shared library: replaces lib_compute and the static lib_scale (unused in the fix)" \
        lpo funcs "$T/lib.json" "$lib" lib_compute lib_scale
check "shared library: lib_scale is marked static" lpo check "$T/lib.json" \
        "[f['static'] for f in sorted(d['functions'], key=lambda f: f['name'])] == [False, True]"

# Meson sets LD_LIBRARY_PATH for tests of programs with shared libraries:
# without it, the library is found through DT_RUNPATH ($ORIGIN/) only.
LD_LIBRARY_PATH= run_liveup build --replace "$FIXES/fix-uselib.c" \
        --target "$TARGETS/target-uselib" -o uselib.lpo
check "executable using the library (DT_RUNPATH \$ORIGIN): builds" succeeded
run_liveup inspect --json uselib.lpo
cp "$T/out" "$T/uselib.json"
check "executable using the library: replaces app_work, calls lib_compute in the target" \
        lpo funcs "$T/uselib.json" "$TARGETS/target-uselib" app_work
check "executable using the library: lib_compute and lib_counter resolve at apply" \
        lpo check "$T/uselib.json" "{'lib_compute', 'lib_counter'} <= set(d['undefined'])"
cp "$TARGETS/target-uselib" "$T/uselib-moved"
LD_LIBRARY_PATH= run_liveup build --replace "$FIXES/fix-uselib.c" --target "$T/uselib-moved" \
        -o moved.lpo
refused 1 "symbol 'lib_counter' referenced by '$FIXES/fix-uselib.c' is not defined in '$T/uselib-moved' or the libraries it uses" \
        "moved away from its library, the library's variable is unknown"

# ---- References ------------------------------------------------------------
run_liveup build --replace "$FIXES/fix-libc.c" --target "$TARGETS/target-pie-o2" -o libc.lpo
check "libc functions the target does not import resolve through its libraries" succeeded
run_liveup build --replace "$FIXES/fix-weak.c" --target "$TARGETS/target-pie-o2" -o weak.lpo
check "a weak reference nothing defines is allowed" succeeded

# ---- CFLAGS after "--", warnings -------------------------------------------
run_liveup build --json --replace "$FIXES/fix-cflags.c" --target "$TARGETS/target-pie-o2" -o cf.lpo
cp "$T/out" "$T/cf.json"
check "without -DWITH_COUNT: replaces parse_header only" lpo check "$T/cf.json" \
        "[f['name'] for f in d['functions']] == ['parse_header']"
check "a static variable named like the target's is new data, with a warning" \
        grep -q "warning: static variable 'items_seen' is new data of the patch" "$T/err"
check "the warning goes to stderr only: stdout is one JSON document" lpo check "$T/cf.json" \
        "len(d['warnings']) == 1"
run_liveup build --json --replace "$FIXES/fix-cflags.c" --target "$TARGETS/target-pie-o2" -o cf.lpo -- -DWITH_COUNT -O1
cp "$T/out" "$T/cf.json"
check "with -- -DWITH_COUNT -O1: replaces count_items too" lpo check "$T/cf.json" \
        "sorted(f['name'] for f in d['functions']) == ['count_items', 'parse_header']"

# ---- Names, flags, output --------------------------------------------------
run_liveup build --replace "$FIXES/fix-basic.c" --target "$TARGETS/target-pie-o2" \
        -o "$T/named.lpo" --name hotfix-42 --cumulative
check "--name, --cumulative, -o: builds" succeeded
run_liveup inspect --json "$T/named.lpo"
cp "$T/out" "$T/named.json"
check "--name and --cumulative are in the file" lpo check "$T/named.json" \
        "d['name'] == 'hotfix-42' and d['id'].startswith('hotfix-42-') and d['cumulative']"

cp "$FIXES/fix-basic.c" "$T/my fix!.c"
run_liveup build --replace "$T/my fix!.c" --target "$TARGETS/target-pie-o2"
check "default output: FIX's basename with .lpo, in the current folder" [ -f "$T/my fix!.lpo" ]
run_liveup inspect --json "$T/my fix!.lpo"
check "default name: FIX's basename, other characters made '_'" lpo check "$T/out" \
        "d['name'] == 'my_fix_'"

SOURCE_DATE_EPOCH=1700000000 "$LIVEUP" build --replace "$FIXES/fix-basic.c" \
        --target "$TARGETS/target-pie-o2" -o r1.lpo > /dev/null 2>&1
SOURCE_DATE_EPOCH=1700000000 "$LIVEUP" build --replace "$FIXES/fix-basic.c" \
        --target "$TARGETS/target-pie-o2" -o r2.lpo > /dev/null 2>&1
check "with SOURCE_DATE_EPOCH, two builds are byte for byte the same" cmp -s r1.lpo r2.lpo
run_liveup inspect --json r1.lpo
check "the creation time is SOURCE_DATE_EPOCH" lpo check "$T/out" \
        "d['created'] == 1700000000 and d['created_utc'] == '2023-11-14 22:13:20 UTC'"
run_liveup inspect --json fix-basic.lpo
id_a=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/out")
run_liveup inspect --json r1.lpo
id_b=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/out")
check "the id depends on the target's build (other build-id, other id)" [ "$id_a" != "$id_b" ]

check "readelf reads the patch and sees .liveup" sh -c "readelf -SW '$T/r1.lpo' | grep -q '\.liveup'"
check "no temporary file is left behind" tmp_clean

done_testing
