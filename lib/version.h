/* version.h: molt build versions ("20.1-2749"): comparison and validation. */
#ifndef MOLT_VERSION_H
#define MOLT_VERSION_H

/* Compares numerically run by run ("20.10-1" > "20.9-99"); returns <0, 0, >0. */
int molt_version_cmp(const char *a, const char *b);
/* 1 when v is a well-formed version: 1..64 of [0-9A-Za-z.+_-], starting with a digit. */
int molt_version_valid(const char *v);
/* The version this program was built as. */
const char *molt_version_self(void);

#endif
