/* switch.c: the changes of which version runs: apply (switch and start a
 * trial), commit, rollback, and the recovery that finishes or undoes whatever
 * a crash interrupted. Each durable step is followed by a named fault point
 * (docs/upgrades.md lists them); a kill at any of them is recovered from by
 * inst_recover() in the next installer process. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "fs.h"
#include "installer.h"
#include "json.h"
#include "log.h"
#include "package.h"
#include "version.h"

/* Puts current back on from_version and previous back where it was before
 * the switch, then records the outcome. Idempotent, so a crash anywhere in it
 * is finished by running it again. j is rolling-back; lock held. */
static int finish_rollback(struct inst *in, struct molt_journal *j, struct molt_err *err)
{
    int rc;

    if ((rc = inst_check_version(in, j->from_version, err)) < 0)
        return molt_err_prefix(err, "cannot roll back to %s", j->from_version);
    if ((rc = inst_write_link(in, "current", j->from_version, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("rollback.after_flip");
    if (j->prev_version[0] && inst_check_version(in, j->prev_version, NULL) < 0) {
        molt_log_warn("installer.rollback",
                      "previous=%s action=\"dropped: not a complete version\"", j->prev_version);
        j->prev_version[0] = '\0';
    }
    if ((rc = inst_write_link(in, "previous", j->prev_version, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("rollback.after_previous");
    if ((rc = molt_journal_finish_rollback(j, inst_now_ms(), err)) < 0 ||
        (rc = inst_journal_save(in, j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("rollback.after_journal_done");
    molt_log_warn("installer.rolled_back", "task=%s from=%s to=%s reason=\"%s\"",
                  j->task_id[0] ? j->task_id : "-", j->to_version, j->from_version, j->reason);
    return inst_sync_installer(in, j->from_version, err);
}

int inst_rollback_trial(struct inst *in, struct molt_journal *j, const char *reason,
                        struct molt_err *err)
{
    int rc;

    if ((rc = molt_journal_begin_rollback(j, reason, inst_now_ms(), err)) < 0 ||
        (rc = inst_journal_save(in, j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("rollback.after_journal");
    return finish_rollback(in, j, err);
}

int inst_rollback_watch(struct inst *in, struct molt_journal *j, const char *reason,
                        struct molt_err *err)
{
    int rc;

    if ((rc = molt_journal_begin_watch_rollback(j, reason, inst_now_ms(), err)) < 0 ||
        (rc = inst_journal_save(in, j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("rollback.after_journal");
    return finish_rollback(in, j, err);
}

int inst_recover(struct inst *in, struct molt_journal *j, struct molt_err *err)
{
    struct molt_err serr = MOLT_ERR_INIT;
    char current[INST_VERSION_MAX];
    char reason[MOLT_JOURNAL_REASON_MAX];
    int rc;

    switch (j->state) {
    case MOLT_JOURNAL_SWITCHING:
        /* Whether or not current already moved, the trial never began: undo. */
        snprintf(reason, sizeof(reason), "switch to %s interrupted before its trial began",
                 j->to_version);
        molt_log_warn("installer.recover", "task=%s state=switching action=rollback", j->task_id);
        return inst_rollback_trial(in, j, reason, err);
    case MOLT_JOURNAL_ROLLING_BACK:
        molt_log_warn("installer.recover", "task=%s state=rolling-back action=finish",
                      j->task_id[0] ? j->task_id : "-");
        return finish_rollback(in, j, err);
    case MOLT_JOURNAL_TRIAL:
        if ((rc = inst_read_link(in, "current", current, err)) < 0)
            return rc;
        if (strcmp(current, j->to_version) == 0)
            return 0;
        snprintf(reason, sizeof(reason), "current names %s, not %s, during the trial",
                 current[0] ? current : "nothing", j->to_version);
        molt_log_warn("installer.recover", "task=%s state=trial action=rollback reason=\"%s\"",
                      j->task_id, reason);
        return inst_rollback_trial(in, j, reason, err);
    case MOLT_JOURNAL_IDLE:
    case MOLT_JOURNAL_COMMITTED:
    case MOLT_JOURNAL_ROLLED_BACK:
        break;
    }
    if ((rc = inst_read_link(in, "current", current, err)) < 0 || !current[0])
        return rc;
    /* The stable installer must be the current version's (commit and a
     * manual rollback replace it after their journal write). */
    if (inst_sync_installer(in, current, &serr) < 0)
        /* Not fatal: the old copy still works, and every start tries again. */
        molt_log_warn("installer.sync", "error=\"%s\"", serr.msg);
    return 0;
}

/* ---- apply ---- */

static int staged_version(const char *dir, char *out, size_t n, struct molt_err *err)
{
    struct json_object *root = NULL;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len;
    int rc;

    if ((rc = molt_fs_join(path, sizeof(path), dir, "manifest.json", err)) < 0)
        return rc;
    rc = molt_fs_read_file(path, 8u << 20, &text, &len, err);
    if (rc == MOLT_E_NOTFOUND)
        return molt_err_set(err, MOLT_E_INVAL,
                            "%s has no manifest.json; name the version "
                            "with --build-version",
                            dir);
    if (rc == 0)
        rc = molt_json_parse(text, len, &root, err);
    if (rc == 0)
        rc = molt_json_copy_str(root, "version", out, n, err);
    if (rc == 0 && !molt_version_valid(out))
        rc = molt_err_set(err, MOLT_E_INVAL, "'%.64s' is not a version", out);
    json_object_put(root);
    free(text);
    if (rc < 0)
        molt_err_prefix(err, "%s", path);
    return rc;
}

/* A staged build holds its manifest.json (molt_pkg_stage writes it): compare
 * the tree with it once more, so what becomes versions/<v> is what was
 * verified. With the statement's manifestSha256 (the agent's apply: the
 * tree comes from its sandboxed worker, trusted for nothing) that manifest
 * must be the signed one; without, a directory without one (built by hand)
 * is taken as it is. */
static int check_staged_tree(const char *dir, const char *manifest_sha256, struct molt_err *err)
{
    char manifest[PATH_MAX];
    int rc;

    if ((rc = molt_fs_join(manifest, sizeof(manifest), dir, MOLT_PKG_MANIFEST_NAME, err)) < 0)
        return rc;
    if (!manifest_sha256 && !molt_fs_exists(manifest)) {
        molt_log_warn("installer.apply", "dir=%s manifest=none action=\"no integrity check\"", dir);
        return 0;
    }
    return molt_pkg_tree_check(dir, manifest_sha256, err);
}

/* A real rename from the staged build's directory into versions/, since
 * bind mounts of one file system share st_dev yet refuse rename(2). */
static int can_rename_into(const struct inst *in, const char *staged, const char *versions,
                           struct molt_err *err)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(staged, '/');

    if (!slash)
        snprintf(parent, sizeof(parent), ".");
    else if (slash == staged)
        snprintf(parent, sizeof(parent), "/");
    else
        snprintf(parent, sizeof(parent), "%.*s", (int)(slash - staged), staged);
    if (molt_fs_probe_rename(parent, versions, err) < 0)
        return molt_conf_explain_upgrade_dir(&in->conf, err);
    return 0;
}

int inst_move_into_versions(struct inst *in, const char *build_dir, const char *version,
                            struct molt_err *err)
{
    char versions[PATH_MAX], dest[PATH_MAX], parent[PATH_MAX];
    const char *slash = strrchr(build_dir, '/');
    int rc;

    if ((rc = inst_path(in, "versions", versions, sizeof(versions), err)) < 0 ||
        (rc = inst_version_path(in, version, NULL, dest, sizeof(dest), err)) < 0)
        return rc;
    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - build_dir) : 1,
             slash ? build_dir : ".");
    if (rename(build_dir, dest) < 0)
        return molt_err_errno(err, "move %s to %s", build_dir, dest);
    if ((rc = molt_fs_fsync_dir(versions, err)) < 0)
        return rc;
    return molt_fs_fsync_dir(parent[0] ? parent : "/", err);
}

/* What apply decides before it changes anything. */
struct apply_plan {
    char version[INST_VERSION_MAX];
    char current[INST_VERSION_MAX];
    char previous[INST_VERSION_MAX];
    char staged[PATH_MAX];
    int reuse; /* versions/<version> is previous: switch to it, discard the staged copy */
};

static int apply_check_journal(const struct molt_journal *j, const struct inst_apply_args *a,
                               const char *version, struct molt_err *err)
{
    const struct molt_journal_outcome *o;

    /* version is "" when the staged directory is gone: moved by the first call. */
    if (j->state == MOLT_JOURNAL_TRIAL && strcmp(j->task_id, a->task_id) == 0 &&
        (!version[0] || strcmp(j->to_version, version) == 0))
        return 1; /* already switched: the caller only has to restart */
    if (molt_journal_in_progress(j))
        return molt_err_set(err, MOLT_E_STATE, "another task is in progress: task %s is %s",
                            j->task_id, molt_journal_state_name(j->state));
    for (size_t i = 0; i < j->n_outcomes; i++) {
        o = &j->outcomes[i];
        if (strcmp(o->task_id, a->task_id) == 0 && strcmp(o->to_version, version) == 0)
            return molt_err_set(err, MOLT_E_STATE, "task %s already switched to %s (%s)",
                                a->task_id, version, molt_journal_result_name(o->result));
    }
    return 0;
}

static int apply_plan(struct inst *in, const struct inst_apply_args *a, struct apply_plan *p,
                      struct molt_err *err)
{
    char versions[PATH_MAX], dest[PATH_MAX];
    int rc;

    if (!realpath(a->staged_dir, p->staged))
        return molt_err_errno(err, "%s", a->staged_dir);
    if ((rc = inst_check_build_dir(p->staged, err)) < 0)
        return rc;
    if (a->version) {
        char manifest[PATH_MAX];

        snprintf(p->version, sizeof(p->version), "%s", a->version);
        if (!molt_version_valid(p->version))
            return molt_err_set(err, MOLT_E_INVAL, "'%.64s' is not a version", a->version);
        if ((rc = molt_fs_join(manifest, sizeof(manifest), p->staged, "manifest.json", err)) < 0)
            return rc;
        if (molt_fs_exists(manifest)) {
            char declared[INST_VERSION_MAX];
            if ((rc = staged_version(p->staged, declared, sizeof(declared), err)) < 0)
                return rc;
            if (strcmp(declared, p->version) != 0)
                return molt_err_set(err, MOLT_E_INVAL, "%s holds %s, not %s", p->staged, declared,
                                    p->version);
        }
    } else if ((rc = staged_version(p->staged, p->version, sizeof(p->version), err)) < 0) {
        return rc;
    }
    if ((rc = check_staged_tree(p->staged, a->manifest_sha256, err)) < 0)
        return rc;
    if ((rc = inst_read_link(in, "current", p->current, err)) < 0 ||
        (rc = inst_read_link(in, "previous", p->previous, err)) < 0)
        return rc;
    if (!p->current[0])
        return molt_err_set(err, MOLT_E_STATE, "nothing installed under %s: use install first",
                            in->root);
    if (strcmp(p->current, p->version) == 0)
        return molt_err_set(err, MOLT_E_STATE, "%s is already the current version", p->version);
    if ((rc = inst_path(in, "versions", versions, sizeof(versions), err)) < 0 ||
        (rc = inst_version_path(in, p->version, NULL, dest, sizeof(dest), err)) < 0)
        return rc;
    if (strncmp(p->staged, versions, strlen(versions)) == 0)
        return molt_err_set(err, MOLT_E_INVAL, "%s is inside %s", p->staged, versions);
    p->reuse =
        strcmp(p->previous, p->version) == 0 && inst_check_version(in, p->version, NULL) == 0;
    if (p->reuse)
        return 0;
    if (molt_fs_exists(dest)) {
        /* Left by an earlier attempt that was rolled back: not current, not
         * previous, so nothing refers to it. */
        molt_log_info("installer.apply_discard", "path=%s reason=\"replaced by the staged build\"",
                      dest);
        if ((rc = inst_discard_tree(dest, err)) < 0)
            return rc;
    }
    return can_rename_into(in, p->staged, versions, err);
}

/* The durable steps, in order; any failure after the journal says switching is
 * undone by the caller through the rollback path. */
static int apply_switch(struct inst *in, struct molt_journal *j, const struct apply_plan *p,
                        struct molt_err *err)
{
    int rc;

    if (p->reuse) {
        if ((rc = molt_fs_remove_tree(p->staged, err)) < 0)
            return rc;
    } else if ((rc = inst_move_into_versions(in, p->staged, p->version, err)) < 0) {
        return rc;
    }
    MOLT_FAULT_POINT("apply.after_move");
    if ((rc = inst_check_version(in, p->version, err)) < 0 ||
        (rc = inst_write_link(in, "previous", p->current, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("apply.after_previous");
    if ((rc = inst_write_link(in, "current", p->version, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("apply.after_flip");
    if ((rc = molt_journal_begin_trial(j, inst_now_ms(), in->conf.install.trial_timeout_ms, err)) <
            0 ||
        (rc = inst_journal_save(in, j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("apply.after_journal_trial");
    return 0;
}

static int apply_locked(struct inst *in, const struct inst_apply_args *a, struct molt_err *err)
{
    struct apply_plan p;
    struct molt_journal j;
    int rc;

    memset(&p, 0, sizeof(p));
    if ((rc = inst_journal_open(in, &j, err)) < 0 || (rc = inst_recover(in, &j, err)) < 0)
        return rc;
    if (a->version)
        snprintf(p.version, sizeof(p.version), "%s", a->version);
    else if (molt_fs_exists(a->staged_dir) &&
             (rc = staged_version(a->staged_dir, p.version, sizeof(p.version), err)) < 0)
        return rc;
    rc = apply_check_journal(&j, a, p.version, err);
    if (rc == 1) {
        printf("task %s already switched to %s; trial in progress\n", a->task_id, p.version);
        return 0;
    }
    if (rc < 0 || (rc = apply_plan(in, a, &p, err)) < 0)
        return rc;
    if ((rc = inst_fsync_tree(p.staged, err)) < 0)
        return rc;
    if ((rc = molt_journal_begin_switch(&j, a->task_id, p.current, p.version, p.previous,
                                        inst_now_ms(), err)) < 0 ||
        (rc = inst_journal_save(in, &j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("apply.after_journal_switching");
    molt_log_info("installer.switching", "task=%s from=%s to=%s", a->task_id, p.current, p.version);
    rc = apply_switch(in, &j, &p, err);
    if (rc < 0) {
        struct molt_err rerr = MOLT_ERR_INIT;
        char reason[MOLT_JOURNAL_REASON_MAX];

        snprintf(reason, sizeof(reason), "switch to %s failed: %s", p.version, err->msg);
        if (inst_rollback_trial(in, &j, reason, &rerr) < 0)
            molt_log_error("installer.rollback_failed",
                           "task=%s error=\"%s\" action=\"the next "
                           "molt-installer run finishes it\"",
                           a->task_id, rerr.msg);
        return rc;
    }
    molt_log_info("installer.trial", "task=%s version=%s deadline=%lld max_starts=%lld", a->task_id,
                  p.version, (long long)j.trial_deadline_ms,
                  (long long)in->conf.install.trial_max_starts);
    printf("switched to %s (task %s); on trial for %lld ms: restart the agent (exit 75)\n",
           p.version, a->task_id, (long long)in->conf.install.trial_timeout_ms);
    return 0;
}

int inst_apply(struct inst *in, const struct inst_apply_args *a, struct molt_err *err)
{
    int rc;

    if (!molt_task_id_valid(a->task_id))
        return molt_err_set(err, MOLT_E_INVAL, "--task: '%.40s' is not a task id (digits)",
                            a->task_id);
    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = apply_locked(in, a, err);
    inst_unlock(in);
    if (rc < 0)
        molt_err_prefix(err, "apply");
    return rc;
}

/* ---- commit ---- */

static int commit_locked(struct inst *in, const char *task_id, struct molt_err *err)
{
    const struct molt_journal_outcome *o;
    char current[INST_VERSION_MAX];
    struct molt_journal j;
    int64_t now;
    int rc;

    if ((rc = inst_journal_open(in, &j, err)) < 0 || (rc = inst_recover(in, &j, err)) < 0 ||
        (rc = inst_read_link(in, "current", current, err)) < 0)
        return rc;
    if (j.state != MOLT_JOURNAL_TRIAL) {
        o = task_id ? molt_journal_find_outcome(&j, task_id)
                    : (j.n_outcomes ? &j.outcomes[0] : NULL);
        if (o && o->result == MOLT_JOURNAL_RESULT_COMMITTED &&
            strcmp(o->to_version, current) == 0) {
            printf("task %s already committed %s\n", o->task_id, o->to_version);
            return 0; /* a new agent restarted after committing */
        }
        if (o && o->result == MOLT_JOURNAL_RESULT_ROLLED_BACK && task_id)
            return molt_err_set(err, MOLT_E_STATE, "task %s was rolled back: %s", task_id,
                                o->reason);
        return molt_err_set(err, MOLT_E_STATE, "no trial in progress%s%s",
                            task_id ? " for task " : "", task_id ? task_id : "");
    }
    now = inst_now_ms();
    /* One write: committed and watched, so no crash leaves a commit that
     * escaped its watch. */
    if ((rc = molt_journal_commit(&j, task_id, now, err)) < 0 ||
        (rc = molt_journal_watch(&j, in->conf.install.watch_window_ms, now, err)) < 0 ||
        (rc = inst_journal_save(in, &j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("commit.after_journal");
    molt_log_info("installer.committed",
                  "task=%s version=%s previous=%s starts=%lld watch_until=%lld", j.task_id,
                  j.to_version, j.from_version, (long long)j.starts,
                  (long long)j.watch_until_ms);
    /* The stable installer becomes the committed version's now, watch or not:
     * the watch's rollback is launch's decision before a start, made by a
     * process that is not the crashing agent. Under launch --supervise that
     * process is the supervisor started before the upgrade, still running the
     * previous version's code. In exec mode the service manager's restart runs
     * this new copy; keeping the old one for the watch would not buy much: an
     * installer that cannot launch bricks the host at the watch's end as well,
     * and a previous version older than the watch would ignore the watch and
     * copy this one anyway (recovery syncs the copy to current). The rollback
     * itself is finish_rollback, the code every trial's rollback runs. */
    if ((rc = inst_sync_installer(in, j.to_version, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("commit.after_installer");
    printf("committed %s (task %s); previous is %s\n", j.to_version, j.task_id, j.from_version);
    return 0;
}

int inst_commit(struct inst *in, const char *task_id, struct molt_err *err)
{
    int rc;

    if (task_id && !molt_task_id_valid(task_id))
        return molt_err_set(err, MOLT_E_INVAL, "--task: '%.40s' is not a task id (digits)",
                            task_id);
    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = commit_locked(in, task_id, err);
    inst_unlock(in);
    if (rc < 0)
        molt_err_prefix(err, "commit");
    return rc;
}

/* ---- manual rollback ---- */

static int manual_rollback_locked(struct inst *in, const char *why, struct molt_err *err)
{
    char current[INST_VERSION_MAX], previous[INST_VERSION_MAX];
    char reason[MOLT_JOURNAL_REASON_MAX];
    struct molt_journal j;
    int rc;

    snprintf(reason, sizeof(reason), "manual rollback%s%s", why && *why ? ": " : "",
             why ? why : "");
    if ((rc = inst_journal_open(in, &j, err)) < 0)
        return rc;
    if (j.state == MOLT_JOURNAL_SWITCHING || j.state == MOLT_JOURNAL_ROLLING_BACK) {
        /* Recovery of these is itself a rollback; doing more would undo it. */
        if ((rc = inst_recover(in, &j, err)) < 0)
            return rc;
        printf("finished an interrupted switch: current is %s\n", j.from_version);
        return 0;
    }
    if ((rc = inst_recover(in, &j, err)) < 0)
        return rc;
    if (j.state == MOLT_JOURNAL_TRIAL) {
        if ((rc = inst_rollback_trial(in, &j, reason, err)) < 0)
            return rc;
        printf("rolled back task %s: current is %s\n", j.task_id, j.from_version);
        return 0;
    }
    if ((rc = inst_read_link(in, "current", current, err)) < 0 ||
        (rc = inst_read_link(in, "previous", previous, err)) < 0)
        return rc;
    if (previous[0] && (rc = inst_check_version(in, previous, err)) < 0) {
        err->code = MOLT_E_STATE;
        return molt_err_prefix(err, "previous version %s is not usable", previous);
    }
    if ((rc = molt_journal_begin_revert(&j, current, previous, reason, inst_now_ms(), err)) < 0 ||
        (rc = inst_journal_save(in, &j, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("rollback.after_journal");
    if ((rc = finish_rollback(in, &j, err)) < 0)
        return rc;
    printf("rolled back from %s: current is %s; restart the agent unless launch --supervise "
           "runs it\n",
           current, previous);
    return 0;
}

/* The agent on trial, or watched after its commit, found itself unhealthy:
 * end that task's trial or watch, and only that one, with its reason as given
 * (no "manual rollback" prefix). */
static int fail_trial_locked(struct inst *in, const char *task_id, const char *why,
                             struct molt_err *err)
{
    struct molt_journal j;
    int rc;

    if ((rc = inst_journal_open(in, &j, err)) < 0 || (rc = inst_recover(in, &j, err)) < 0)
        return rc;
    /* After the commit, during its watch: the health check repeated by the
     * new agent failed (docs/upgrades.md 5.5). */
    if (molt_journal_watching(&j, inst_now_ms()) && strcmp(j.task_id, task_id) == 0) {
        if ((rc = inst_rollback_watch(in, &j, why && *why ? why : "watch failed", err)) < 0)
            return rc;
        printf("rolled back task %s after its commit: current is %s\n", j.task_id,
               j.from_version);
        return 0;
    }
    if (j.state != MOLT_JOURNAL_TRIAL || strcmp(j.task_id, task_id) != 0)
        return molt_err_set(err, MOLT_E_STATE, "no trial of task %s in progress", task_id);
    if ((rc = inst_rollback_trial(in, &j, why && *why ? why : "trial failed", err)) < 0)
        return rc;
    printf("rolled back task %s: current is %s\n", j.task_id, j.from_version);
    return 0;
}

int inst_manual_rollback(struct inst *in, const char *task_id, const char *reason,
                         struct molt_err *err)
{
    int rc;

    if (task_id && !molt_task_id_valid(task_id))
        return molt_err_set(err, MOLT_E_INVAL, "--task: '%.40s' is not a task id (digits)",
                            task_id);
    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = task_id ? fail_trial_locked(in, task_id, reason, err)
                 : manual_rollback_locked(in, reason, err);
    inst_unlock(in);
    if (rc < 0)
        molt_err_prefix(err, "rollback");
    return rc;
}
