/* Plugin images: finding plugin files, loading them safely, checking their ABI, and keeping
 * several versions of one plugin loaded at once.
 *
 * Before dlopen a file is copied into a private run directory under a name derived from its
 * content hash (SHA-256) and loaded with RTLD_NOW | RTLD_LOCAL, so a file replaced in place is a
 * new image and the running one is untouched. An image stays loaded while anything references it
 * (instances in live snapshots); when the last reference goes it is marked draining and the main
 * thread unloads it at the next lintel_registry_reap. An image that nothing ever referenced (found
 * by a scan, then not chosen by the configuration) is unloaded by that reap too. */
#ifndef LINTEL_PLUGIN_LOADER_H
#define LINTEL_PLUGIN_LOADER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <lintel/plugin.h>

enum lintel_image_state {
    LINTEL_IMAGE_ACTIVE,   /* referenced by the current configuration or in use */
    LINTEL_IMAGE_DRAINING, /* no longer referenced: waiting for the reaper */
    LINTEL_IMAGE_UNLOADED, /* dlclosed; kept as a record for GET /-/plugins */
};

/* Requests running one of an image's instances, counted per worker so that a request costs no
 * shared atomic: with at most LINTEL_INFLIGHT_SLOTS workers each worker owns a slot (a plain
 * load and store), beyond that workers share slots with atomic adds. Readers sum the slots
 * (lintel_image_inflight). */
#define LINTEL_INFLIGHT_SLOTS 16
struct lintel_inflight_slot {
    atomic_long n;
    char pad[64 - sizeof(atomic_long)]; /* 64 bytes apart: no two counters share a cache line */
};

struct lintel_image {
    struct lintel_image *next;
    atomic_uint refs;      /* instances (and snapshots) holding it */
    struct lintel_inflight_slot inflight[LINTEL_INFLIGHT_SLOTS]; /* see lintel_image_inflight */
    _Atomic int state;     /* enum lintel_image_state */
    const struct lintel_plugin *desc; /* inside the image; NULL once unloaded */
    void *dl;
    char name[64];
    char version[32];
    unsigned vmajor, vminor, vpatch;
    char hash[65];         /* hex SHA-256 of the file */
    unsigned seen_scan;    /* the last scan that found a file with this content */
    char src_path[512];    /* where it was found */
    char run_path[512];    /* the private copy that was dlopened */
};

/* Requests running one of img's instances now (any thread). */
long lintel_image_inflight(const struct lintel_image *img);
/* Worker `worker` starts (+1) or ends (-1) a request running one of img's instances. */
static inline void lintel_image_inflight_add(struct lintel_image *img, unsigned worker,
                                             unsigned nworkers, long d)
{
    atomic_long *n = &img->inflight[worker % LINTEL_INFLIGHT_SLOTS].n;
    if (nworkers <= LINTEL_INFLIGHT_SLOTS)
        atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + d,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(n, d, memory_order_relaxed);
}

struct lintel_registry;

/* Creates a registry whose private copies go to run_dir (created 0700, with missing parents, if
 * missing; it must belong to this user and not be writable by group or others, since what is in
 * it gets executed). Returns NULL with err set. Thread: main. */
struct lintel_registry *lintel_registry_new(const char *run_dir, char *err, size_t errlen);

/* Unloads every image (whatever its references), removes the private copies and frees every
 * record, then removes run_dir if it is empty. Thread: main, after workers have stopped. NULL is
 * ignored. */
void lintel_registry_free(struct lintel_registry *reg);

/* Loads every regular file "*.so" in the directories paths[0..n) (in that order, each directory
 * sorted by file name) that is not loaded yet: same content hash as an image that is not UNLOADED
 * = same image, skipped. The first file that cannot be loaded or fails the ABI checks stops the
 * scan with err = "PATH: reason" (wrong ABI major, newer minor, missing symbol lintel_plugin_v1,
 * struct_size too small, bad name or version, dlopen error) and its private copy is removed;
 * images loaded earlier in the same scan stay. A missing directory is not an error. A new image
 * starts ACTIVE with no references. Returns 0 or -1. Thread: main. */
int lintel_registry_scan(struct lintel_registry *reg, const char *const *paths, size_t n,
                         char *err, size_t errlen);

/* The newest loaded image of plugin name whose version matches constraint: NULL = newest,
 * "2" = newest 2.x.y, "2.1" = newest 2.1.y, "2.1.3" = exactly that. Versions order by
 * MAJOR.MINOR.PATCH only (a -prerelease is ignored); between images of equal versions (one
 * version rebuilt, or differing only in -prerelease) the most recently loaded wins. Takes a
 * reference (release with lintel_image_unref). Returns NULL with err set ("no plugin \"x\" in
 * plugin_paths", "plugin \"x\" has no version matching \"3\" (loaded: 1.0.0, 2.0.1)", or
 * "plugin \"x\": bad version constraint ..."). Thread: main. */
struct lintel_image *lintel_registry_find(struct lintel_registry *reg, const char *name,
                                          const char *constraint, char *err, size_t errlen);

/* Reference counting. ref on an image with no references only on the main thread (find does);
 * otherwise the caller must already hold one. ref makes a DRAINING image ACTIVE again. unref to
 * zero marks the image DRAINING and never dlcloses; the caller must not touch img afterwards.
 * Thread: any. */
void lintel_image_ref(struct lintel_image *img);
void lintel_image_unref(struct lintel_image *img);

/* dlcloses every loaded image with no references — DRAINING ones, and ACTIVE ones that nothing
 * has referenced since their scan — removes their private copies and marks them UNLOADED (desc
 * and dl become NULL). So call it only once the configuration that should keep its images holds
 * its references (after publishing it), never between a scan and the find calls of one reload.
 * Keeps the records of the 64 most recent unloads and frees older ones. Thread: main. Returns the
 * number unloaded. */
unsigned lintel_registry_reap(struct lintel_registry *reg);

/* Calls fn for every image record (loaded or not), newest load first. Thread: main. */
void lintel_registry_foreach(struct lintel_registry *reg,
                             void (*fn)(const struct lintel_image *img, void *arg), void *arg);

/* Checks a descriptor against this host's ABI, in this order: abi_major equal to the host's,
 * abi_minor not above the host's, struct_size at least the ABI 1.0 descriptor, name
 * [a-z0-9_-]{1,63}, version semver MAJOR.MINOR.PATCH[-pre][+build] of at most 31 characters.
 * 0, or -1 with err set (no path prefix). Exposed for the SDK test kit. Thread: any. */
int lintel_plugin_check(const struct lintel_plugin *p, char *err, size_t errlen);

#endif
