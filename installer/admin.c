/* admin.c: status and gc, the commands that look at the install rather than
 * switch it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fs.h"
#include "installer.h"
#include "json.h"
#include "log.h"
#include "version.h"

#define MAX_VERSIONS 256

struct version_list {
    char names[MAX_VERSIONS][INST_VERSION_MAX];
    size_t n;
};

static int cmp_versions(const void *a, const void *b)
{
    return molt_version_cmp((const char *)a, (const char *)b);
}

static int list_versions(const struct inst *in, struct version_list *out, struct molt_err *err)
{
    char dir[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int rc;

    out->n = 0;
    if ((rc = inst_path(in, "versions", dir, sizeof(dir), err)) < 0)
        return rc;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : molt_err_errno(err, "open %s", dir);
    while ((de = readdir(d)) != NULL && out->n < MAX_VERSIONS) {
        if (de->d_name[0] == '.' || !molt_version_valid(de->d_name) ||
            strlen(de->d_name) >= INST_VERSION_MAX)
            continue;
        memcpy(out->names[out->n++], de->d_name, strlen(de->d_name) + 1);
    }
    closedir(d);
    qsort(out->names, out->n, sizeof(out->names[0]), cmp_versions);
    return 0;
}

/* ---- status ---- */

static void print_time(const char *label, int64_t ms)
{
    char buf[64];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s%s", label, buf);
}

static void print_watch(const struct molt_journal *j, int64_t max_starts)
{
    int64_t left = j->watch_until_ms - inst_now_ms();

    if (!j->watch_until_ms)
        return;
    printf("watch:      %lld of %lld starts, ", (long long)j->watch_starts, (long long)max_starts);
    print_time("until ", j->watch_until_ms);
    if (left > 0)
        printf(" (in %lld s)\n", (long long)(left + 999) / 1000);
    else
        printf(" (over)\n");
}

static void print_journal(const struct molt_journal *j, int64_t max_starts,
                          int64_t watch_max_starts)
{
    int64_t left = j->trial_deadline_ms - inst_now_ms();

    printf("state:      %s\n", molt_journal_state_name(j->state));
    if (j->state != MOLT_JOURNAL_IDLE)
        printf("task:       %s (%s -> %s)\n", j->task_id[0] ? j->task_id : "manual",
               j->from_version, j->to_version);
    if (j->state == MOLT_JOURNAL_TRIAL) {
        printf("trial:      start %lld of %lld, ", (long long)j->starts, (long long)max_starts);
        print_time("deadline ", j->trial_deadline_ms);
        if (left > 0)
            printf(" (in %lld s)\n", (long long)(left + 999) / 1000);
        else
            printf(" (passed)\n");
    }
    print_watch(j, watch_max_starts);
    if (j->reason[0])
        printf("reason:     %s\n", j->reason);
    for (size_t i = 0; i < j->n_outcomes; i++) {
        const struct molt_journal_outcome *o = &j->outcomes[i];
        char msg[MOLT_JOURNAL_REASON_MAX + 32];

        molt_journal_outcome_message(o, msg, sizeof(msg));
        printf("%s task %s: %s -> %s: %s, ", i == 0 ? "outcomes:  " : "           ",
               o->task_id[0] ? o->task_id : "manual", o->from_version, o->to_version, msg);
        print_time("at ", o->at_ms);
        printf("\n");
    }
}

static int status_text(const struct inst *in, const char *current, const char *previous,
                       const struct version_list *v, const struct molt_journal *j,
                       const char *journal_error)
{
    printf("root:       %s\n", in->root);
    printf("state dir:  %s\n", in->state_dir);
    printf("current:    %s\n", current[0] ? current : "(none)");
    printf("previous:   %s\n", previous[0] ? previous : "(none)");
    printf("installed: ");
    for (size_t i = 0; i < v->n; i++)
        printf(" %s", v->names[i]);
    printf("%s\n", v->n ? "" : " (none)");
    if (journal_error)
        printf("journal:    CORRUPT: %s (the next launch or change moves it aside and assumes "
               "no trial)\n",
               journal_error);
    else
        print_journal(j, in->conf.install.trial_max_starts, in->conf.install.watch_max_starts);
    return 0;
}

static int status_json(const struct inst *in, const char *current, const char *previous,
                       const struct version_list *v, const struct molt_journal *j,
                       const char *journal_error, struct molt_err *err)
{
    struct json_object *o = json_object_new_object();
    struct json_object *arr = json_object_new_array();
    struct json_object *jo = NULL;
    char *text = NULL;
    int rc = 0;

    if (!o || !arr) {
        rc = molt_err_set(err, MOLT_E_NOMEM, "out of memory");
        goto out;
    }
    json_object_object_add(o, "root", json_object_new_string(in->root));
    json_object_object_add(o, "stateDir", json_object_new_string(in->state_dir));
    json_object_object_add(o, "current", json_object_new_string(current));
    json_object_object_add(o, "previous", json_object_new_string(previous));
    for (size_t i = 0; i < v->n; i++)
        json_object_array_add(arr, json_object_new_string(v->names[i]));
    json_object_object_add(o, "versions", arr);
    arr = NULL;
    json_object_object_add(o, "trialMaxStarts",
                           json_object_new_int64(in->conf.install.trial_max_starts));
    json_object_object_add(o, "watchMaxStarts",
                           json_object_new_int64(in->conf.install.watch_max_starts));
    if (journal_error) {
        json_object_object_add(o, "journal", NULL);
        json_object_object_add(o, "journalError", json_object_new_string(journal_error));
    } else {
        if ((rc = molt_journal_serialize(j, &text, err)) < 0 ||
            (rc = molt_json_parse(text, strlen(text), &jo, err)) < 0)
            goto out;
        json_object_object_add(o, "journal", jo);
    }
    printf("%s\n", molt_json_dump(o));
out:
    free(text);
    json_object_put(arr);
    json_object_put(o);
    return rc;
}

int inst_status(struct inst *in, int json, struct molt_err *err)
{
    char current[INST_VERSION_MAX], previous[INST_VERSION_MAX];
    struct molt_err jerr = MOLT_ERR_INIT;
    struct version_list *v = malloc(sizeof(*v));
    struct molt_journal j;
    const char *journal_error = NULL;
    int rc;

    if (!v)
        return molt_err_set(err, MOLT_E_NOMEM, "out of memory");
    /* Read-only: no lock, and a corrupt journal is reported, not repaired. */
    if ((rc = inst_read_link(in, "current", current, err)) < 0 ||
        (rc = inst_read_link(in, "previous", previous, err)) < 0 ||
        (rc = list_versions(in, v, err)) < 0)
        goto out;
    rc = molt_journal_load(in->journal_path, &j, &jerr);
    if (rc == MOLT_E_PARSE) {
        journal_error = jerr.msg;
    } else if (rc < 0) {
        *err = jerr;
        goto out;
    }
    rc = json ? status_json(in, current, previous, v, &j, journal_error, err)
              : status_text(in, current, previous, v, &j, journal_error);
out:
    free(v);
    if (rc < 0)
        molt_err_prefix(err, "status");
    return rc;
}

/* ---- gc ---- */

static int is_kept(const char *name, const char *const *keep, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, keep[i]) == 0)
            return 1;
    }
    return 0;
}

static int gc_versions(struct inst *in, const char *current, const char *previous,
                       struct molt_err *err)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if ((rc = inst_path(in, "versions", dir, sizeof(dir), err)) < 0)
        return rc;
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : molt_err_errno(err, "open %s", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, current) ||
            !strcmp(de->d_name, previous))
            continue;
        if ((rc = molt_fs_join(path, sizeof(path), dir, de->d_name, err)) < 0)
            break;
        /* Dot-names are leftovers of an interrupted discard: already aside. */
        rc = de->d_name[0] == '.' ? molt_fs_remove_tree(path, err) : inst_discard_tree(path, err);
        if (rc == 0) {
            molt_log_info("installer.gc_removed", "path=%s", path);
            printf("removed %s\n", path);
        }
    }
    closedir(d);
    return rc;
}

/* 1 when dir is in root's versions/ or bin/ (root/upgrade is fine). */
static int inside_install(const char *root, const char *dir)
{
    char sub[PATH_MAX];

    snprintf(sub, sizeof(sub), "%s/versions", root);
    if (molt_fs_path_within(dir, sub))
        return 1;
    snprintf(sub, sizeof(sub), "%s/bin", root);
    return molt_fs_path_within(dir, sub);
}

static int gc_upgrade_dir(struct inst *in, const char *const *keep, size_t n_keep,
                          struct molt_err *err)
{
    char dir[PATH_MAX], root[PATH_MAX], state[PATH_MAX], path[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if (!realpath(in->upgrade_dir, dir))
        return errno == ENOENT ? 0 : molt_err_errno(err, "%s", in->upgrade_dir);
    if (!realpath(in->root, root) || !realpath(in->state_dir, state))
        return molt_err_errno(err, "resolve %s and %s", in->root, in->state_dir);
    /* Emptying a directory that holds the install or the state would be a disaster. */
    if (molt_fs_path_within(root, dir) || molt_fs_path_within(state, dir) ||
        inside_install(root, dir))
        return molt_err_set(err, MOLT_E_CONFIG,
                            "upgrade_dir %s overlaps the root %s or the state dir %s: not "
                            "cleaning it",
                            dir, root, state);
    d = opendir(dir);
    if (!d)
        return molt_err_errno(err, "open %s", dir);
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            is_kept(de->d_name, keep, n_keep))
            continue;
        if ((rc = molt_fs_join(path, sizeof(path), dir, de->d_name, err)) == 0 &&
            (rc = molt_fs_remove_tree(path, err)) == 0) {
            molt_log_info("installer.gc_removed", "path=%s", path);
            printf("removed %s\n", path);
        }
    }
    closedir(d);
    return rc;
}

/* Temp files of writes a crash interrupted (journal.json.tmp.*, current.new). */
static void gc_temp_files(const char *dir, const char *const *prefixes)
{
    struct dirent *de;
    DIR *d = opendir(dir);

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        for (const char *const *p = prefixes; *p; p++) {
            char path[PATH_MAX];
            if (strncmp(de->d_name, *p, strlen(*p)) == 0 &&
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path) &&
                unlink(path) == 0)
                printf("removed %s\n", path);
        }
    }
    closedir(d);
}

static int gc_locked(struct inst *in, const char *const *keep, size_t n_keep, struct molt_err *err)
{
    static const char *const root_temps[] = {"current.new", "previous.new", NULL};
    static const char *const state_temps[] = {"journal.json.tmp.", NULL};
    static const char *const bin_temps[] = {"molt-installer.tmp.", NULL};
    char current[INST_VERSION_MAX], previous[INST_VERSION_MAX], bin[PATH_MAX];
    struct molt_journal j;
    int rc;

    if ((rc = inst_journal_open(in, &j, err)) < 0 || (rc = inst_recover(in, &j, err)) < 0)
        return rc;
    if (molt_journal_in_progress(&j))
        return molt_err_set(err, MOLT_E_STATE, "task %s is %s: gc waits until it ends", j.task_id,
                            molt_journal_state_name(j.state));
    if ((rc = inst_read_link(in, "current", current, err)) < 0 ||
        (rc = inst_read_link(in, "previous", previous, err)) < 0)
        return rc;
    if (!current[0])
        return molt_err_set(err, MOLT_E_STATE, "nothing installed under %s", in->root);
    if ((rc = gc_versions(in, current, previous, err)) < 0 ||
        (rc = gc_upgrade_dir(in, keep, n_keep, err)) < 0 ||
        (rc = inst_path(in, "bin", bin, sizeof(bin), err)) < 0)
        return rc;
    gc_temp_files(in->root, root_temps);
    gc_temp_files(in->state_dir, state_temps);
    gc_temp_files(bin, bin_temps);
    return 0;
}

int inst_gc(struct inst *in, const char *const *keep, size_t n_keep, struct molt_err *err)
{
    int rc;

    for (size_t i = 0; i < n_keep; i++) {
        if (!keep[i][0] || strchr(keep[i], '/'))
            return molt_err_set(err, MOLT_E_INVAL,
                                "--keep: '%s' is not a name in the upgrade "
                                "directory",
                                keep[i]);
    }
    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = gc_locked(in, keep, n_keep, err);
    inst_unlock(in);
    if (rc < 0)
        molt_err_prefix(err, "gc");
    return rc;
}
