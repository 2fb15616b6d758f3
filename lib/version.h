/* version.h: molt build versions ("20.1-2749"): comparison; their rule
 * (molt_version_valid, MOLT_VERSION_MAX) is in proto.h. */
#ifndef MOLT_VERSION_H
#define MOLT_VERSION_H

#include "proto.h"

/* Compares numerically run by run ("20.10-1" > "20.9-99"); returns <0, 0, >0. */
int molt_version_cmp(const char *a, const char *b);
/* The version this program was built as. */
const char *molt_version_self(void);

#endif
