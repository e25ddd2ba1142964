/* Tests for core/plugin_loader.c: each ABI refusal alone (with its exact message), version
 * constraints, content-hash identity of images, hot swap of a file replaced in place, and the
 * reference / reap lifecycle with its private copies.
 *
 * The test plugins are built by tests/plugins/ into <dir of this executable>/plugins/<case>/;
 * LINTEL_TEST_PLUGIN_DIR overrides that directory. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_loader.h"

static char plugin_dir[PATH_MAX]; /* .../tests/plugins */
static char base[PATH_MAX];       /* this test's scratch directory */
static char run_dir[PATH_MAX];    /* base/run */

/* ---- helpers -------------------------------------------------------------------------------- */

/* snprintf for paths: test paths stay far below the buffers, so truncation is not checked. */
__attribute__((format(printf, 3, 4))) static void pathf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static const char *path_of(char *buf, size_t len, const char *dir, const char *name)
{
    pathf(buf, len, "%s/%s", dir, name);
    return buf;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Writes src's content into dst; an existing dst is rewritten in place (same inode). */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = in >= 0 && out >= 0 ? 0 : -1;
    char buf[8192];
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            rc = -1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Copies plugins/versions/tp-good-<version>.so to dir/name (dir is created). */
static int place_good(const char *dir, const char *name, const char *version)
{
    char src[PATH_MAX], dst[PATH_MAX];
    pathf(src, sizeof(src), "%s/versions/tp-good-%s.so", plugin_dir, version);
    mkdir(dir, 0700);
    return copy_file(src, path_of(dst, sizeof(dst), dir, name));
}

/* Number of entries in dir (without . and ..), -1 when it does not exist. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void count_image(const struct lintel_image *img, void *arg)
{
    (*(int *)arg)++;
}

static int count_images(struct lintel_registry *reg)
{
    int n = 0;
    lintel_registry_foreach(reg, count_image, &n);
    return n;
}

static struct lintel_registry *new_registry(void)
{
    char err[256] = "";
    struct lintel_registry *reg = lintel_registry_new(run_dir, err, sizeof(err));
    if (!reg)
        fprintf(stderr, "lintel_registry_new: %s\n", err);
    return reg;
}

static int scan1(struct lintel_registry *reg, const char *dir, char *err, size_t errlen)
{
    const char *paths[] = {dir};
    return lintel_registry_scan(reg, paths, 1, err, errlen);
}

/* ---- suite setup ---------------------------------------------------------------------------- */

static int suite_init(void)
{
    const char *env = getenv("LINTEL_TEST_PLUGIN_DIR");
    if (env && *env) {
        pathf(plugin_dir, sizeof(plugin_dir), "%s", env);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
            return -1;
        exe[n] = '\0';
        pathf(plugin_dir, sizeof(plugin_dir), "%s/plugins", dirname(exe));
    }
    char probe[PATH_MAX];
    pathf(probe, sizeof(probe), "%s/versions/tp-good-1.0.0.so", plugin_dir);
    if (!exists(probe)) {
        fprintf(stderr, "%s is missing: build the target lintel_test_plugins first\n", probe);
        return -1;
    }
    return 0;
}

/* Every test gets a fresh scratch directory: registries and copies never leak between tests. */
static void test_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    pathf(base, sizeof(base), "%s/lintel-loader-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        base[0] = '\0';
    pathf(run_dir, sizeof(run_dir), "%s/run/images", base);
}

static void test_teardown(void)
{
    if (base[0])
        nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- refusals ------------------------------------------------------------------------------- */

/* Scans plugins/<dir> and expects exactly "<file>: <reason>", with no private copy left. */
static void expect_refusal(const char *dir, const char *file, const char *reason)
{
    char scan_dir[PATH_MAX], want[1024], err[1024] = "";
    pathf(scan_dir, sizeof(scan_dir), "%s/%s", plugin_dir, dir);
    pathf(want, sizeof(want), "%s/%s: %s", scan_dir, file, reason);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, scan_dir, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_EQUAL(count_images(reg), 0);
    CU_ASSERT_EQUAL(count_files(run_dir), 0);
    lintel_registry_free(reg);
    CU_ASSERT_FALSE(exists(run_dir));
}

static void test_wrong_major(void)
{
    char reason[128];
    snprintf(reason, sizeof(reason), "wrong ABI major %d (host %d)", LINTEL_ABI_MAJOR + 1,
             LINTEL_ABI_MAJOR);
    expect_refusal("wrong-major", "tp-wrong-major.so", reason);
}

static void test_newer_minor(void)
{
    char reason[128];
    snprintf(reason, sizeof(reason), "ABI minor %d is newer than the host's %d",
             LINTEL_ABI_MINOR + 7, LINTEL_ABI_MINOR);
    expect_refusal("newer-minor", "tp-newer-minor.so", reason);
}

static void test_missing_symbol(void)
{
    expect_refusal("missing-symbol", "tp-missing-symbol.so", "no symbol lintel_plugin_v1");
}

static void test_small_struct(void)
{
    char reason[128];
    snprintf(reason, sizeof(reason), "struct_size 8 is smaller than the v1 descriptor (%zu)",
             sizeof(struct lintel_plugin)); /* ABI 1.0 is the whole struct */
    expect_refusal("small-struct", "tp-small-struct.so", reason);
}

static void test_bad_version(void)
{
    expect_refusal("bad-version", "tp-bad-version.so", "bad version \"1.0\"");
}

static void test_dlopen_error(void)
{
    char dir[PATH_MAX], junk[PATH_MAX], want[PATH_MAX + 32], err[1024] = "";
    pathf(dir, sizeof(dir), "%s/junk", base);
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    path_of(junk, sizeof(junk), dir, "junk.so");
    FILE *f = fopen(junk, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("not an ELF object\n", f);
    fclose(f);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), -1);
    pathf(want, sizeof(want), "%s: dlopen: ", junk);
    CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
    CU_ASSERT(strlen(err) > strlen(want)); /* dlerror()'s reason follows */
    CU_ASSERT_EQUAL(count_files(run_dir), 0);
    lintel_registry_free(reg);
}

/* The loader does not run create, so failing-create loads; its create fails as the host sees it. */
static char cfg_error_text[256];

__attribute__((format(printf, 3, 4))) static void
record_cfg_error(lintel_cfg_error *err, const lintel_cfg *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg_error_text, sizeof(cfg_error_text), fmt, ap);
    va_end(ap);
}

static void test_failing_create_loads(void)
{
    char dir[PATH_MAX], err[1024] = "";
    pathf(dir, sizeof(dir), "%s/failing-create", plugin_dir);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    struct lintel_image *img =
        lintel_registry_find(reg, "tp-failing-create", NULL, err, sizeof(err));
    CU_ASSERT_FATAL(img != NULL);
    CU_ASSERT_FATAL(img->desc->create != NULL);
    struct lintel_host_api host = {
        .struct_size = sizeof(host),
        .abi_major = LINTEL_ABI_MAJOR,
        .abi_minor = LINTEL_ABI_MINOR,
        .cfg_error = record_cfg_error,
    };
    void *instance = NULL;
    cfg_error_text[0] = '\0';
    CU_ASSERT_EQUAL(img->desc->create(&host, NULL, NULL, NULL, &instance), -1);
    CU_ASSERT_STRING_EQUAL(cfg_error_text, "this plugin always fails: as asked");
    lintel_image_unref(img);
    lintel_registry_free(reg);
}

static void test_check_fields(void)
{
    char err[256];
    struct lintel_plugin p = {LINTEL_PLUGIN_INIT, .name = "ok_name-1", .version = "1.2.3"};
    CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), 0);

    /* A larger descriptor (a newer plugin build of the same minor) is read up to our size. */
    struct {
        struct lintel_plugin p;
        char more[16];
    } big = {.p = p};
    big.p.struct_size = sizeof(big);
    CU_ASSERT_EQUAL(lintel_plugin_check(&big.p, err, sizeof(err)), 0);

    static const char *bad_names[] = {
        "",
        "Upper",
        "dot.ted",
        "sp ace",
        "a123456789012345678901234567890123456789012345678901234567890123", /* 64 */
    };
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        p.name = bad_names[i];
        CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), -1);
        CU_ASSERT_STRING_EQUAL(err, "bad plugin name");
    }
    p.name = NULL;
    CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "bad plugin name");
    p.name = "a12345678901234567890123456789012345678901234567890123456789012"; /* 63 */
    CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), 0);

    static const char *good_versions[] = {"0.0.0",
                                          "10.20.30",
                                          "1.0.0-rc.1",
                                          "1.0.0-x-y+b.5",
                                          "1.0.0+build",
                                          "4294967295.0.0",
                                          "1.0.0-a123456789012345678901234" /* 31 */};
    for (size_t i = 0; i < sizeof(good_versions) / sizeof(good_versions[0]); i++) {
        p.version = good_versions[i];
        CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), 0);
    }
    static const char *bad_versions[] = {
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.00.0",
        "v1.0.0",
        "1.0.0-",
        "1.0.0-a..b",
        "1.0.0+",
        "1.0.0 ",
        "-1.0.0",
        "4294967296.0.0",
        "1.0.0-a_b",
        "1.0.0-a1234567890123456789012345", /* 32 characters: longer than the record holds */
    };
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
        char want[128];
        p.version = bad_versions[i];
        snprintf(want, sizeof(want), "bad version \"%s\"", bad_versions[i]);
        CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), -1);
        CU_ASSERT_STRING_EQUAL(err, want);
    }
    p.version = NULL;
    CU_ASSERT_EQUAL(lintel_plugin_check(&p, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "bad version (none)");
}

static void test_registry_new_fails(void)
{
    char file[PATH_MAX], dir[PATH_MAX], err[1024] = "";
    path_of(file, sizeof(file), base, "plain");
    FILE *f = fopen(file, "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    path_of(dir, sizeof(dir), file, "run");
    CU_ASSERT_PTR_NULL(lintel_registry_new(dir, err, sizeof(err)));
    CU_ASSERT(strstr(err, "Not a directory") != NULL);

    /* A run directory others can write to is refused. */
    char want[PATH_MAX + 128];
    path_of(dir, sizeof(dir), base, "shared");
    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0 && chmod(dir, 0777) == 0);
    CU_ASSERT_PTR_NULL(lintel_registry_new(dir, err, sizeof(err)));
    pathf(want, sizeof(want), "%s: run directory must be ours and not writable by group or others",
          dir);
    CU_ASSERT_STRING_EQUAL(err, want);
}

/* ---- scanning and versions ------------------------------------------------------------------ */

static void test_missing_dir_is_empty(void)
{
    char dir[PATH_MAX], err[256] = "";
    path_of(dir, sizeof(dir), base, "nowhere");
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 0);
    CU_ASSERT_PTR_NULL(lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "no plugin \"tp-good\" in plugin_paths");
    lintel_registry_free(reg);
}

/* find with constraint must give version want (NULL: must fail with err == want). */
static void expect_find(struct lintel_registry *reg, const char *constraint, const char *want)
{
    char err[512] = "";
    struct lintel_image *img = lintel_registry_find(reg, "tp-good", constraint, err, sizeof(err));
    if (!img) {
        CU_ASSERT_STRING_EQUAL(err, want);
        return;
    }
    CU_ASSERT_STRING_EQUAL(img->version, want);
    CU_ASSERT_EQUAL(atomic_load(&img->refs), 1);
    lintel_image_unref(img);
}

static void test_version_constraints(void)
{
    char dir[PATH_MAX], err[512] = "";
    pathf(dir, sizeof(dir), "%s/versions", plugin_dir);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 3);
    expect_find(reg, NULL, "2.0.0");
    expect_find(reg, "1", "1.2.0");
    expect_find(reg, "1.0", "1.0.0");
    expect_find(reg, "1.2.0", "1.2.0");
    expect_find(reg, "2.0.0", "2.0.0");
    expect_find(reg, "2", "2.0.0");
    expect_find(reg, "3",
                "plugin \"tp-good\" has no version matching \"3\" (loaded: 1.0.0, 1.2.0, 2.0.0)");
    expect_find(reg, "1.1",
                "plugin \"tp-good\" has no version matching \"1.1\" "
                "(loaded: 1.0.0, 1.2.0, 2.0.0)");
    expect_find(reg, "1.x",
                "plugin \"tp-good\": bad version constraint \"1.x\" "
                "(MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH)");
    expect_find(reg, "1.0.0.0",
                "plugin \"tp-good\": bad version constraint \"1.0.0.0\" "
                "(MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH)");
    CU_ASSERT_PTR_NULL(lintel_registry_find(reg, "tp-other", NULL, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "no plugin \"tp-other\" in plugin_paths");

    /* The record: parsed version, hash-named private copy, source path. */
    struct lintel_image *img = lintel_registry_find(reg, "tp-good", "1.2", err, sizeof(err));
    CU_ASSERT_FATAL(img != NULL);
    CU_ASSERT_EQUAL(img->vmajor, 1);
    CU_ASSERT_EQUAL(img->vminor, 2);
    CU_ASSERT_EQUAL(img->vpatch, 0);
    CU_ASSERT_STRING_EQUAL(img->name, "tp-good");
    CU_ASSERT_EQUAL(img->desc->priority, 100);
    CU_ASSERT_EQUAL(strlen(img->hash), 64);
    CU_ASSERT_EQUAL(strspn(img->hash, "0123456789abcdef"), 64);
    char want[PATH_MAX];
    pathf(want, sizeof(want), "%s/%s.so", run_dir, img->hash);
    CU_ASSERT_STRING_EQUAL(img->run_path, want);
    pathf(want, sizeof(want), "%s/tp-good-1.2.0.so", dir);
    CU_ASSERT_STRING_EQUAL(img->src_path, want);
    struct stat st;
    CU_ASSERT_FATAL(stat(img->run_path, &st) == 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(count_files(run_dir), 3);
    lintel_image_unref(img);

    /* A rescan of unchanged files loads nothing more. */
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 3);
    lintel_registry_free(reg);
    CU_ASSERT_FALSE(exists(run_dir));
}

static void test_same_content_loads_once(void)
{
    char a[PATH_MAX], b[PATH_MAX], want[PATH_MAX], err[512] = "";
    path_of(a, sizeof(a), base, "a");
    path_of(b, sizeof(b), base, "b");
    CU_ASSERT_FATAL(place_good(a, "first.so", "1.0.0") == 0);
    CU_ASSERT_FATAL(place_good(b, "second.so", "1.0.0") == 0);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    const char *paths[] = {a, b};
    CU_ASSERT_EQUAL(lintel_registry_scan(reg, paths, 2, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 1);
    CU_ASSERT_EQUAL(count_files(run_dir), 1);
    struct lintel_image *img = lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err));
    CU_ASSERT_FATAL(img != NULL);
    CU_ASSERT_STRING_EQUAL(img->src_path, path_of(want, sizeof(want), a, "first.so"));
    lintel_image_unref(img);
    lintel_registry_free(reg);
}

/* A file rewritten in place is a new image; the old one keeps running for whoever holds it. */
static void test_replaced_file_is_new_image(void)
{
    char a[PATH_MAX], file[PATH_MAX], src[PATH_MAX], err[512] = "";
    path_of(a, sizeof(a), base, "a");
    path_of(file, sizeof(file), a, "tp.so");
    CU_ASSERT_FATAL(place_good(a, "tp.so", "1.0.0") == 0);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, a, err, sizeof(err)), 0);
    struct lintel_image *old = lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err));
    CU_ASSERT_FATAL(old != NULL);
    CU_ASSERT_STRING_EQUAL(old->version, "1.0.0");

    struct stat before, after;
    CU_ASSERT_FATAL(stat(file, &before) == 0);
    pathf(src, sizeof(src), "%s/versions/tp-good-1.2.0.so", plugin_dir);
    CU_ASSERT_FATAL(copy_file(src, file) == 0);
    CU_ASSERT_FATAL(stat(file, &after) == 0);
    CU_ASSERT_EQUAL(before.st_ino, after.st_ino); /* really in place */

    CU_ASSERT_EQUAL(scan1(reg, a, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 2);
    CU_ASSERT_EQUAL(count_files(run_dir), 2);
    struct lintel_image *cur = lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err));
    CU_ASSERT_FATAL(cur != NULL);
    CU_ASSERT_PTR_NOT_EQUAL(cur, old);
    CU_ASSERT_STRING_EQUAL(cur->version, "1.2.0");
    CU_ASSERT_STRING_NOT_EQUAL(cur->hash, old->hash);
    CU_ASSERT_STRING_EQUAL(cur->src_path, old->src_path);

    /* The old image is untouched for whoever holds it (still loaded, descriptor readable), but
     * its file is gone, so a new configuration can no longer pick it. */
    CU_ASSERT_EQUAL(atomic_load(&old->state), LINTEL_IMAGE_ACTIVE);
    CU_ASSERT_FATAL(old->desc != NULL);
    CU_ASSERT_STRING_EQUAL(old->desc->version, "1.0.0");
    CU_ASSERT(exists(old->run_path));
    struct lintel_image *again = lintel_registry_find(reg, "tp-good", "1.0", err, sizeof(err));
    CU_ASSERT_PTR_NULL(again);
    CU_ASSERT_STRING_EQUAL(err, "plugin \"tp-good\" has no version matching \"1.0\" (loaded: 1.2.0)");
    CU_ASSERT_EQUAL(atomic_load(&old->refs), 1);
    if (again)
        lintel_image_unref(again);

    /* The same content back in place is offered again (the loaded image, not a new copy). */
    pathf(src, sizeof(src), "%s/versions/tp-good-1.0.0.so", plugin_dir);
    CU_ASSERT_FATAL(copy_file(src, file) == 0);
    CU_ASSERT_EQUAL(scan1(reg, a, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 2);
    again = lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err));
    CU_ASSERT_PTR_EQUAL(again, old);
    if (again)
        lintel_image_unref(again);

    /* Dropping the 1.2.0 one unloads only it. */
    lintel_image_unref(cur);
    CU_ASSERT_EQUAL(lintel_registry_reap(reg), 1);
    CU_ASSERT_EQUAL(atomic_load(&old->state), LINTEL_IMAGE_ACTIVE);
    CU_ASSERT_EQUAL(count_files(run_dir), 1);
    lintel_image_unref(old);
    lintel_registry_free(reg);
    CU_ASSERT_FALSE(exists(run_dir));
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void test_ref_unref_reap(void)
{
    char dir[PATH_MAX], err[512] = "";
    pathf(dir, sizeof(dir), "%s/versions", plugin_dir);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    struct lintel_image *v12 = lintel_registry_find(reg, "tp-good", "1.2", err, sizeof(err));
    struct lintel_image *v10 = lintel_registry_find(reg, "tp-good", "1.0", err, sizeof(err));
    struct lintel_image *v20 = lintel_registry_find(reg, "tp-good", "2", err, sizeof(err));
    CU_ASSERT_FATAL(v10 && v12 && v20);
    lintel_image_unref(v12);
    lintel_image_unref(v20);
    CU_ASSERT_EQUAL(atomic_load(&v20->state), LINTEL_IMAGE_DRAINING);
    char v12_copy[sizeof(v12->run_path)];
    snprintf(v12_copy, sizeof(v12_copy), "%s", v12->run_path);

    /* Found again while draining: active again. */
    lintel_image_ref(v20);
    CU_ASSERT_EQUAL(atomic_load(&v20->state), LINTEL_IMAGE_ACTIVE);
    lintel_image_unref(v20);
    CU_ASSERT_EQUAL(atomic_load(&v20->refs), 0);

    /* Every image without references goes; the referenced one stays. */
    CU_ASSERT_EQUAL(lintel_registry_reap(reg), 2);
    CU_ASSERT_EQUAL(atomic_load(&v12->state), LINTEL_IMAGE_UNLOADED);
    CU_ASSERT_EQUAL(atomic_load(&v20->state), LINTEL_IMAGE_UNLOADED);
    CU_ASSERT_PTR_NULL(v12->desc);
    CU_ASSERT_PTR_NULL(v12->dl);
    CU_ASSERT_FALSE(exists(v12_copy));
    CU_ASSERT_EQUAL(atomic_load(&v10->state), LINTEL_IMAGE_ACTIVE);
    CU_ASSERT(exists(v10->run_path));
    CU_ASSERT_EQUAL(count_files(run_dir), 1);
    CU_ASSERT_EQUAL(count_images(reg), 3); /* unloaded records stay */
    struct lintel_image *left = lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err));
    CU_ASSERT_PTR_EQUAL(left, v10); /* unloaded images are not found */
    if (left)
        lintel_image_unref(left);
    CU_ASSERT_EQUAL(lintel_registry_reap(reg), 0);

    lintel_image_unref(v10);
    CU_ASSERT_EQUAL(atomic_load(&v10->state), LINTEL_IMAGE_DRAINING);
    CU_ASSERT(exists(v10->run_path)); /* unref never unloads */
    CU_ASSERT_EQUAL(lintel_registry_reap(reg), 1);
    CU_ASSERT_EQUAL(atomic_load(&v10->state), LINTEL_IMAGE_UNLOADED);
    CU_ASSERT_EQUAL(count_files(run_dir), 0);

    /* Unloaded content loads again on the next scan, as new records. */
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 6);
    struct lintel_image *back = lintel_registry_find(reg, "tp-good", "1.0", err, sizeof(err));
    CU_ASSERT_FATAL(back != NULL);
    CU_ASSERT_PTR_NOT_EQUAL(back, v10);
    CU_ASSERT_STRING_EQUAL(back->hash, v10->hash);
    CU_ASSERT_STRING_EQUAL(back->run_path, v10->run_path);
    CU_ASSERT(exists(back->run_path));
    lintel_image_unref(back);
    lintel_registry_free(reg);
    CU_ASSERT_FALSE(exists(run_dir));
}

/* Workers that each held one reference take and drop more, then their own: at the end the image
 * has no references and is DRAINING, whatever the interleaving. */
static void *churn(void *arg)
{
    struct lintel_image *img = arg;
    for (int i = 0; i < 20000; i++) {
        lintel_image_ref(img);
        lintel_image_unref(img);
    }
    lintel_image_unref(img);
    return NULL;
}

static void test_refs_across_threads(void)
{
    char dir[PATH_MAX], err[512] = "";
    pathf(dir, sizeof(dir), "%s/versions", plugin_dir);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    enum { NTHREADS = 4 };
    struct lintel_image *img = lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err));
    CU_ASSERT_FATAL(img != NULL);
    for (int i = 1; i < NTHREADS; i++)
        lintel_image_ref(img);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, churn, img) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&img->refs), 0);
    CU_ASSERT_EQUAL(atomic_load(&img->state), LINTEL_IMAGE_DRAINING);
    lintel_registry_free(reg);
}

static void test_unloaded_records_bounded(void)
{
    char a[PATH_MAX], err[512] = "";
    path_of(a, sizeof(a), base, "a");
    CU_ASSERT_FATAL(place_good(a, "tp.so", "1.0.0") == 0);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    for (int i = 0; i < 70; i++) {
        CU_ASSERT_EQUAL_FATAL(scan1(reg, a, err, sizeof(err)), 0);
        CU_ASSERT_EQUAL_FATAL(lintel_registry_reap(reg), 1);
    }
    CU_ASSERT_EQUAL(count_images(reg), 64);
    CU_ASSERT_EQUAL(scan1(reg, a, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(count_images(reg), 65); /* the bound is on unloaded records only */
    lintel_registry_free(reg);
}

static void test_free_keeps_foreign_files(void)
{
    char dir[PATH_MAX], other[PATH_MAX], err[512] = "";
    pathf(dir, sizeof(dir), "%s/versions", plugin_dir);
    struct lintel_registry *reg = new_registry();
    CU_ASSERT_FATAL(reg != NULL);
    CU_ASSERT_EQUAL(scan1(reg, dir, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(lintel_registry_find(reg, "tp-good", NULL, err, sizeof(err)));
    FILE *f = fopen(path_of(other, sizeof(other), run_dir, "someone-else"), "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    lintel_registry_free(reg); /* unloads referenced images too */
    CU_ASSERT_EQUAL(count_files(run_dir), 1);
    CU_ASSERT(exists(other));
    lintel_registry_free(NULL);
}

static CU_TestInfo loader_tests[] = {
    {"refuses a wrong ABI major", test_wrong_major},
    {"refuses a newer ABI minor", test_newer_minor},
    {"refuses a missing lintel_plugin_v1", test_missing_symbol},
    {"refuses a too small struct_size", test_small_struct},
    {"refuses a bad version", test_bad_version},
    {"reports dlopen errors", test_dlopen_error},
    {"loads a plugin whose create fails", test_failing_create_loads},
    {"lintel_plugin_check: names, versions, sizes", test_check_fields},
    {"registry_new: bad run directories", test_registry_new_fails},
    {"a missing directory is empty", test_missing_dir_is_empty},
    {"version constraints", test_version_constraints},
    {"same content in two paths loads once", test_same_content_loads_once},
    {"a file replaced in place is a new image", test_replaced_file_is_new_image},
    {"ref, unref, reap, rescan", test_ref_unref_reap},
    {"ref and unref from several threads", test_refs_across_threads},
    {"unloaded records are bounded", test_unloaded_records_bounded},
    {"registry_free unloads all, keeps foreign files", test_free_keeps_foreign_files},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"plugin_loader", suite_init, NULL, test_setup, test_teardown, loader_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
