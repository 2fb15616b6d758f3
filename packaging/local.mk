# molt-pack: build, sign and verify build packages.
bin_PROGRAMS += packaging/molt-pack
packaging_molt_pack_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
packaging_molt_pack_SOURCES = packaging/molt-pack.c
packaging_molt_pack_LDADD = $(MOLT_LIBS)
