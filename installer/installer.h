/* installer.h: what molt-installer's commands share: the install root's layout,
 * the state-dir lock, the journal under that lock, and the switch primitives.
 * docs/upgrades.md describes the layout, the states and every fault point. */
#ifndef MOLT_INSTALLER_H
#define MOLT_INSTALLER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "journal.h"

#define INST_VERSION_MAX MOLT_JOURNAL_VERSION_MAX

/* Exit codes of every command (launch: before it execs the agent). */
enum {
    INST_EXIT_OK = 0,
    INST_EXIT_FAIL = 1, /* failed; stderr says why */
    INST_EXIT_USAGE = 2,
    INST_EXIT_STATE = 3, /* refused in the current state (MOLT_E_STATE) */
};

struct inst {
    struct molt_config conf;
    const char *config_path; /* --config, or NULL for MOLT_CONFIG / the default */
    char root[PATH_MAX];
    char state_dir[PATH_MAX];
    char upgrade_dir[PATH_MAX];
    char journal_path[PATH_MAX];
    int lock_fd; /* -1 unless holding <state_dir>/installer.lock */
};

struct inst_apply_args {
    const char *staged_dir;
    const char *task_id;
    const char *version; /* NULL: read from <staged_dir>/manifest.json */
    /* NULL: the tree is checked against its own manifest.json, if any
     * (integrity); else it must have one whose sha256 this is (authenticity:
     * what the agent passes from the statement it verified). */
    const char *manifest_sha256;
};

struct inst_install_args {
    const char *package;
    const char *keys_dir;  /* NULL: [agent] keys_dir */
    const char *statement; /* NULL: PACKAGE.statement.json */
    const char *signature; /* NULL: PACKAGE.sig */
};

/* layout.c */
int64_t inst_now_ms(void);
int inst_path(const struct inst *in, const char *rel, char *out, size_t n, struct molt_err *err);
int inst_version_path(const struct inst *in, const char *version, const char *rel, char *out,
                      size_t n, struct molt_err *err);
/* Reads <root>/<link> ("current", "previous"): "versions/<v>" gives v, a
 * missing link "". Any other target is an error. */
int inst_read_link(const struct inst *in, const char *link, char out[INST_VERSION_MAX],
                   struct molt_err *err);
/* Points <root>/<link> at versions/<version> atomically; "" removes it. */
int inst_write_link(const struct inst *in, const char *link, const char *version,
                    struct molt_err *err);
/* A build directory is complete when bin/molt-agent and bin/molt-installer are
 * executable regular files. */
int inst_check_build_dir(const char *dir, struct molt_err *err);
int inst_check_version(const struct inst *in, const char *version, struct molt_err *err);
/* fsync every file and directory below dir, then dir itself. */
int inst_fsync_tree(const char *dir, struct molt_err *err);
/* Renames path aside to a dot-name in its directory, then removes it, so a
 * crash mid-removal never leaves a half-deleted tree under a real name. */
int inst_discard_tree(const char *path, struct molt_err *err);
/* Makes <root>/bin/molt-installer a copy of versions/<version>/bin/molt-installer
 * (atomic replace; nothing done when they are already equal). */
int inst_sync_installer(const struct inst *in, const char *version, struct molt_err *err);
int inst_lock(struct inst *in, struct molt_err *err);
void inst_unlock(struct inst *in);
/* Loads the journal (lock held). A corrupt journal is moved aside to
 * journal.json.corrupt-<ms> and replaced by an idle one: no trial is assumed
 * to be in progress and current is kept as it is. */
int inst_journal_open(struct inst *in, struct molt_journal *j, struct molt_err *err);
int inst_journal_save(struct inst *in, const struct molt_journal *j, struct molt_err *err);

/* switch.c (lock held where it says so) */
/* Finishes what a crash interrupted: a switch is undone, a rollback completed,
 * a trial whose current link disagrees is rolled back, and in a resting state
 * the stable installer is made to match current. Lock held. */
int inst_recover(struct inst *in, struct molt_journal *j, struct molt_err *err);
/* Ends a switch or trial in j by switching back. Lock held. */
int inst_rollback_trial(struct inst *in, struct molt_journal *j, const char *reason,
                        struct molt_err *err);
/* Ends the watch after a commit in j by switching back, the same way a failed
 * trial goes (from_version current, prev_version previous). Lock held. */
int inst_rollback_watch(struct inst *in, struct molt_journal *j, const char *reason,
                        struct molt_err *err);
int inst_apply(struct inst *in, const struct inst_apply_args *a, struct molt_err *err);
int inst_commit(struct inst *in, const char *task_id, struct molt_err *err);
int inst_manual_rollback(struct inst *in, const char *task_id, const char *reason,
                         struct molt_err *err);
/* Moves a complete build directory into versions/<version> (lock held). */
int inst_move_into_versions(struct inst *in, const char *build_dir, const char *version,
                            struct molt_err *err);

/* launch.c */
int inst_launch(struct inst *in, int supervise, struct molt_err *err);

/* admin.c */
int inst_status(struct inst *in, int json, struct molt_err *err);
int inst_gc(struct inst *in, const char *const *keep, size_t n_keep, struct molt_err *err);
int inst_install(struct inst *in, const struct inst_install_args *a, struct molt_err *err);

#endif
