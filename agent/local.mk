# molt-agent: the resident daemon.
sbin_PROGRAMS += agent/molt-agent
agent_molt_agent_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS) $(MHD_CFLAGS)
agent_molt_agent_SOURCES = agent/main.c
agent_molt_agent_LDADD = $(MOLT_LIBS) $(MHD_LIBS)
