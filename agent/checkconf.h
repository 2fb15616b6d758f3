/* checkconf.h: molt-agent check-config. */
#ifndef MOLT_CHECKCONF_H
#define MOLT_CHECKCONF_H

#define MOLT_CHECK_SERVICE_USER "molt" /* whom root checks for, as the packages make */

/* Prints one ok/warning/error line per check and a summary; returns 0 when
 * the agent can start and upgrade with this configuration, 1 otherwise. user
 * (NULL: the caller, or molt when root) is whom the state and run directories
 * must belong to. start: problems that only stop upgrades are warnings. */
int molt_checkconf_main(const char *config_path, const char *user, int start);

#endif
