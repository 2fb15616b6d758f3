# molt-installer: owns the install root and switches versions.
sbin_PROGRAMS += installer/molt-installer
installer_molt_installer_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
installer_molt_installer_SOURCES = installer/main.c
installer_molt_installer_LDADD = $(MOLT_LIBS)
