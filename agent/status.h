/* status.h: `molt-agent status`, a client of the local API's GET /api/v1/agent.
 * Exit codes: 0 shown, 1 the agent could not be reached or refused. */
#ifndef MOLT_STATUS_H
#define MOLT_STATUS_H

#include <stdio.h>

#include <json-c/json.h>

/* Fetches GET path over the agent's Unix socket; *body is malloc'd. Returns the
 * HTTP status, or -1 with msg filled in. */
long molt_status_fetch(const char *socket_path, const char *path, char **body, char *msg,
                       size_t msg_len);
/* The same for any method; json (may be NULL) is sent as the request body. */
long molt_status_request(const char *socket_path, const char *method, const char *path,
                         const char *json, char **body, char *msg, size_t msg_len);
/* Prints data (the envelope's "data") as aligned lines; a progress bar for a
 * running download when tty is set. */
void molt_status_print(FILE *out, struct json_object *data, int tty);
int molt_status_main(const char *config_path, int json);

#endif
