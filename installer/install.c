/* install.c: the first install onto an empty root, through the same package
 * verification as an upgrade. The current link is written last: until then
 * the root counts as not installed, and running install again starts over. */
#include <stdio.h>
#include <string.h>

#include "fault.h"
#include "fs.h"
#include "installer.h"
#include "log.h"
#include "package.h"

static int reset_journal(struct inst *in, struct molt_err *err)
{
    struct molt_journal j;
    int rc;

    /* An empty root has nothing a leftover switch could refer to; keep only
     * the outcomes, which the agent may still have to report. */
    if ((rc = inst_journal_open(in, &j, err)) < 0)
        return rc;
    if (!molt_journal_in_progress(&j) && molt_fs_exists(in->journal_path))
        return 0;
    if (molt_journal_in_progress(&j))
        molt_log_warn("installer.install",
                      "journal_state=%s action=\"reset to idle: the root is empty\"",
                      molt_journal_state_name(j.state));
    j.state = MOLT_JOURNAL_IDLE;
    j.task_id[0] = j.from_version[0] = j.to_version[0] = j.prev_version[0] = '\0';
    j.starts = j.trial_started_ms = j.trial_deadline_ms = 0;
    j.reason[0] = '\0';
    j.updated_ms = inst_now_ms();
    return inst_journal_save(in, &j, err);
}

static int install_locked(struct inst *in, const struct inst_install_args *a, struct molt_err *err)
{
    const char *keys = a->keys_dir ? a->keys_dir : in->conf.agent.keys_dir;
    char current[INST_VERSION_MAX], versions[PATH_MAX], dest[PATH_MAX];
    char staged[PATH_MAX], name[INST_VERSION_MAX + 16];
    struct molt_statement st;
    int rc;

    if ((rc = inst_read_link(in, "current", current, err)) < 0)
        return rc;
    if ((rc = molt_pkg_verify_file(keys, a->package, a->statement, a->signature, NULL, NULL, NULL,
                                   NULL, &st, err)) < 0)
        return molt_err_prefix(err, "%s", a->package);
    if (current[0] && strcmp(current, st.version) == 0) {
        printf("%s is already installed under %s\n", st.version, in->root);
        return 0;
    }
    if (current[0])
        return molt_err_set(err, MOLT_E_STATE,
                            "%s already has %s installed: a new version is "
                            "installed with apply, as an upgrade",
                            in->root, current);
    if ((rc = inst_path(in, "versions", versions, sizeof(versions), err)) < 0 ||
        (rc = inst_version_path(in, st.version, NULL, dest, sizeof(dest), err)) < 0 ||
        (rc = molt_fs_mkdir_p(versions, 0755, err)) < 0)
        return rc;
    if (molt_fs_exists(dest) && (rc = inst_discard_tree(dest, err)) < 0)
        return rc;
    /* Staged inside versions/ so the final rename never crosses file systems;
     * a dot-name is never taken for a version (gc removes leftovers). */
    snprintf(name, sizeof(name), ".install-%s", st.version);
    if ((rc = molt_pkg_stage(a->package, &st, versions, name, staged, err)) < 0)
        return molt_err_prefix(err, "stage %s", a->package);
    if ((rc = inst_check_build_dir(staged, err)) < 0 || (rc = inst_fsync_tree(staged, err)) < 0 ||
        (rc = inst_move_into_versions(in, staged, st.version, err)) < 0) {
        molt_fs_remove_tree(staged, NULL);
        return rc;
    }
    MOLT_FAULT_POINT("install.after_move");
    if ((rc = inst_sync_installer(in, st.version, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("install.after_installer");
    if ((rc = reset_journal(in, err)) < 0 ||
        (rc = inst_write_link(in, "current", st.version, err)) < 0)
        return rc;
    MOLT_FAULT_POINT("install.after_flip");
    molt_log_info("installer.installed", "version=%s root=%s key=%s", st.version, in->root,
                  st.keyid);
    printf("installed %s under %s\n", st.version, in->root);
    return 0;
}

int inst_install(struct inst *in, const struct inst_install_args *a, struct molt_err *err)
{
    int rc;

    if ((rc = inst_lock(in, err)) < 0)
        return rc;
    rc = install_locked(in, a, err);
    inst_unlock(in);
    if (rc < 0)
        molt_err_prefix(err, "install");
    return rc;
}
