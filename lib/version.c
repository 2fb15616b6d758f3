/* version.c: build version ordering, shared by the agent, installer and packer. */
#include "version.h"

#include <ctype.h>
#include <string.h>

#include "config.h"

const char *molt_version_self(void)
{
    return MOLT_VERSION;
}

static int cmp_digits(const char **pa, const char **pb)
{
    const char *a = *pa, *b = *pb;
    size_t la, lb;

    while (*a == '0')
        a++;
    while (*b == '0')
        b++;
    for (la = 0; isdigit((unsigned char)a[la]); la++)
        ;
    for (lb = 0; isdigit((unsigned char)b[lb]); lb++)
        ;
    *pa = a + la;
    *pb = b + lb;
    if (la != lb)
        return la < lb ? -1 : 1;
    int c = strncmp(a, b, la);
    return c < 0 ? -1 : c > 0;
}

int molt_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        int da = isdigit((unsigned char)*a), db = isdigit((unsigned char)*b);
        if (da && db) {
            int c = cmp_digits(&a, &b);
            if (c)
                return c;
            continue;
        }
        if (!*a || !*b)
            return *a ? 1 : -1;
        /* A digit run sorts after a separator: "1.0.1" > "1.0". */
        if (da != db)
            return da ? 1 : -1;
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return 0;
}
