/* Tests of the unified-diff reader of `liveup build --diff`
 * (src/build/udiff.c): the files a diff changes (git renames and copies,
 * new and deleted files, names that leave the tree), each file's hunks,
 * the line map made from them, and the refusal of a hunk whose body does
 * not match its header's counts, on diffs as GNU diff, git and mailers
 * write them ("\ No newline at end of file", blank context lines whose
 * blank was stripped, CRLF lines, a mail signature).
 *
 * Pure parsing, from memory: no files, no processes. Each test runs in
 * its own forked child (tests/tap.h). */
#include "tap.h"

#include "base/util.h"
#include "build/udiff.h"

#include <inttypes.h>

/* ---- Helpers ------------------------------------------------------------ */

static struct lb_udiff *parse(const char *text)
{
        struct lb_udiff *u = NULL;
        struct errbuf err = {};
        int r;

        r = lb_udiff_parse(text, strlen(text), "fix.diff", &u, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err.msg);
        CHECK_OK(r);
        CHECK(u);
        return u;
}

/* The parse fails with -EBADMSG and this message. */
static void refused(const char *text, const char *msg)
{
        struct lb_udiff *u = NULL;
        struct errbuf err = {};

        CHECK_ERR(lb_udiff_parse(text, strlen(text), "fix.diff", &u, &err), EBADMSG);
        CHECK(!u);
        CHECK_STREQ(err.msg, msg);
}

static void check_touched(const struct lb_udiff *u, const char *const *names, size_t n)
{
        if (u->n_touched != n)
                fprintf(stderr, "%zu files touched, expected %zu\n", u->n_touched, n);
        CHECK(u->n_touched == n);
        for (size_t i = 0; i < n; i++)
                CHECK_STREQ(u->touched[i], names[i]);
}

/* Hunk h of file f: its header's numbers, its line in the diff and its
 * ops (as a string: " -+ "). */
static void check_hunk(const struct lb_udiff_file *f, size_t h, uint64_t old, uint64_t n_old,
                       uint64_t new, uint64_t n_new, size_t line, const char *ops)
{
        const struct lb_hunk *k;

        CHECK(h < f->n_hunks);
        k = &f->hunks[h];
        CHECK(k->old == old && k->n_old == n_old && k->new == new && k->n_new == n_new);
        CHECK(k->line == line);
        if (k->n_ops != strlen(ops) || (k->n_ops && memcmp(k->ops, ops, k->n_ops) != 0)) {
                fprintf(stderr, "ops '%.*s', expected '%s'\n", (int)k->n_ops, k->ops ?: "", ops);
                CHECK(false);
        }
}

/* ---- Files and hunks ---------------------------------------------------- */

TEST(multiple_files_with_timestamps)
{
        /* diff -ruN output: a "diff" line, tab-separated timestamps, two
         * hunks in the first file, one in the second. */
        struct lb_udiff *u = parse(
                "diff -ruN a/src/util.c b/src/util.c\n"
                "--- a/src/util.c\t2024-01-01 00:00:00.000000000 +0000\n"
                "+++ b/src/util.c\t2024-01-02 00:00:00.000000000 +0000\n"
                "@@ -1,3 +1,4 @@\n"
                " #include \"util.h\"\n"
                "+#include <stdio.h>\n"
                " \n"
                " int util_add(int a, int b)\n"
                "@@ -10,2 +11,2 @@ int util_add(int a, int b)\n"
                "-        return a + b;\n"
                "+        return a - b;\n"
                " }\n"
                "diff -ruN a/./src//main.c b/./src//main.c\n"
                "--- a/./src//main.c\n"
                "+++ b/./src//main.c\n"
                "@@ -7 +7 @@\n"
                "-int x;\n"
                "+int y;\n");
        static const char *const names[] = { "src/util.c", "src/main.c" };

        check_touched(u, names, 2);
        CHECK(u->n_files == 2 && !u->outside);
        CHECK_STREQ(u->files[0].path, "src/util.c");
        CHECK(!u->files[0].deleted && u->files[0].n_hunks == 2);
        check_hunk(&u->files[0], 0, 1, 3, 1, 4, 4, " +  ");
        check_hunk(&u->files[0], 1, 10, 2, 11, 2, 9, "-+ ");
        CHECK_STREQ(u->files[1].path, "src/main.c");
        CHECK(u->files[1].n_hunks == 1);
        check_hunk(&u->files[1], 0, 7, 1, 7, 1, 16, "-+");
        CHECK(lb_udiff_file(u, "src/main.c") == &u->files[1]);
        CHECK(!lb_udiff_file(u, "main.c"));
        lb_udiff_free(u);
}

TEST(git_rename_and_copy)
{
        /* A rename with changes, a pure copy (no hunks), and a rename
         * whose names git quoted. */
        struct lb_udiff *u = parse(
                "diff --git a/src/old.c b/src/new.c\n"
                "similarity index 90%\n"
                "rename from src/old.c\n"
                "rename to src/new.c\n"
                "index 1111111..2222222 100644\n"
                "--- a/src/old.c\n"
                "+++ b/src/new.c\n"
                "@@ -1,2 +1,2 @@\n"
                "-int a;\n"
                "+int b;\n"
                " int c;\n"
                "diff --git a/src/one.c b/src/two.c\n"
                "similarity index 100%\n"
                "copy from src/one.c\n"
                "copy to src/two.c\n"
                "diff --git \"a/src/sp ace.c\" \"b/src/tab\\there.c\"\n"
                "similarity index 100%\n"
                "rename from \"src/sp ace.c\"\n"
                "rename to \"src/tab\\there.c\"\n");
        static const char *const names[] = { "src/old.c",     "src/new.c",
                                             "src/one.c",     "src/two.c",
                                             "src/sp ace.c", "src/tab\there.c" };

        check_touched(u, names, ELEMENTSOF(names));
        CHECK(u->n_files == 1);
        CHECK_STREQ(u->files[0].path, "src/new.c");
        check_hunk(&u->files[0], 0, 1, 2, 1, 2, 8, "-+ ");
        CHECK(lb_udiff_file(u, "src/new.c"));
        CHECK(!lb_udiff_file(u, "src/old.c"));
        lb_udiff_free(u);
}

TEST(new_and_deleted_files)
{
        struct lb_udiff *u = parse(
                "diff --git a/src/gone.c b/src/gone.c\n"
                "deleted file mode 100644\n"
                "index 1111111..0000000\n"
                "--- a/src/gone.c\n"
                "+++ /dev/null\n"
                "@@ -1,2 +0,0 @@\n"
                "-int a;\n"
                "-int b;\n"
                "diff --git a/src/extra.c b/src/extra.c\n"
                "new file mode 100644\n"
                "--- /dev/null\n"
                "+++ b/src/extra.c\n"
                "@@ -0,0 +1 @@\n"
                "+int extra;\n");
        static const char *const names[] = { "src/gone.c", "src/extra.c" };

        check_touched(u, names, 2);
        CHECK(u->n_files == 2);
        CHECK_STREQ(u->files[0].path, "src/gone.c");
        CHECK(u->files[0].deleted);
        check_hunk(&u->files[0], 0, 1, 2, 0, 0, 6, "--");
        CHECK_STREQ(u->files[1].path, "src/extra.c");
        CHECK(!u->files[1].deleted);
        check_hunk(&u->files[1], 0, 0, 0, 1, 1, 13, "+");
        /* A deleted file has no lines after the patch. */
        CHECK(!lb_udiff_file(u, "src/gone.c"));
        CHECK(lb_udiff_file(u, "src/extra.c") == &u->files[1]);
        lb_udiff_free(u);
}

TEST(no_newline_at_end_of_file)
{
        /* The marker follows the last old line inside the hunk, and the
         * last new line at its end; a section follows. */
        struct lb_udiff *u = parse(
                "--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,2 +1,2 @@\n"
                " int a;\n"
                "-int b;\n"
                "\\ No newline at end of file\n"
                "+int c;\n"
                "\\ No newline at end of file\n"
                "--- a/y.c\n"
                "+++ b/y.c\n"
                "@@ -3 +3,2 @@\n"
                " z\n"
                "+w\n"
                "\\ No newline at end of file");
        static const char *const names[] = { "x.c", "y.c" };

        check_touched(u, names, 2);
        check_hunk(&u->files[0], 0, 1, 2, 1, 2, 3, " -+");
        check_hunk(&u->files[1], 0, 3, 1, 3, 2, 11, " +");
        lb_udiff_free(u);
}

TEST(blank_context_stripped_and_crlf)
{
        /* Context lines of empty source lines whose blank an editor
         * stripped ("" and, in a CRLF diff, "\r"), and a diff with CRLF
         * line ends throughout (names lose the CR). */
        struct lb_udiff *u = parse(
                "--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,4 +1,4 @@\n"
                "\n"
                "-int a;\n"
                "+int b;\n"
                "\n"
                " }\n"
                "--- a/dos.c\r\n"
                "+++ b/dos.c\r\n"
                "@@ -1,3 +1,3 @@\r\n"
                " int a;\r\n"
                "\r\n"
                "-int b;\r\n"
                "+int c;\r\n"
                "\\ No newline at end of file\r\n");
        static const char *const names[] = { "x.c", "dos.c" };

        check_touched(u, names, 2);
        check_hunk(&u->files[0], 0, 1, 4, 1, 4, 3, " -+  ");
        CHECK_STREQ(u->files[1].path, "dos.c");
        check_hunk(&u->files[1], 0, 1, 3, 1, 3, 11, "  -+");
        lb_udiff_free(u);
}

TEST(hunk_lines_that_look_like_headers)
{
        /* A removed line "-- a/evil.c" and an added "++ b/evil.c" read
         * "--- a/evil.c" and "+++ b/evil.c" in the diff, next to each
         * other as a header would be. */
        struct lb_udiff *u = parse(
                "--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,3 +1,3 @@\n"
                " /*\n"
                "--- a/evil.c\n"
                "+++ b/evil.c\n"
                " */\n"
                "@@ -9,2 +9,2 @@\n"
                "--- a/evil.c\n"
                "+++ b/evil.c\n"
                " x\n");
        static const char *const names[] = { "x.c" };

        check_touched(u, names, 1);
        CHECK(u->n_files == 1);
        check_hunk(&u->files[0], 0, 1, 3, 1, 3, 3, " -+ ");
        check_hunk(&u->files[0], 1, 9, 2, 9, 2, 8, "-+ ");
        lb_udiff_free(u);
}

TEST(mail_around_the_diff)
{
        /* git format-patch: mail headers and text, a "---" before the
         * diffstat (whose lines start with a blank), and the signature. */
        struct lb_udiff *u = parse(
                "From 0123456789abcdef Mon Sep 17 00:00:00 2001\n"
                "Subject: [PATCH] fix\n"
                "\n"
                "---\n"
                " src/x.c | 2 +-\n"
                " 1 file changed, 1 insertion(+), 1 deletion(-)\n"
                "\n"
                "diff --git a/src/x.c b/src/x.c\n"
                "--- a/src/x.c\n"
                "+++ b/src/x.c\n"
                "@@ -1 +1 @@\n"
                "-int a;\n"
                "+int b;\n"
                "-- \n"
                "2.39.2\n"
                "\n");
        static const char *const names[] = { "src/x.c" };

        check_touched(u, names, 1);
        check_hunk(&u->files[0], 0, 1, 1, 1, 1, 11, "-+");
        lb_udiff_free(u);
}

TEST(names_that_leave_the_tree_or_are_no_diff)
{
        struct lb_udiff *u = parse(
                "--- a/../etc/x.c\n"
                "+++ b/../etc/x.c\n"
                "@@ -1 +1 @@\n"
                "-a\n"
                "+b\n"
                "rename from ../y.c\n"
                "rename to /abs/y.c\n"
                "--- a/ok.c\n"
                "+++ b/ok.c\n"
                "@@ -1 +1 @@\n"
                "-a\n"
                "+b\n");
        static const char *const names[] = { "ok.c" };

        CHECK_STREQ(u->outside, "b/../etc/x.c");
        check_touched(u, names, 1);
        CHECK(u->n_files == 1);
        lb_udiff_free(u);

        /* An empty file, and a context diff: nothing read, no error (the
         * caller says "not a unified diff"). */
        u = parse("");
        CHECK(u->n_touched == 0 && u->n_files == 0);
        lb_udiff_free(u);
        u = parse("*** a/x.c\n"
                  "--- b/x.c\n"
                  "***************\n"
                  "*** 1 ****\n"
                  "! int a;\n"
                  "--- 1 ----\n"
                  "! int b;\n");
        CHECK(u->n_touched == 0 && u->n_files == 0);
        lb_udiff_free(u);
}

/* ---- Hunks that do not match their headers ------------------------------ */

TEST(hunk_that_ends_early_is_refused)
{
        /* At the end of the diff... */
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,4 +1,4 @@\n"
                " one\n"
                "-two\n"
                "+TWO\n"
                " three\n",
                "'fix.diff' line 3: the hunk does not match its header: the header counts 4 "
                "old and 4 new lines, the hunk has 3 and 3");
        /* ...and before the next section's "diff" line. */
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1 +1 @@\n"
                "-one\n"
                "+ONE\n"
                "@@ -5,3 +5,2 @@\n"
                " four\n"
                "-five\n"
                "diff --git a/y.c b/y.c\n"
                "--- a/y.c\n"
                "+++ b/y.c\n",
                "'fix.diff' line 6: the hunk does not match its header: the header counts 3 "
                "old and 2 new lines, the hunk has 2 and 1");
}

TEST(hunk_that_goes_on_is_refused)
{
        /* An added line after the last one the header counts: patch
         * would drop it silently. */
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,3 +1,3 @@\n"
                " one\n"
                "-two\n"
                "+TWO\n"
                " three\n"
                "+extra\n",
                "'fix.diff' line 3: the hunk does not match its header: the header counts 3 "
                "old and 3 new lines, line 8 is one too many");
        /* A removed line when the old side is complete (the new side is
         * not yet). */
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,1 +1,2 @@\n"
                "-one\n"
                "-two\n"
                "+ONE\n"
                "+TWO\n",
                "'fix.diff' line 3: the hunk does not match its header: the header counts 1 "
                "old and 2 new lines, line 5 is one too many");
        /* A lone "--- " line (no "+++" follows) after the last line. */
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1 +1 @@\n"
                "-one\n"
                "+ONE\n"
                "\\ No newline at end of file\n"
                "--- two\n",
                "'fix.diff' line 3: the hunk does not match its header: the header counts 1 "
                "old and 1 new lines, line 7 is one too many");
}

TEST(bad_hunk_header_is_refused)
{
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,x +1 @@\n"
                "-one\n",
                "'fix.diff' line 3: the hunk header is not \"@@ -START,COUNT +START,COUNT @@\"");
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,99999999999999999999 +1 @@\n",
                "'fix.diff' line 3: the hunk header is not \"@@ -START,COUNT +START,COUNT @@\"");
        /* A huge count is read, and refused for the lines it lacks. */
        refused("--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -1,9999999999999999999 +1 @@\n"
                "-one\n",
                "'fix.diff' line 3: the hunk does not match its header: the header counts "
                "9999999999999999999 old and 1 new lines, the hunk has 1 and 0");
}

/* ---- The line map ------------------------------------------------------- */

TEST(line_map)
{
        /* Old 1-10; line 3 removed, two lines added after 5, line 8
         * changed. */
        struct lb_udiff *u = parse(
                "--- a/x.c\n"
                "+++ b/x.c\n"
                "@@ -2,5 +2,6 @@\n"
                " two\n"
                "-three\n"
                " four\n"
                " five\n"
                "+five.1\n"
                "+five.2\n"
                " six\n"
                "@@ -8 +9 @@\n"
                "-eight\n"
                "+EIGHT\n");
        const struct lb_udiff_file *f = lb_udiff_file(u, "x.c");
        static const uint64_t want[] = { 0, 1, 2, 0, 3, 4, 7, 8, 0, 10, 11 };

        CHECK(f);
        for (uint64_t L = 1; L < ELEMENTSOF(want); L++) {
                uint64_t got = lb_udiff_new_line(f, L);

                if (got != want[L])
                        fprintf(stderr,
                                "old line %" PRIu64 " -> %" PRIu64 ", expected %" PRIu64 "\n", L,
                                got, want[L]);
                CHECK(got == want[L]);
        }
        /* New lines 5-6 are added, 9 replaced, and the removal of old
         * line 3 is next to new line 3. */
        CHECK(lb_udiff_touches(f, 5, 6));
        CHECK(lb_udiff_touches(f, 3, 3));
        CHECK(lb_udiff_touches(f, 9, 20));
        CHECK(!lb_udiff_touches(f, 1, 2));
        CHECK(!lb_udiff_touches(f, 7, 8));
        CHECK(!lb_udiff_touches(f, 10, 20));
        lb_udiff_free(u);
}

TAP_MAIN()
