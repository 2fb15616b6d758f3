# agent.mk: unit and e2e tests of the agent core and the HTTPS client.
AGENT_UNIT_TESTS = tests/unit/test_agent tests/unit/test_http
check_PROGRAMS += $(AGENT_UNIT_TESTS)
TESTS += $(AGENT_UNIT_TESTS)

tests_unit_test_agent_CFLAGS = $(UNIT_CFLAGS) $(MHD_CFLAGS) -I$(top_srcdir)/agent
tests_unit_test_agent_LDADD = tests/unit/libtestutil.a $(MOLT_AGENT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_http_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_http_LDADD = $(UNIT_LDADD) -lpthread

# e2e: real molt-agent processes against the reference control plane (tests/e2e/lib/cp.sh).
AGENT_E2E_TESTS = tests/e2e/agent_basic.sh tests/e2e/agent_faults.sh \
	tests/e2e/agent_process.sh tests/e2e/agent_outbox.sh tests/e2e/agent_tls.sh \
	tests/e2e/agent_longpoll.sh tests/e2e/agent_strict.sh tests/e2e/agent_checkconf.sh
TESTS += $(AGENT_E2E_TESTS)
EXTRA_DIST += $(AGENT_E2E_TESTS) tests/e2e/lib/agent.sh
