# molt-agent: the resident daemon. Everything but main.c lives in a library so
# the unit tests link the same code.
noinst_LIBRARIES += agent/libmoltagent.a
agent_libmoltagent_a_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
agent_libmoltagent_a_SOURCES = \
	agent/agent.c agent/agent.h \
	agent/agent_api.c agent/agent_api.h \
	agent/api.c agent/api.h \
	agent/api_http.c agent/api_http.h \
	agent/backoff.c agent/backoff.h \
	agent/command.c agent/command.h \
	agent/health.c agent/health.h \
	agent/heartbeat.c agent/heartbeat.h \
	agent/trust.c agent/trust.h \
	agent/identity.c agent/identity.h \
	agent/outbox.c agent/outbox.h \
	agent/pipeline.h \
	agent/status.c agent/status.h \
	agent/report.c agent/report.h \
	agent/resume.c agent/resume.h \
	agent/task.c agent/task.h \
	agent/upgrade.h agent/upgrade.c \
	agent/upgrade_state.c agent/upgrade_state.h \
	agent/upgrade_api.c agent/upgrade_cli.c agent/upgrade_cli.h \
	agent/watch.c agent/watch.h \
	agent/watch_events.c agent/watch_events.h \
	agent/worker_msg.c agent/worker_msg.h \
	agent/worker_net.c agent/worker_net.h \
	agent/worker_proc.c agent/worker_proc.h

MOLT_AGENT_LIBS = agent/libmoltagent.a $(MOLT_CORE_LIBS) -lpthread

sbin_PROGRAMS += agent/molt-agent
agent_molt_agent_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
agent_molt_agent_SOURCES = agent/main.c agent/imageprep.c agent/imageprep.h \
	agent/checkconf.c agent/checkconf.h
agent_molt_agent_LDADD = $(MOLT_AGENT_LIBS)

# molt-worker: the upgrade worker molt-agent starts per task, from its own
# directory (worker_proc.h); the only program of the agent's that maps
# libarchive, libzstd and libseccomp.
sbin_PROGRAMS += agent/molt-worker
agent_molt_worker_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
agent_molt_worker_SOURCES = agent/worker_main.c agent/worker.c agent/worker.h
agent_molt_worker_LDADD = agent/libmoltagent.a $(MOLT_LIBS) $(MOLT_SANDBOX_LIBS) -lpthread
