# agent.mk: unit and e2e tests of the agent core and the HTTPS client.
# One unit-test program per agent module (tests/unit/test_<module>.c).
AGENT_MODULE_TESTS = tests/unit/test_agent tests/unit/test_api tests/unit/test_api_http \
	tests/unit/test_backoff \
	tests/unit/test_command tests/unit/test_health tests/unit/test_heartbeat tests/unit/test_identity \
	tests/unit/test_outbox tests/unit/test_report tests/unit/test_resume tests/unit/test_status \
	tests/unit/test_task tests/unit/test_trust tests/unit/test_upgrade_state \
	tests/unit/test_worker_msg tests/unit/test_worker_net
AGENT_UNIT_TESTS = $(AGENT_MODULE_TESTS) tests/unit/test_http
check_PROGRAMS += $(AGENT_UNIT_TESTS)
TESTS += $(AGENT_UNIT_TESTS)

# Helpers of the agent's tests (commands, final reports).
check_LIBRARIES += tests/unit/libagenttestutil.a
tests_unit_libagenttestutil_a_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/agent
tests_unit_libagenttestutil_a_SOURCES = tests/unit/agent_testutil.c tests/unit/agent_testutil.h
AGENT_UNIT_CFLAGS = $(UNIT_CFLAGS) -I$(top_srcdir)/agent
AGENT_UNIT_LDADD = tests/unit/libagenttestutil.a tests/unit/libtestutil.a $(MOLT_AGENT_LIBS) $(MOLT_LIBS) \
	$(CMOCKA_LIBS)
tests_unit_test_worker_msg_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_worker_msg_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_worker_net_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_worker_net_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_agent_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_agent_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_api_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_api_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_api_http_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_api_http_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_backoff_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_backoff_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_command_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_command_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_health_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_health_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_heartbeat_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_heartbeat_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_identity_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_identity_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_outbox_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_outbox_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_report_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_report_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_resume_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_resume_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_status_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_status_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_task_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_task_LDADD = $(AGENT_UNIT_LDADD)
# trust.c's tests sign channels with keys made by the package tests' helpers.
tests_unit_test_trust_SOURCES = tests/unit/test_trust.c $(PACKAGE_TEST_SOURCES)
tests_unit_test_trust_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_trust_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_upgrade_state_CFLAGS = $(AGENT_UNIT_CFLAGS)
tests_unit_test_upgrade_state_LDADD = $(AGENT_UNIT_LDADD)
tests_unit_test_http_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_http_LDADD = $(UNIT_LDADD) -lpthread

# e2e: real molt-agent processes against the reference control plane (tests/e2e/lib/cp.sh).
AGENT_E2E_TESTS = tests/e2e/agent_basic.sh tests/e2e/agent_faults.sh \
	tests/e2e/agent_process.sh tests/e2e/agent_outbox.sh tests/e2e/agent_tls.sh \
	tests/e2e/agent_longpoll.sh tests/e2e/agent_strict.sh tests/e2e/agent_checkconf.sh \
	tests/e2e/agent_trust_store.sh
TESTS += $(AGENT_E2E_TESTS)
EXTRA_DIST += $(AGENT_E2E_TESTS) tests/e2e/lib/agent.sh
