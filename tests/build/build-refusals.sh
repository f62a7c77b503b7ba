#!/bin/sh
# Every refusal of `liveup build`: exit status 1 (refused) or 2 (bad usage
# or bad input), nothing on stdout, one line on stderr naming the file and
# the reason, no output file and no temporary file left behind.
. "$LIVEUP_BUILD_TESTS/lib.sh"

plan 29

bin=$TARGETS/target-pie-o2

# refuse_build STATUS TEXT DESCRIPTION FIX [ARGS...]: build FIX for $bin
# into out.lpo; it must be refused, and out.lpo must not exist.
refuse_build() {
        want=$1
        text=$2
        desc=$3
        fix=$4
        shift 4
        rm -f out.lpo
        run_liveup build --replace "$fix" --target "$bin" -o out.lpo "$@"
        if [ -e out.lpo ]; then
                diag "out.lpo was written"
                RC=99
        fi
        refused "$want" "$text" "$desc"
}

refuse_build 1 "cannot build '$FIXES/fix-new-global.c': function 'brand_new_function' is not in '$bin'; make it static if it is a new helper" \
        "an exported function the target lacks" "$FIXES/fix-new-global.c"
refuse_build 1 "symbol 'no_such_function' referenced by '$FIXES/fix-unknown-symbol.c' is not defined in '$bin' or the libraries it uses" \
        "a symbol nothing defines" "$FIXES/fix-unknown-symbol.c"
refuse_build 1 "function 'helper' is ambiguous in '$bin': statics at 0x" \
        "replacing an ambiguous static" "$FIXES/fix-ambiguous.c"
check "the ambiguity names both candidates' files and suggests renaming" \
        sh -c "grep -q '(target.c), 0x[0-9a-f]* (target-b.c); rename it in' '$T/err'"
refuse_build 1 "symbol 'helper' is ambiguous in '$bin'" \
        "referencing an ambiguous static" "$FIXES/fix-ambiguous-ref.c"
refuse_build 1 "cannot build '$FIXES/fix-tiny.c': function 'tiny' is 3 bytes long, a jump needs 5" \
        "a function too short for the jump" "$FIXES/fix-tiny.c"
refuse_build 1 "function 'tiny_endbr' is 7 bytes long, a jump needs 9" \
        "a function too short for endbr64 and the jump" "$FIXES/fix-tiny-endbr.c"
refuse_build 1 "cannot build '$FIXES/fix-nothing.c': it replaces no function of '$bin'" \
        "a fix that replaces nothing" "$FIXES/fix-nothing.c"
refuse_build 1 "variable 'items_total' is defined in both" \
        "a variable the target already has" "$FIXES/fix-var-clash.c"
refuse_build 1 "thread-local variable 'fix_tls': a patch cannot add thread-local data" \
        "new thread-local data" "$FIXES/fix-tls.c"
refuse_build 1 "'alias_target' and 'alias_other' are the same function in '$bin' (aliases)" \
        "two names of one function" "$FIXES/fix-alias.c"

# A compile error: gcc's own messages first, then our one line, last.
rm -f out.lpo
run_liveup build --replace "$FIXES/fix-syntax.c" --target "$bin" -o out.lpo
check "a compile error: exit status 1" [ "$RC" -eq 1 ]
check "a compile error: gcc's messages are shown" grep -q "fix-syntax.c:4:.*error" "$T/err"
check "a compile error: then one line of ours" [ "$(tail -n 1 "$T/err")" = \
        "liveup: cannot compile '$FIXES/fix-syntax.c': gcc exited with status 1" ]
check "a compile error: no output" [ ! -e out.lpo -a ! -s "$T/out" ]

bin=$TARGETS/target-nobuildid
refuse_build 1 "'$bin' has no build-id, so a patch cannot be bound to it" \
        "a target without a build-id" "$FIXES/fix-basic.c"
bin=$TARGETS/target-pie-o2

# ---- Bad usage and bad input files: exit status 2 --------------------------
refuse_build 2 "'$T/missing.c': No such file or directory" "FIX.c missing" "$T/missing.c"
bin=$T/missing
refuse_build 2 "'$T/missing': No such file or directory" "BIN missing" "$FIXES/fix-basic.c"
echo "not a program" > "$T/text"
bin=$T/text
refuse_build 2 "'$T/text': not an ELF file" "BIN not ELF" "$FIXES/fix-basic.c"
gcc -c -o "$T/plain.o" "$FIXES/fix-basic.c"
bin=$T/plain.o
refuse_build 2 "'$T/plain.o': not an executable or shared library" "BIN a relocatable object" \
        "$FIXES/fix-basic.c"
bin=$TARGETS/target-pie-o2
refuse_build 2 "invalid patch name 'bad name'" "a bad --name" "$FIXES/fix-basic.c" --name "bad name"
cp "$FIXES/fix-basic.c" "$T/fix.c"
run_liveup build --replace "$T/fix.c" --target "$bin" -o "$T/fix.c"
refused 2 "refusing to write the patch over '$T/fix.c', an input" "-o naming FIX.c"
check "FIX.c is untouched" cmp -s "$T/fix.c" "$FIXES/fix-basic.c"
run_liveup build --diff fix.diff --src .
refused 2 "liveup: build: --diff needs the build command after '--'" "--diff without a build command"
run_liveup build --diff fix.diff --src . --replace "$FIXES/fix-basic.c" -- make
refused 2 "liveup: build: --diff and --replace do not go together" "--diff with --replace"
run_liveup build --replace "$FIXES/fix-basic.c"
refused 2 "build: missing --target BIN" "missing --target"
run_liveup build --replace "$FIXES/fix-basic.c" --target "$bin" stray
refused 2 "build: unexpected argument 'stray'" "a stray argument"
run_liveup build --replace "$FIXES/fix-basic.c" --target "$bin" --frobnicate
refused 2 "build: unknown option '--frobnicate'" "an unknown option"

check "no temporary file is left behind" tmp_clean

done_testing
