/* test_fs.c: atomic replacement, symlink switch, tree removal, bounded reads, fault injection, rename probe. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "fs.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_write_atomic(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat st;
    char *text;
    size_t len;

    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/identity.json", dir);
    assert_int_equal(molt_fs_write_atomic(path, "first", 5, 0600, &err), 0);
    assert_int_equal(molt_fs_write_atomic(path, "second!", 7, 0600, &err), 0);
    assert_int_equal(molt_fs_read_file(path, 100, &text, &len, &err), 0);
    assert_int_equal(len, 7);
    assert_string_equal(text, "second!");
    free(text);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* no temporary files are left behind */
    assert_int_equal(count_entries(dir), 1);
    tu_rmtree(dir);
}

#ifdef MOLT_FAULT_POINTS /* MOLT_FAULT (lib/fault.h) does nothing without */
static void test_write_atomic_failure_keeps_old(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];
    char *text;

    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/journal.json", dir);
    assert_int_equal(molt_fs_write_atomic(path, "old", 3, 0644, &err), 0);
    setenv("MOLT_FAULT", "fs.write.enospc", 1);
    assert_int_equal(molt_fs_write_atomic(path, "new", 3, 0644, &err), MOLT_E_NOSPC);
    unsetenv("MOLT_FAULT");
    assert_non_null(strstr(err.msg, "No space left on device"));
    assert_int_equal(molt_fs_read_file(path, 100, &text, NULL, &err), 0);
    assert_string_equal(text, "old");
    free(text);
    assert_int_equal(count_entries(dir), 1);
    tu_rmtree(dir);
}

static void test_fault_once(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], once[PATH_MAX], path[PATH_MAX];

    tu_mkdtemp(dir);
    tu_mkdtemp(once);
    snprintf(path, sizeof(path), "%s/f", dir);
    setenv("MOLT_FAULT", "other,fs.write.enospc", 1);
    setenv("MOLT_FAULT_ONCE_DIR", once, 1);
    assert_int_equal(molt_fs_write_atomic(path, "a", 1, 0600, &err), MOLT_E_NOSPC);
    /* fired once: the retry goes through */
    assert_int_equal(molt_fs_write_atomic(path, "a", 1, 0600, &err), 0);
    unsetenv("MOLT_FAULT_ONCE_DIR");
    unsetenv("MOLT_FAULT");
    tu_rmtree(dir);
    tu_rmtree(once);
}
#endif

/* MOLT_FAULT works only where the build asked for fault points: in a release
 * build (configure without --enable-fault-points) it changes nothing. */
static void test_fault_points_only_when_built(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];
#ifdef MOLT_FAULT_POINTS
    int expected = MOLT_E_NOSPC;
#else
    int expected = 0;
#endif

    tu_mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/f", dir);
    setenv("MOLT_FAULT", "fs.write.enospc", 1);
    assert_int_equal(molt_fs_write_atomic(path, "a", 1, 0600, &err), expected);
    unsetenv("MOLT_FAULT");
    tu_rmtree(dir);
}

static void test_write_atomic_missing_dir(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(molt_fs_write_atomic("/nonexistent/dir/x", "a", 1, 0600, &err), MOLT_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x"));
}

static void test_symlink_atomic(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
    ssize_t n;

    tu_mkdtemp(dir);
    snprintf(link, sizeof(link), "%s/current", dir);
    assert_int_equal(molt_fs_symlink_atomic("versions/1", link, &err), 0);
    assert_int_equal(molt_fs_symlink_atomic("versions/2", link, &err), 0);
    n = readlink(link, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, "versions/2");
    assert_int_equal(count_entries(dir), 1);
    tu_rmtree(dir);
}

static void test_read_limits(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], path[PATH_MAX];
    char *text = NULL;

    tu_mkdtemp(dir);
    tu_write(path, dir, "big", "0123456789");
    assert_int_equal(molt_fs_read_file(path, 5, &text, NULL, &err), MOLT_E_LIMIT);
    assert_null(text);
    assert_int_equal(molt_fs_read_file(dir, 5, &text, NULL, &err), MOLT_E_INVAL);
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(molt_fs_read_file(path, 5, &text, NULL, &err), MOLT_E_NOTFOUND);
    tu_rmtree(dir);
}

static void test_mkdir_and_remove_tree(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char dir[PATH_MAX], deep[PATH_MAX], outside[PATH_MAX], victim[PATH_MAX], tmp[PATH_MAX];
    uint64_t free_bytes = 0;

    tu_mkdtemp(dir);
    tu_mkdtemp(outside);
    tu_write(victim, outside, "keep", "must survive");
    snprintf(deep, sizeof(deep), "%s/a/b/c", dir);
    assert_int_equal(molt_fs_mkdir_p(deep, 0755, &err), 0);
    assert_int_equal(molt_fs_mkdir_p(deep, 0755, &err), 0);
    tu_write(tmp, deep, "f", "x");
    assert_int_equal(chmod(deep, 0500), 0);
    snprintf(tmp, sizeof(tmp), "%s/a/escape", dir);
    assert_int_equal(symlink(outside, tmp), 0);
    snprintf(tmp, sizeof(tmp), "%s/a", dir);
    assert_int_equal(molt_fs_remove_tree(tmp, &err), 0);
    assert_false(molt_fs_exists(tmp));
    /* the symlink was removed, not followed */
    assert_true(molt_fs_exists(victim));
    assert_int_equal(molt_fs_remove_tree(tmp, &err), 0);
    assert_int_equal(molt_fs_free_bytes(dir, &free_bytes, &err), 0);
    assert_true(free_bytes > 0);
    tu_rmtree(dir);
    tu_rmtree(outside);
}

static void test_probe_rename(void **state)
{
    struct molt_err err = MOLT_ERR_INIT;
    char root[PATH_MAX], from[PATH_MAX], to[PATH_MAX], shm[PATH_MAX];
    struct stat a, b;

    tu_mkdtemp(root);
    snprintf(from, sizeof(from), "%s/upgrade", root);
    snprintf(to, sizeof(to), "%s/versions", root);
    assert_int_equal(mkdir(from, 0755), 0);
    assert_int_equal(mkdir(to, 0755), 0);
    assert_int_equal(molt_fs_probe_rename(from, to, &err), 0);
    /* the probe leaves nothing behind on either side */
    assert_int_equal(count_entries(from), 0);
    assert_int_equal(count_entries(to), 0);

    /* a missing target: the error names both paths, the source is cleaned up */
    snprintf(to, sizeof(to), "%s/missing", root);
    assert_int_equal(molt_fs_probe_rename(from, to, &err), MOLT_E_IO);
    assert_non_null(strstr(err.msg, from));
    assert_non_null(strstr(err.msg, to));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    assert_int_equal(count_entries(from), 0);

    /* an unwritable source */
    snprintf(to, sizeof(to), "%s/missing/deeper", root);
    assert_int_equal(molt_fs_probe_rename(to, from, &err), MOLT_E_IO);
    assert_non_null(strstr(err.msg, to));

    /* across file systems (tmpfs /dev/shm when it is one): EXDEV, named */
    snprintf(shm, sizeof(shm), "/dev/shm/molt-test-fs.XXXXXX");
    if (mkdtemp(shm) != NULL) {
        if (stat(shm, &a) == 0 && stat(from, &b) == 0 && a.st_dev != b.st_dev) {
            assert_int_equal(molt_fs_probe_rename(shm, from, &err), MOLT_E_IO);
            assert_non_null(strstr(err.msg, "Invalid cross-device link"));
            assert_non_null(strstr(err.msg, shm));
            assert_non_null(strstr(err.msg, from));
            assert_int_equal(count_entries(shm), 0);
            assert_int_equal(count_entries(from), 0);
        }
        tu_rmtree(shm);
    }
    tu_rmtree(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic),
#ifdef MOLT_FAULT_POINTS
        cmocka_unit_test(test_write_atomic_failure_keeps_old),
        cmocka_unit_test(test_fault_once),
#endif
        cmocka_unit_test(test_fault_points_only_when_built),
        cmocka_unit_test(test_write_atomic_missing_dir),
        cmocka_unit_test(test_symlink_atomic),
        cmocka_unit_test(test_read_limits),
        cmocka_unit_test(test_mkdir_and_remove_tree),
        cmocka_unit_test(test_probe_rename),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
