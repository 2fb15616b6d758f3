# libmolt: the internal library every program links. Modules with an owner of
# their own add sources in their fragment below.
noinst_LIBRARIES += lib/libmolt.a
lib_libmolt_a_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
lib_libmolt_a_SOURCES = \
	lib/err.c lib/err.h \
	lib/text.c lib/text.h \
	lib/log.c lib/log.h \
	lib/fault.h \
	lib/fs.c lib/fs.h \
	lib/conf.c lib/conf.h \
	lib/json.c lib/json.h \
	lib/proto.c lib/proto.h \
	lib/version.c lib/version.h \
	lib/base64.c lib/base64.h \
	lib/cli.c lib/cli.h \
	lib/host.c lib/host.h \
	lib/window.c lib/window.h \
	lib/download.c lib/download.h \
	lib/notify.c lib/notify.h \
	lib/sandbox.c lib/sandbox.h lib/sandbox_int.h lib/sandbox_probe.c

# Fault points only in test builds (configure --enable-fault-points, see fault.h).
if ENABLE_FAULT_POINTS
lib_libmolt_a_SOURCES += lib/fault.c
endif

include lib/package.mk
include lib/net.mk
include lib/journal.mk
