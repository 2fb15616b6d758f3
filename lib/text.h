/* text.h: the one rule for control bytes in text: what molt refuses in the
 * text it takes in, and masks in the text it shows. A control byte is C0
 * (0x00-0x1f) or DEL (0x7f); bytes from 0x80 (UTF-8) are text. */
#ifndef MOLT_TEXT_H
#define MOLT_TEXT_H

#include <stdbool.h>
#include <stddef.h>

static inline bool molt_text_is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Visible ASCII, 0x21-0x7e: what may go into a URL or an HTTP header token
 * as it is (no space, no control byte, nothing to encode). */
static inline bool molt_text_is_visible_ascii(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* The first control byte of s[0, len), stopping at a NUL, that is not one of
 * allowed (e.g. "\t"; NULL for none); NULL if there is none. */
const char *molt_text_find_control(const char *s, size_t len, const char *allowed);

/* Whether every byte of s[0, len) is visible ASCII. */
bool molt_text_all_visible_ascii(const char *s, size_t len);

/* Also masks '"' and '\\': for text shown inside quotes (a server's message
 * in the log or the status), which could otherwise forge a field. */
#define MOLT_TEXT_QUOTES 1u

/* Copies up to len bytes of s (stopping at a NUL; s may be NULL) into out,
 * at most n - 1 of them and always terminated, each control byte (and with
 * MOLT_TEXT_QUOTES each quote and backslash) as '?'. Returns out. */
char *molt_text_show(char *out, size_t n, const char *s, size_t len, unsigned flags);

/* molt_text_show of the whole string s. */
char *molt_text_shown(char *out, size_t n, const char *s, unsigned flags);

#endif
