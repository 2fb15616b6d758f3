# molt-installer: owns the install root and switches versions (docs/upgrades.md).
sbin_PROGRAMS += installer/molt-installer
installer_molt_installer_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS)
installer_molt_installer_SOURCES = \
	installer/main.c installer/installer.h \
	installer/layout.c \
	installer/switch.c \
	installer/launch.c \
	installer/install.c \
	installer/admin.c
installer_molt_installer_LDADD = $(MOLT_LIBS)
EXTRA_DIST += docs/upgrades.md
