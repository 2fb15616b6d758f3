/* base64.c: strict standard base64 (RFC 4648) for statements and signatures
 * on the wire and in saved state, and the one reader of a bounded base64 JSON
 * field. Encoding is OpenSSL's EVP_EncodeBlock. Decoding is not: EVP_DecodeBlock
 * skips leading and trailing whitespace and counts the padding as decoded zero
 * bytes, and the rule here is one spelling of each byte string (no whitespace,
 * padding only at the end, the exact length). */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "json.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int molt_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len,
                           struct molt_err *err)
{
    unsigned char *buf;
    size_t n = 0;

    *out = NULL;
    *out_len = 0;
    if (len % 4 != 0)
        return molt_err_set(err, MOLT_E_PARSE, "base64: length %zu is not a multiple of 4", len);
    buf = malloc(len / 4 * 3 + 1);
    if (!buf)
        return molt_err_set(err, MOLT_E_NOMEM, "base64: out of memory");
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            /* '=' only as the last one or two characters of the whole input. */
            if (c == '=' && i + 4 == len && k >= 2 && (k == 3 || in[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0 || pad) {
                free(buf);
                return molt_err_set(err, MOLT_E_PARSE, "base64: bad character at offset %zu",
                                    i + (size_t)k);
            }
        }
        unsigned triple =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        buf[n++] = (unsigned char)(triple >> 16);
        if (pad < 2)
            buf[n++] = (unsigned char)(triple >> 8);
        if (pad < 1)
            buf[n++] = (unsigned char)triple;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

int molt_base64_encode(const void *in, size_t len, char **out, struct molt_err *err)
{
    char *buf;

    *out = NULL;
    if (len > (size_t)INT32_MAX / 2)
        return molt_err_set(err, MOLT_E_LIMIT, "base64: input too large");
    buf = malloc((len + 2) / 3 * 4 + 1);
    if (!buf)
        return molt_err_set(err, MOLT_E_NOMEM, "base64: out of memory");
    EVP_EncodeBlock((unsigned char *)buf, in, (int)len);
    *out = buf;
    return 0;
}

int molt_base64_field(struct json_object *o, const char *key, size_t max, unsigned char **out,
                      size_t *len, struct molt_err *err)
{
    const char *s;
    int rc = molt_json_get_str(o, key, &s, err);

    *out = NULL;
    *len = 0;
    if (rc < 0)
        return rc;
    if (strlen(s) > MOLT_BASE64_LEN(max))
        return molt_err_set(err, MOLT_E_LIMIT, "field '%s': larger than %zu bytes", key, max);
    if (!*s || molt_base64_decode(s, strlen(s), out, len, err) < 0)
        return molt_err_set(err, MOLT_E_PARSE, "field '%s': not valid base64", key);
    if (*len > max) {    /* the length check above lets up to 2 bytes more through */
        free(*out);
        *out = NULL;
        *len = 0;
        return molt_err_set(err, MOLT_E_LIMIT, "field '%s': larger than %zu bytes", key, max);
    }
    return 0;
}
