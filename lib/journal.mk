# journal.mk: the upgrade journal (molt-installer writes it, the agent reads it).
lib_libmolt_a_SOURCES += lib/journal.c lib/journal.h
