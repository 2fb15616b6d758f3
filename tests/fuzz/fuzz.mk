# fuzz.mk: libFuzzer harnesses of every parser of untrusted input beyond the
# package formats (tests/unit/package.mk builds those: statement, manifest,
# sig, archive), and `make fuzz`, which runs them all.
#
#   CC=clang .../configure --enable-fuzzing && make fuzz FUZZ_SECONDS=600
#
# FUZZ_SECONDS=0 replays the seed corpora once (a quick regression check).
# Seeds: tests/fuzz/corpus/<name>; new inputs and crashes: tests/fuzz/work/.
HARDEN_FUZZERS = tests/fuzz/fuzz_heartbeat tests/fuzz/fuzz_command tests/fuzz/fuzz_conf \
	tests/fuzz/fuzz_journal tests/fuzz/fuzz_upgrade_state tests/fuzz/fuzz_identity \
	tests/fuzz/fuzz_outbox tests/fuzz/fuzz_api_request tests/fuzz/fuzz_worker_msg
HARDEN_FUZZ_CORPORA = tests/fuzz/corpus/heartbeat tests/fuzz/corpus/command \
	tests/fuzz/corpus/conf tests/fuzz/corpus/journal tests/fuzz/corpus/upgrade_state \
	tests/fuzz/corpus/identity tests/fuzz/corpus/outbox tests/fuzz/corpus/api_request \
	tests/fuzz/corpus/worker_msg
EXTRA_DIST += $(HARDEN_FUZZ_CORPORA) tests/fuzz/run.sh tests/fuzz/fuzz_util.c \
	tests/fuzz/fuzz_util.h $(HARDEN_FUZZERS:=.c)
FUZZ_SECONDS = 60

if ENABLE_FUZZING
noinst_PROGRAMS += $(HARDEN_FUZZERS)
HARDEN_FUZZ_COMPILE = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS) -I$(top_srcdir)/agent
HARDEN_FUZZ_LINK = $(AM_LDFLAGS) -fsanitize=fuzzer
HARDEN_FUZZ_LIBS = $(MOLT_AGENT_LIBS) $(MOLT_LIBS)
HARDEN_FUZZ_UTIL = tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h

tests_fuzz_fuzz_heartbeat_SOURCES = tests/fuzz/fuzz_heartbeat.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_heartbeat_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_heartbeat_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_heartbeat_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_command_SOURCES = tests/fuzz/fuzz_command.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_command_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_command_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_command_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_conf_SOURCES = tests/fuzz/fuzz_conf.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_conf_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_conf_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_conf_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_journal_SOURCES = tests/fuzz/fuzz_journal.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_journal_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_journal_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_journal_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_upgrade_state_SOURCES = tests/fuzz/fuzz_upgrade_state.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_upgrade_state_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_upgrade_state_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_upgrade_state_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_identity_SOURCES = tests/fuzz/fuzz_identity.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_identity_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_identity_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_identity_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_outbox_SOURCES = tests/fuzz/fuzz_outbox.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_outbox_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_outbox_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_outbox_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_api_request_SOURCES = tests/fuzz/fuzz_api_request.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_api_request_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_api_request_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_api_request_LDADD = $(HARDEN_FUZZ_LIBS)
tests_fuzz_fuzz_worker_msg_SOURCES = tests/fuzz/fuzz_worker_msg.c $(HARDEN_FUZZ_UTIL)
tests_fuzz_fuzz_worker_msg_CFLAGS = $(HARDEN_FUZZ_COMPILE)
tests_fuzz_fuzz_worker_msg_LDFLAGS = $(HARDEN_FUZZ_LINK)
tests_fuzz_fuzz_worker_msg_LDADD = $(HARDEN_FUZZ_LIBS)

fuzz: $(PACKAGE_FUZZERS) $(HARDEN_FUZZERS)
	$(SHELL) $(top_srcdir)/tests/fuzz/run.sh --seconds '$(FUZZ_SECONDS)' \
		--seeds $(top_srcdir)/tests/fuzz/corpus --work $(abs_top_builddir)/tests/fuzz/work \
		$(PACKAGE_FUZZERS) $(HARDEN_FUZZERS)
else
fuzz:
	@echo "make fuzz: configure with CC=clang --enable-fuzzing first" >&2; exit 1
endif
.PHONY: fuzz
include tests/hardening.mk
