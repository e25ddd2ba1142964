/* The probe plugin the test kit's tests host: linked into the test, it forwards create to
 * probe_on_create and every phase to probe_handler, which each test sets. */
#ifndef LINTEL_TEST_PROBE_H
#define LINTEL_TEST_PROBE_H

#include <CUnit/Basic.h>

#include <lintel/testkit.h>

extern const struct lintel_host_api *host; /* the table the kit gave create */
extern lintel_instance *probe_self;        /* the newest instance's handle */
extern int (*probe_on_create)(const lintel_cfg *config, lintel_cfg_error *err);
extern enum lintel_result (*handler)(lintel_req *r);
extern int destroyed, worker_inits, worker_finis, reopens;
extern const struct lintel_plugin probe;
extern struct lk_plugin *plugin; /* probe, loaded by the suite's init */

/* Suite init and cleanup: load and free the probe. */
int probe_suite_init(void);
int probe_suite_clean(void);

/* A probe instance from yaml (NULL: no config); asserts it was created. */
struct lk_instance *instance(const char *yaml);

/* s holds exactly want (want NULL: s is absent). */
int str_is(struct lintel_str s, const char *want);

/* A ctx cleanup that counts its calls in `cleanups` and checks its data is "ctx". */
extern int cleanups;
void count_cleanup(void *data);

/* Registers suites, runs them verbosely; the exit status for main. */
int probe_run(CU_SuiteInfo *suites);

#endif
