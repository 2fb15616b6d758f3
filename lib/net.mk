# net.mk: the networking modules of libmolt (owned by the agent core): the
# hardened HTTPS client every network user goes through.
lib_libmolt_a_SOURCES += lib/http.c lib/http.h
