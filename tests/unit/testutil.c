/* testutil.c: temporary directories and files for unit tests. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fs.h"

char *tu_mkdtemp(char buf[PATH_MAX])
{
    const char *tmp = getenv("TMPDIR");

    snprintf(buf, PATH_MAX, "%s/molt-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(buf));
    return buf;
}

void tu_write(char out[PATH_MAX], const char *dir, const char *name, const char *text)
{
    FILE *f;

    snprintf(out, PATH_MAX, "%s/%s", dir, name);
    f = fopen(out, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

void tu_rmtree(const char *dir)
{
    struct molt_err err = MOLT_ERR_INIT;

    assert_int_equal(molt_fs_remove_tree(dir, &err), 0);
}

int tu_listen_loopback(uint16_t *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}
