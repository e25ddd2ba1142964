/* Plugin images: scanning plugin directories, private copies named by content hash, ABI checks,
 * version lookup and unloading (see plugin_loader.h for the rules callers rely on).
 *
 * Everything but lintel_image_ref/unref runs on the main thread, so the image list needs no lock.
 * ref/unref may run on workers; they only touch the two atomics of the record. */
#include "plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* The smallest descriptor a 1.x plugin may export: the whole 1.0 struct. */
#define V1_0_DESC_SIZE (offsetof(struct lintel_plugin, reopen) + sizeof(void (*)(void *)))

/* Plugins built for 1.0 are read straight from their image. Once a minor adds fields, a smaller
 * descriptor must be copied into a zero-filled host struct before anyone reads the new fields. */
_Static_assert(V1_0_DESC_SIZE == sizeof(struct lintel_plugin),
               "copy descriptors smaller than the host's into a zero-filled struct");

#define IMAGE_FIELD_SIZE(f) sizeof(((struct lintel_image *)0)->f)

/* Longest run directory (with its NUL) for which run_dir + "/" + 64 hex digits + ".so" fits
 * lintel_image.run_path. */
#define RUN_DIR_SIZE (IMAGE_FIELD_SIZE(run_path) - (1 + 64 + 3))

/* GET /-/plugins shows recent unloads; a long-running gateway swapping versions for months
 * must not grow without bound. */
#define MAX_UNLOADED_RECORDS 64

/* The registry's record: the public image plus what only the registry needs. */
struct image_rec {
    struct lintel_image img;       /* first, so a list node converts back to its record */
    unsigned long long unload_seq; /* order of unloading; the oldest unloads are pruned first */
};

struct lintel_registry {
    struct lintel_image *images; /* newest load first */
    unsigned scan_seq;           /* bumped by every scan; find sees only images it found */
    unsigned nunloaded;          /* records in state UNLOADED */
    unsigned long long unload_seq;
    char run_dir[RUN_DIR_SIZE];
};

__attribute__((format(printf, 3, 4))) static void fail(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static struct image_rec *rec_of(struct lintel_image *img)
{
    return (struct image_rec *)img;
}

/* ---- versions ------------------------------------------------------------------------------- */

/* Parses a semver numeric identifier at *s (digits, no leading zero, fits unsigned) and moves *s
 * past it. 0 or -1. */
static int parse_number(const char **s, unsigned *out)
{
    const char *p = *s;
    if (*p < '0' || *p > '9')
        return -1;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9')
        return -1;
    unsigned long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > UINT_MAX)
            return -1;
    }
    *out = (unsigned)v;
    *s = p;
    return 0;
}

/* Dot-separated non-empty identifiers of [0-9A-Za-z-], as semver's pre-release and build parts;
 * moves *s to the first character that is not part of them. 0 or -1. */
static int parse_identifiers(const char **s)
{
    const char *p = *s;
    for (;;) {
        const char *start = p;
        while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
               *p == '-')
            p++;
        if (p == start)
            return -1;
        if (*p != '.')
            break;
        p++;
    }
    *s = p;
    return 0;
}

/* "MAJOR.MINOR.PATCH[-pre][+build]" short enough for lintel_image.version. The pre-release and
 * build parts are accepted but ignored: images order by the three numbers only. 0 or -1. */
static int parse_semver(const char *s, unsigned v[3])
{
    if (!s || strnlen(s, IMAGE_FIELD_SIZE(version)) >= IMAGE_FIELD_SIZE(version))
        return -1;
    for (int i = 0; i < 3; i++) {
        if (parse_number(&s, &v[i]) < 0)
            return -1;
        if (i < 2 && *s++ != '.')
            return -1;
    }
    if (*s == '-') {
        s++;
        if (parse_identifiers(&s) < 0)
            return -1;
    }
    if (*s == '+') {
        s++;
        if (parse_identifiers(&s) < 0)
            return -1;
    }
    return *s ? -1 : 0;
}

/* A version constraint: "MAJOR", "MAJOR.MINOR" or "MAJOR.MINOR.PATCH". Returns how many numbers
 * it fixes (1..3), or -1. */
static int parse_constraint(const char *s, unsigned v[3])
{
    int n = 0;
    for (;;) {
        if (parse_number(&s, &v[n++]) < 0)
            return -1;
        if (!*s)
            return n;
        if (*s++ != '.' || n == 3)
            return -1;
    }
}

static int version_cmp(const struct lintel_image *a, const struct lintel_image *b)
{
    if (a->vmajor != b->vmajor)
        return a->vmajor < b->vmajor ? -1 : 1;
    if (a->vminor != b->vminor)
        return a->vminor < b->vminor ? -1 : 1;
    if (a->vpatch != b->vpatch)
        return a->vpatch < b->vpatch ? -1 : 1;
    return 0;
}

/* Like version_cmp, then by the version text, so that "1.0.0-rc1" and "1.0.0" list apart. */
static int version_text_cmp(const struct lintel_image *a, const struct lintel_image *b)
{
    int c = version_cmp(a, b);
    return c ? c : strcmp(a->version, b->version);
}

static bool version_matches(const struct lintel_image *img, const unsigned want[3], int nwant)
{
    const unsigned have[3] = {img->vmajor, img->vminor, img->vpatch};
    for (int i = 0; i < nwant; i++)
        if (have[i] != want[i])
            return false;
    return true;
}

/* ---- ABI check ------------------------------------------------------------------------------ */

static bool valid_name(const char *name)
{
    if (!name)
        return false;
    size_t len = strnlen(name, IMAGE_FIELD_SIZE(name));
    if (len == 0 || len >= IMAGE_FIELD_SIZE(name))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int lintel_plugin_check(const struct lintel_plugin *p, char *err, size_t errlen)
{
    /* The three ABI fields come first in every version of the struct, so they are always
     * readable; everything else only once struct_size says it is there. */
    if (p->abi_major != LINTEL_ABI_MAJOR) {
        fail(err, errlen, "wrong ABI major %u (host %u)", (unsigned)p->abi_major,
             (unsigned)LINTEL_ABI_MAJOR);
        return -1;
    }
    if (p->abi_minor > LINTEL_ABI_MINOR) {
        fail(err, errlen, "ABI minor %u is newer than the host's %u", (unsigned)p->abi_minor,
             (unsigned)LINTEL_ABI_MINOR);
        return -1;
    }
    if (p->struct_size < V1_0_DESC_SIZE) {
        fail(err, errlen, "struct_size %u is smaller than the v1 descriptor (%zu)",
             (unsigned)p->struct_size, (size_t)V1_0_DESC_SIZE);
        return -1;
    }
    if (!valid_name(p->name)) {
        fail(err, errlen, "bad plugin name");
        return -1;
    }
    unsigned v[3];
    if (parse_semver(p->version, v) < 0) {
        if (p->version)
            fail(err, errlen, "bad version \"%.*s\"", 64, p->version);
        else
            fail(err, errlen, "bad version (none)");
        return -1;
    }
    return 0;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* mkdir -p with mode 0700 for what it creates; an existing directory is fine. 0 or -1 (errno). */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        errno = len ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* What is in the run directory gets executed: nobody else may be able to put files there
 * between our rename and dlopen. 0, or -1 with err set. */
static int check_private(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        fail(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        fail(err, errlen, "%s: run directory must be ours and not writable by group or others",
             dir);
        return -1;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* SHA-256 of fd's whole content (read from offset 0 whatever its position) as lowercase hex,
 * copying the bytes to out_fd as well when out_fd >= 0. 0, or -1 with err set (no path). */
static int hash_file(int fd, int out_fd, char hex[65], char *err, size_t errlen)
{
    int rc = -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        fail(err, errlen, "SHA-256 unavailable");
        goto out;
    }
    unsigned char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(err, errlen, "read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        off += n;
        if (!EVP_DigestUpdate(md, buf, (size_t)n)) {
            fail(err, errlen, "SHA-256 failed");
            goto out;
        }
        if (out_fd >= 0 && write_all(out_fd, buf, (size_t)n) < 0) {
            fail(err, errlen, "copy: %s", strerror(errno));
            goto out;
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (!EVP_DigestFinal_ex(md, digest, &dlen) || dlen != 32) {
        fail(err, errlen, "SHA-256 failed");
        goto out;
    }
    for (unsigned i = 0; i < dlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

/* ---- the registry --------------------------------------------------------------------------- */

struct lintel_registry *lintel_registry_new(const char *run_dir, char *err, size_t errlen)
{
    if (strlen(run_dir) >= RUN_DIR_SIZE) {
        fail(err, errlen, "%s: run directory path too long", run_dir);
        return NULL;
    }
    if (make_dirs(run_dir) < 0) {
        fail(err, errlen, "%s: %s", run_dir, strerror(errno));
        return NULL;
    }
    if (check_private(run_dir, err, errlen) < 0)
        return NULL;
    struct lintel_registry *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(reg->run_dir, sizeof(reg->run_dir), "%s", run_dir);
    return reg;
}

static struct lintel_image *find_loaded_hash(struct lintel_registry *reg, const char *hex)
{
    for (struct lintel_image *img = reg->images; img; img = img->next)
        if (atomic_load(&img->state) != LINTEL_IMAGE_UNLOADED && !strcmp(img->hash, hex))
            return img;
    return NULL;
}

static void unload(struct lintel_registry *reg, struct lintel_image *img)
{
    dlclose(img->dl);
    img->dl = NULL;
    img->desc = NULL;
    unlink(img->run_path);
    atomic_store(&img->state, LINTEL_IMAGE_UNLOADED);
    rec_of(img)->unload_seq = ++reg->unload_seq;
    reg->nunloaded++;
}

/* Frees the records of the oldest unloads beyond MAX_UNLOADED_RECORDS. */
static void prune(struct lintel_registry *reg)
{
    while (reg->nunloaded > MAX_UNLOADED_RECORDS) {
        struct lintel_image **oldest = NULL;
        for (struct lintel_image **pp = &reg->images; *pp; pp = &(*pp)->next)
            if (atomic_load(&(*pp)->state) == LINTEL_IMAGE_UNLOADED &&
                (!oldest || rec_of(*pp)->unload_seq < rec_of(*oldest)->unload_seq))
                oldest = pp;
        struct lintel_image *img = *oldest;
        *oldest = img->next;
        free(rec_of(img));
        reg->nunloaded--;
    }
}

/* Loads the private copy run_path (named by hex) of src: dlopen, symbol, ABI check, record.
 * On failure the copy is removed. 0 or -1 with err = "SRC: reason". */
static int open_image(struct lintel_registry *reg, const char *src, const char *run_path,
                      const char *hex, char *err, size_t errlen)
{
    char reason[256];
    const struct lintel_plugin *desc = NULL;
    struct image_rec *rec = NULL;
    void *dl = dlopen(run_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        fail(err, errlen, "%s: dlopen: %s", src, why ? why : "unknown error");
        goto fail;
    }
    desc = dlsym(dl, LINTEL_PLUGIN_SYMBOL);
    if (!desc) {
        fail(err, errlen, "%s: no symbol " LINTEL_PLUGIN_SYMBOL, src);
        goto fail;
    }
    if (lintel_plugin_check(desc, reason, sizeof(reason)) < 0) {
        fail(err, errlen, "%s: %s", src, reason);
        goto fail;
    }
    rec = calloc(1, sizeof(*rec));
    if (!rec) {
        fail(err, errlen, "%s: out of memory", src);
        goto fail;
    }
    struct lintel_image *img = &rec->img;
    unsigned v[3];
    parse_semver(desc->version, v); /* cannot fail: lintel_plugin_check accepted it */
    img->vmajor = v[0];
    img->vminor = v[1];
    img->vpatch = v[2];
    atomic_init(&img->refs, 0);
    for (unsigned i = 0; i < LINTEL_INFLIGHT_SLOTS; i++)
        atomic_init(&img->inflight[i].n, 0);
    atomic_init(&img->state, LINTEL_IMAGE_ACTIVE);
    img->desc = desc;
    img->dl = dl;
    snprintf(img->name, sizeof(img->name), "%s", desc->name);
    snprintf(img->version, sizeof(img->version), "%s", desc->version);
    snprintf(img->hash, sizeof(img->hash), "%s", hex);
    img->seen_scan = reg->scan_seq;
    snprintf(img->src_path, sizeof(img->src_path), "%s", src);
    snprintf(img->run_path, sizeof(img->run_path), "%s", run_path);
    img->next = reg->images;
    reg->images = img;
    return 0;
fail:
    if (dl)
        dlclose(dl);
    unlink(run_path);
    return -1;
}

/* Loads the file at path unless an image with its content is loaded already. 0 or -1. */
static int load_file(struct lintel_registry *reg, const char *path, char *err, size_t errlen)
{
    int rc = -1, fd = -1, tmp_fd = -1;
    char reason[256], hex[65], tmp[RUN_DIR_SIZE + 16] = "", run_path[IMAGE_FIELD_SIZE(run_path)];
    struct lintel_image *have;

    /* O_NONBLOCK: a FIFO named x.so must not hang the scan before fstat rejects it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        fail(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = 0;
        goto out;
    }
    /* Hash first so that an unchanged file costs a read, not a copy. */
    if (hash_file(fd, -1, hex, reason, sizeof(reason)) < 0) {
        fail(err, errlen, "%s: %s", path, reason);
        goto out;
    }
    if ((have = find_loaded_hash(reg, hex))) {
        have->seen_scan = reg->scan_seq; /* still present in plugin_paths */
        rc = 0;
        goto out;
    }
    snprintf(tmp, sizeof(tmp), "%s/.copy-XXXXXX", reg->run_dir);
    tmp_fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (tmp_fd < 0) {
        fail(err, errlen, "%s: %s: %s", path, tmp, strerror(errno));
        tmp[0] = '\0';
        goto out;
    }
    /* The file may be rewritten in place between the two reads: the copy is named by what was
     * actually copied, so a name always matches its content. */
    if (hash_file(fd, tmp_fd, hex, reason, sizeof(reason)) < 0) {
        fail(err, errlen, "%s: %s", path, reason);
        goto out;
    }
    if (close(tmp_fd) < 0) {
        tmp_fd = -1;
        fail(err, errlen, "%s: copy: %s", path, strerror(errno));
        goto out;
    }
    tmp_fd = -1;
    if ((have = find_loaded_hash(reg, hex))) {
        have->seen_scan = reg->scan_seq; /* still present in plugin_paths */
        rc = 0;
        goto out;
    }
    snprintf(run_path, sizeof(run_path), "%s/%s.so", reg->run_dir, hex);
    if (rename(tmp, run_path) < 0) {
        fail(err, errlen, "%s: %s: %s", path, run_path, strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    rc = open_image(reg, path, run_path, hex, err, errlen);
out:
    if (tmp_fd >= 0)
        close(tmp_fd);
    if (tmp[0])
        unlink(tmp);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int so_filter(const struct dirent *d)
{
    size_t len = strlen(d->d_name);
    return len > 3 && !strcmp(d->d_name + len - 3, ".so");
}

/* Byte order, not the locale's collation: the same directory loads in the same order anywhere. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int scan_dir(struct lintel_registry *reg, const char *dir, char *err, size_t errlen)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, so_filter, by_name);
    if (n < 0) {
        if (errno == ENOENT)
            return 0;
        fail(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char path[IMAGE_FIELD_SIZE(src_path)];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) >= sizeof(path)) {
            fail(err, errlen, "%s/%s: path too long", dir, names[i]->d_name);
            rc = -1;
            break;
        }
        rc = load_file(reg, path, err, errlen);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int lintel_registry_scan(struct lintel_registry *reg, const char *const *paths, size_t n, char *err,
                         size_t errlen)
{
    /* An image whose file is gone (replaced in place, or deleted) stays loaded for what uses it
     * but is no longer offered to new configurations: swapping v2 back to v1 gives v1. */
    reg->scan_seq++;
    for (size_t i = 0; i < n; i++)
        if (scan_dir(reg, paths[i], err, errlen) < 0)
            return -1;
    return 0;
}

/* Loaded, and its file was found by the latest scan. */
static bool offered(const struct lintel_registry *reg, const struct lintel_image *img)
{
    return atomic_load(&img->state) != LINTEL_IMAGE_UNLOADED && img->seen_scan == reg->scan_seq;
}

/* Appends the distinct versions of plugin name that are loaded, ascending, to buf. */
static void list_versions(struct lintel_registry *reg, const char *name, char *buf, size_t len)
{
    const struct lintel_image *last = NULL;
    size_t used = 0;
    buf[0] = '\0';
    for (;;) {
        /* The smallest version above the last one listed: no sort buffer, and duplicates
         * (one version loaded from two different files) show once. */
        const struct lintel_image *next = NULL;
        for (const struct lintel_image *img = reg->images; img; img = img->next) {
            if (!offered(reg, img) || strcmp(img->name, name))
                continue;
            if (last && version_text_cmp(img, last) <= 0)
                continue;
            if (!next || version_text_cmp(img, next) < 0)
                next = img;
        }
        if (!next)
            return;
        int w = snprintf(buf + used, len - used, "%s%s", last ? ", " : "", next->version);
        if (w < 0 || (size_t)w >= len - used)
            return;
        used += (size_t)w;
        last = next;
    }
}

struct lintel_image *lintel_registry_find(struct lintel_registry *reg, const char *name,
                                          const char *constraint, char *err, size_t errlen)
{
    unsigned want[3];
    int nwant = 0;
    if (constraint && (nwant = parse_constraint(constraint, want)) < 0) {
        fail(err, errlen,
             "plugin \"%s\": bad version constraint \"%s\" (MAJOR, MAJOR.MINOR or "
             "MAJOR.MINOR.PATCH)",
             name, constraint);
        return NULL;
    }
    struct lintel_image *best = NULL;
    bool any = false;
    for (struct lintel_image *img = reg->images; img; img = img->next) {
        if (!offered(reg, img) || strcmp(img->name, name))
            continue;
        any = true;
        /* Strictly newer only: among equal versions the first met, i.e. the newest load, wins. */
        if (version_matches(img, want, nwant) && (!best || version_cmp(img, best) > 0))
            best = img;
    }
    if (best) {
        lintel_image_ref(best);
        return best;
    }
    if (!any) {
        fail(err, errlen, "no plugin \"%s\" in plugin_paths", name);
        return NULL;
    }
    char loaded[256];
    list_versions(reg, name, loaded, sizeof(loaded));
    fail(err, errlen, "plugin \"%s\" has no version matching \"%s\" (loaded: %s)", name, constraint,
         loaded);
    return NULL;
}

void lintel_image_ref(struct lintel_image *img)
{
    atomic_fetch_add(&img->refs, 1);
    /* Found again while draining: it is in use again. */
    int draining = LINTEL_IMAGE_DRAINING;
    atomic_compare_exchange_strong(&img->state, &draining, LINTEL_IMAGE_ACTIVE);
}

void lintel_image_unref(struct lintel_image *img)
{
    /* The state is marked before the last reference is dropped, never after: once refs is 0 the
     * reaper may unload the image and free the record, so the decrement is this thread's last
     * access. A reference taken in between undoes the mark. */
    unsigned refs = atomic_load(&img->refs);
    for (;;) {
        if (refs == 1) {
            int active = LINTEL_IMAGE_ACTIVE;
            atomic_compare_exchange_strong(&img->state, &active, LINTEL_IMAGE_DRAINING);
        }
        if (atomic_compare_exchange_weak(&img->refs, &refs, refs - 1))
            return;
        if (refs != 1) {
            int draining = LINTEL_IMAGE_DRAINING;
            atomic_compare_exchange_strong(&img->state, &draining, LINTEL_IMAGE_ACTIVE);
        }
    }
}

unsigned lintel_registry_reap(struct lintel_registry *reg)
{
    unsigned n = 0;
    for (struct lintel_image *img = reg->images; img; img = img->next) {
        if (atomic_load(&img->state) == LINTEL_IMAGE_UNLOADED || atomic_load(&img->refs) != 0)
            continue;
        unload(reg, img);
        n++;
    }
    prune(reg);
    return n;
}

void lintel_registry_foreach(struct lintel_registry *reg,
                             void (*fn)(const struct lintel_image *img, void *arg), void *arg)
{
    for (const struct lintel_image *img = reg->images; img; img = img->next)
        fn(img, arg);
}

void lintel_registry_free(struct lintel_registry *reg)
{
    if (!reg)
        return;
    struct lintel_image *img = reg->images;
    while (img) {
        struct lintel_image *next = img->next;
        if (atomic_load(&img->state) != LINTEL_IMAGE_UNLOADED)
            unload(reg, img);
        free(rec_of(img));
        img = next;
    }
    rmdir(reg->run_dir); /* only when empty: someone else's files stay */
    free(reg);
}

long lintel_image_inflight(const struct lintel_image *img)
{
    long sum = 0;
    for (unsigned i = 0; i < LINTEL_INFLIGHT_SLOTS; i++)
        sum += atomic_load_explicit(&img->inflight[i].n, memory_order_relaxed);
    return sum;
}
