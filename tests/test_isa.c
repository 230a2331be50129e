/* test_isa.c -- the bytes of a render do not depend on the instruction set.
 *
 * Builds stemfarm a second time with -march=native (AVX2 and FMA where the
 * machine has them; the main build targets baseline x86-64), renders the
 * bundled example with both (same segments, different node counts), and
 * compares every delivered file's SHA-256.
 * -ffp-contract=off and kernels written for exact IEEE results are what
 * make this hold; a fused multiply-add or a reassociated sum would break it. */
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_native_build_renders_the_same_bytes)
{
    const char *src = getenv("STEMFARM_SOURCE_DIR");
    const char *gen = getenv("STEMFARM_GEN_BIN");
    ck_assert_msg(src && gen, "run through ctest");
    char *dir = tu_tmpdir();
    char cmd[16384], *err = NULL, *out = NULL;
    snprintf(cmd, sizeof cmd,
             "set -e\n"
             "cmake -S '%s' -B '%s/native' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTEMFARM_MARCH=native "
             "-DBUILD_TESTING=OFF >/dev/null\n"
             "cmake --build '%s/native' -j2 --target stemfarm >/dev/null\n"
             "cp '%s/configs/example/session.yaml' '%s/session.yaml'\n"
             "'%s' example '%s' >/dev/null\n"
             "'%s' render '%s/session.yaml' -o '%s/base' --nodes 2 >/dev/null\n"
             "'%s/native/stemfarm' render '%s/session.yaml' -o '%s/native-out' --nodes 1 >/dev/null\n"
             "cd '%s/base' && sha256sum *.wav > '%s/base.sums'\n"
             "cd '%s/native-out' && sha256sum *.wav > '%s/native.sums'\n"
             "diff '%s/base.sums' '%s/native.sums'\n"
             "wc -l < '%s/base.sums'\n",
             src, dir, dir, src, dir, gen, dir, tu_stemfarm_bin(), dir, dir, dir, dir, dir, dir, dir, dir, dir, dir,
             dir, dir);
    int rc = tu_run(cmd, &out, &err, 850);
    ck_assert_msg(rc == 0, "native and baseline builds differ (or a step failed): %s\n%s", out, err);
    ck_assert_msg(atoi(out) >= 8, "compared only %s files", out);
    free(out);
    free(err);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("isa");
    TCase *tc = tcase_create("isa");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_native_build_renders_the_same_bytes);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
