# agent.mk: unit and e2e tests of the agent core and the HTTPS client.
AGENT_UNIT_TESTS = tests/unit/test_agent tests/unit/test_http
check_PROGRAMS += $(AGENT_UNIT_TESTS)
TESTS += $(AGENT_UNIT_TESTS)

tests_unit_test_agent_CFLAGS = $(UNIT_CFLAGS) $(MHD_CFLAGS) -I$(top_srcdir)/agent
tests_unit_test_agent_LDADD = tests/unit/libtestutil.a $(MOLT_AGENT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_http_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_http_LDADD = $(UNIT_LDADD) -lpthread
