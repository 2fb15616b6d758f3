/* imageprep.h: `molt-agent image-prep`, which readies an installed agent to be
 * captured in a VM image, so that every clone registers as a new collector. */
#ifndef MOLT_IMAGEPREP_H
#define MOLT_IMAGEPREP_H

/* Runs the command; returns the process exit status (0 done, 1 failed, 3
 * refused: the agent runs, or a switch is in progress). dry_run only lists. */
int molt_imageprep_main(const char *config_path, int dry_run);

#endif
