/* imageprep.c: `molt-agent image-prep`: makes an installed agent fit to be
 * captured in a VM image. What identifies this host's collector, or belongs to
 * its tasks, is removed, so each clone registers as a new collector on its
 * first boot; what makes molt run (the installed versions, the links, the
 * installer's journal) is kept. It runs only while nothing else uses the
 * state directory: the agent's and the launcher's locks must be free, and it
 * holds the installer's lock while it clears. */
#include "imageprep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "conf.h"
#include "fs.h"
#include "identity.h"
#include "journal.h"
#include "upgrade_state.h"

#define PREP_REFUSED 3

struct prep {
    struct molt_config conf;
    char state_dir[PATH_MAX];
    const char *config_path;
    int dry_run;
    int removed;
    int lock_fds[3];
};

/* Opens (creating if needed) a lock file of the state dir, owned like the
 * directory: root running image-prep must not leave a lock the service user
 * cannot open. 1 when another process holds it. */
static int try_lock(struct prep *p, const char *name, int *fd, char *holder, size_t n,
                    struct molt_err *err)
{
    char path[PATH_MAX];
    struct stat dir;
    ssize_t got;
    int rc;

    if ((rc = molt_fs_join(path, sizeof(path), p->state_dir, name, err)) < 0)
        return rc;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return molt_err_errno(err, "open %s", path);
    if (geteuid() == 0 && stat(p->state_dir, &dir) == 0 && fchown(*fd, dir.st_uid, dir.st_gid) < 0)
        return molt_err_errno(err, "chown %s", path);
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno != EWOULDBLOCK)
        return molt_err_errno(err, "lock %s", path);
    got = pread(*fd, holder, n - 1, 0);
    holder[got > 0 ? got : 0] = '\0';
    holder[strcspn(holder, "\n")] = '\0';
    return 1;
}

/* Refuses while the agent, a launcher or an installer command uses the state
 * dir; on success the three locks stay held until prep_unlock. */
static int prep_lock(struct prep *p, struct molt_err *err)
{
    static const char *const names[] = { "agent.lock", "launch.lock", "installer.lock" };
    static const char *const who[] = { "molt-agent", "molt-installer launch",
                                       "a molt-installer command" };
    char holder[32];
    int rc;

    for (size_t i = 0; i < 3; i++) {
        if ((rc = try_lock(p, names[i], &p->lock_fds[i], holder, sizeof(holder), err)) < 0)
            return rc;
        if (rc == 1)
            return molt_err_set(err, MOLT_E_BUSY,
                                "%s%s%s%s is using %s: stop the service first", who[i],
                                holder[0] ? " (pid " : "", holder, holder[0] ? ")" : "",
                                p->state_dir);
    }
    return 0;
}

static void prep_unlock(struct prep *p)
{
    for (size_t i = 0; i < 3; i++) {
        if (p->lock_fds[i] >= 0)
            close(p->lock_fds[i]);
        p->lock_fds[i] = -1;
    }
}

/* An image must not capture a half-done switch: the clone's launcher would
 * finish it with nobody to report to. */
static int check_journal(struct prep *p, struct molt_err *err)
{
    struct molt_err jerr = MOLT_ERR_INIT;
    struct molt_journal j;
    char path[PATH_MAX];
    int rc;

    if ((rc = molt_journal_path(path, sizeof(path), p->state_dir, err)) < 0)
        return rc;
    if (molt_journal_load(path, &j, &jerr) < 0) {
        /* The installer sets a corrupt journal aside at its next command. */
        printf("note: %s: %s (kept for molt-installer)\n", path, jerr.msg);
        return 0;
    }
    if (molt_journal_in_progress(&j))
        return molt_err_set(err, MOLT_E_STATE,
                            "a switch is in progress (journal state %s, task %s, %s -> %s): "
                            "let it commit or roll back first",
                            molt_journal_state_name(j.state), j.task_id, j.from_version,
                            j.to_version);
    return 0;
}

static int remove_path(struct prep *p, const char *path, const char *what, struct molt_err *err)
{
    struct stat st;
    int rc;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        return molt_err_errno(err, "%s", path);
    }
    printf("%s %s%s%s\n", p->dry_run ? "would remove" : "removed", path, what[0] ? ": " : "",
           what);
    p->removed++;
    if (p->dry_run)
        return 0;
    if (S_ISDIR(st.st_mode))
        rc = molt_fs_remove_tree(path, err);
    else if (unlink(path) < 0)
        rc = molt_err_errno(err, "remove %s", path);
    else
        rc = 0;
    return rc;
}

static int remove_in(struct prep *p, const char *dir, const char *name, const char *what,
                     struct molt_err *err)
{
    char path[PATH_MAX];
    int rc;

    if ((rc = molt_fs_join(path, sizeof(path), dir, name, err)) < 0)
        return rc;
    return remove_path(p, path, what, err);
}

static int remove_identity(struct prep *p, struct molt_err *err)
{
    struct molt_identity id;
    char path[PATH_MAX], what[160] = "this host's collector identity";
    int rc;

    if ((rc = molt_fs_join(path, sizeof(path), p->state_dir, MOLT_IDENTITY_FILE, err)) < 0)
        return rc;
    memset(&id, 0, sizeof(id));
    if (molt_identity_load(path, &id, NULL) == 0)
        snprintf(what, sizeof(what), "identity of collector %lld (%s)",
                 (long long)id.collector_id, id.name);
    explicit_bzero(&id, sizeof(id));
    return remove_path(p, path, what, err);
}

/* Removes the entries of dir whose names start with prefix ("" for all). */
static int remove_entries(struct prep *p, const char *dir, const char *prefix, const char *what,
                          struct molt_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d)
        return errno == ENOENT ? 0 : molt_err_errno(err, "open %s", dir);
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        rc = remove_in(p, dir, e->d_name, what, err);
    }
    closedir(d);
    return rc;
}

/* The upgrade dir is emptied, never removed; one that holds the install or
 * the state (a configuration mistake) is left alone rather than wiped. */
static int clear_upgrade_dir(struct prep *p, struct molt_err *err)
{
    char up[PATH_MAX], root[PATH_MAX], state[PATH_MAX];

    if (!realpath(p->conf.agent.upgrade_dir, up))
        return errno == ENOENT ? 0 : molt_err_errno(err, "%s", p->conf.agent.upgrade_dir);
    if (!realpath(p->state_dir, state))
        return molt_err_errno(err, "%s", p->state_dir);
    if (!realpath(p->conf.install.root, root))
        snprintf(root, sizeof(root), "%s", p->conf.install.root);
    if (molt_fs_path_within(root, up) || molt_fs_path_within(state, up)) {
        printf("note: upgrade_dir %s holds the install root or the state dir: not cleared\n",
               up);
        return 0;
    }
    return remove_entries(p, up, "", "download or staged build", err);
}

static int clear_state(struct prep *p, struct molt_err *err)
{
    char outbox[PATH_MAX];
    int rc;

    if ((rc = molt_fs_join(outbox, sizeof(outbox), p->state_dir, "outbox", err)) < 0)
        return rc;
    if ((rc = remove_identity(p, err)) < 0 ||
        (rc = remove_entries(p, outbox, "", "unsent report", err)) < 0 ||
        (rc = remove_in(p, p->state_dir, MOLT_UPGRADE_STATE_FILE, "task in progress", err)) < 0 ||
        (rc = remove_entries(p, p->state_dir, "trial-", "trial log", err)) < 0 ||
        (rc = remove_entries(p, p->state_dir, "journal.json.corrupt-", "set-aside journal",
                             err)) < 0)
        return rc;
    return clear_upgrade_dir(p, err);
}

/* Clones that keep the machine id would register as their parent. */
static void check_machine_id(const struct prep *p)
{
    struct stat st;

    if (stat(p->conf.agent.machine_id_file, &st) == 0 && st.st_size > 0)
        printf("note: %s is not empty: empty it in the image (truncate -s 0 %s) so that each "
               "clone gets its own machine id; clones sharing one would share a collector\n",
               p->conf.agent.machine_id_file, p->conf.agent.machine_id_file);
}

static int prep_run(struct prep *p, struct molt_err *err)
{
    struct stat st;
    int rc;

    if ((rc = molt_conf_load(&p->conf, p->config_path, err)) < 0)
        return rc;
    snprintf(p->state_dir, sizeof(p->state_dir), "%s", p->conf.agent.state_dir);
    if (stat(p->state_dir, &st) < 0) {
        if (errno != ENOENT)
            return molt_err_errno(err, "%s", p->state_dir);
        printf("image-prep: %s does not exist: nothing to clear\n", p->state_dir);
        check_machine_id(p);
        return 0;
    }
    if ((rc = prep_lock(p, err)) < 0 || (rc = check_journal(p, err)) < 0 ||
        (rc = clear_state(p, err)) < 0)
        return rc;
    printf("image-prep: %s%s; installed versions under %s kept\n",
           p->removed ? (p->dry_run ? "would clear the above" : "cleared the above")
                      : "nothing to clear",
           p->dry_run ? "" : ", ready for capture", p->conf.install.root);
    check_machine_id(p);
    return 0;
}

int molt_imageprep_main(const char *config_path, int dry_run)
{
    struct molt_err err = MOLT_ERR_INIT;
    struct prep *p = calloc(1, sizeof(*p));
    int rc;

    if (!p) {
        fputs("molt-agent: image-prep: out of memory\n", stderr);
        return MOLT_EXIT_FATAL;
    }
    p->config_path = config_path;
    p->dry_run = dry_run;
    p->lock_fds[0] = p->lock_fds[1] = p->lock_fds[2] = -1;
    rc = prep_run(p, &err);
    prep_unlock(p);
    explicit_bzero(&p->conf.server.access_key, sizeof(p->conf.server.access_key));
    free(p);
    if (rc == 0)
        return 0;
    fprintf(stderr, "molt-agent: image-prep: %s\n", err.msg);
    return rc == MOLT_E_BUSY || rc == MOLT_E_STATE ? PREP_REFUSED : MOLT_EXIT_FATAL;
}
