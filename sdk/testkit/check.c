/* The small helpers every plugin unit test wrote for itself: load or create and say why not,
 * the error of a config that must fail, and string checks that print what they got. */
#include <stdio.h>
#include <string.h>

#include "lintel/testkit.h"

struct lk_plugin *lk_plugin_load_or_report(const char *so_path)
{
    char err[512];
    struct lk_plugin *p = lk_plugin_load(so_path, err, sizeof(err));
    if (!p)
        fprintf(stderr, "%s\n", err);
    return p;
}

struct lk_instance *lk_instance_or_report(struct lk_plugin *p, const char *yaml)
{
    char err[512];
    struct lk_instance *in = lk_instance_new(p, yaml, err, sizeof(err));
    if (!in)
        fprintf(stderr, "config %s: %s\n", yaml ? yaml : "(none)", err);
    return in;
}

const char *lk_config_error(struct lk_plugin *p, const char *yaml)
{
    static char err[512];
    struct lk_instance *in = lk_instance_new(p, yaml, err, sizeof(err));
    if (in) {
        lk_instance_free(in);
        return "(created)";
    }
    return err;
}

int lk_str_eq(const char *got, const char *want)
{
    if (got == want || (got && want && strcmp(got, want) == 0))
        return 1;
    fprintf(stderr, "got \"%s\", want \"%s\"\n", got ? got : "(none)", want ? want : "(none)");
    return 0;
}

int lk_str_contains(const char *got, const char *want)
{
    if (got && strstr(got, want))
        return 1;
    fprintf(stderr, "got \"%s\", want it to contain \"%s\"\n", got ? got : "(none)", want);
    return 0;
}
