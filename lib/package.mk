# package.mk: build packages (docs/package-format.md): statement, manifest,
# signatures, streaming verification, safe staging, building.
lib_libmolt_a_SOURCES += \
	lib/package.c lib/package.h lib/package_int.h \
	lib/package_util.c \
	lib/package_manifest.c \
	lib/package_stage.c \
	lib/package_tree.c \
	lib/package_build.c \
	lib/delta.c lib/delta.h \
	lib/sign.c lib/sign.h
# The signed release channel (docs/security.md, section 6) and signature thresholds.
lib_libmolt_a_SOURCES += lib/channel.c lib/channel.h lib/sigset.c lib/sigset.h \
	lib/keyring.c lib/keyring.h
