# docs/: the contracts and the design, shipped in the release tarball.
# (upgrades.md and security.md are listed by the installer and hardening fragments.)
EXTRA_DIST += docs/protocol.md docs/package-format.md

include bench/bench.mk
