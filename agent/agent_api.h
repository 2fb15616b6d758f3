/* agent_api.h: the agent's own endpoints on the local API (api.h):
 *   GET /api/v1/agent   identity, version, server, heartbeats, current task;
 *   GET /metrics        the same facts in the Prometheus text format.
 * The upgrade pipeline adds its endpoints next to these (see api.h). */
#ifndef MOLT_AGENT_API_H
#define MOLT_AGENT_API_H

#include <json-c/json.h>

#include "agent.h"
#include "err.h"

/* Registers the agent's routes on a->api (before it starts serving). */
int molt_agent_api_routes(struct molt_agent *a, struct molt_err *err);
/* The "data" of GET /api/v1/agent, from a status snapshot. */
struct json_object *molt_agent_api_info(struct molt_agent *a);
/* The body of GET /metrics (malloc'd; NULL when out of memory). */
char *molt_agent_metrics(struct molt_agent *a);

#endif
