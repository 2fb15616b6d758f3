/* curl_floor.c: `make bench`'s floor for the resident agent's memory
 * (bench/fig-heartbeat.sh): a program that links Debian's libcurl and nothing
 * else of molt, and holds what any HTTPS heartbeat client with that libcurl
 * must hold. It stops twice so that bench.py can read its /proc entries the
 * way it reads the agent's: after curl_global_init (the "floor"),
 * and after one HTTPS request over a connection it keeps open, as the agent
 * keeps its own. Usage: curl_floor URL CAFILE; it prints "init" and "request"
 * (or "error ...") on stdout and waits for a line on stdin after each. Built
 * only for make bench. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

static size_t discard(char *ptr, size_t size, size_t n, void *user)
{
    (void)ptr;
    (void)user;
    return size * n;
}

static void pause_for_reader(const char *what)
{
    char line[16];

    printf("%s\n", what);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        clearerr(stdin); /* the reader is gone: go on to the end */
}

int main(int argc, char **argv)
{
    CURL *h;
    CURLcode rc;

    if (argc != 3) {
        fprintf(stderr, "usage: curl_floor URL CAFILE\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        printf("error curl_global_init\n");
        return 1;
    }
    pause_for_reader("init");
    h = curl_easy_init();
    if (!h) {
        printf("error curl_easy_init\n");
        return 1;
    }
    curl_easy_setopt(h, CURLOPT_URL, argv[1]);
    curl_easy_setopt(h, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        printf("error %s\n", curl_easy_strerror(rc));
        return 1;
    }
    pause_for_reader("request");
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
