/* text.c: finding and masking control bytes (text.h has the rule). */
#include "text.h"

#include <stdint.h>
#include <string.h>

const char *molt_text_find_control(const char *s, size_t len, const char *allowed)
{
    for (size_t i = 0; i < len && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];

        if (molt_text_is_control(c) && !(allowed && strchr(allowed, c)))
            return s + i;
    }
    return NULL;
}

bool molt_text_all_visible_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!molt_text_is_visible_ascii((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool masked(unsigned char c, unsigned flags)
{
    return molt_text_is_control(c) || ((flags & MOLT_TEXT_QUOTES) && (c == '"' || c == '\\'));
}

char *molt_text_show(char *out, size_t n, const char *s, size_t len, unsigned flags)
{
    size_t j = 0;

    if (n == 0)
        return out;
    for (size_t i = 0; s && i < len && s[i] && j + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];

        out[j++] = masked(c, flags) ? '?' : (char)c;
    }
    out[j] = '\0';
    return out;
}

char *molt_text_shown(char *out, size_t n, const char *s, unsigned flags)
{
    return molt_text_show(out, n, s, SIZE_MAX, flags);
}
