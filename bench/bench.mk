# bench/bench.mk: `make bench` (bench/run.sh): footprint, throughput and latency of molt beside
# their baselines and goals, measured in one run on this machine; see bench/README.md. Never
# part of `make check`. `make bench BENCH_ARGS="pickup e2e"` runs some figures only;
# BENCH_QUICK=1, BENCH_FLEET=50 and the other BENCH_* variables are read from the environment
# (`make bench BENCH_QUICK=1` works too: make exports command-line variables).
BENCH_ARGS =

bench: agent/molt-agent installer/molt-installer packaging/molt-pack bench/channel_admit \
	bench/curl_floor
	@MOLT_TOP_SRCDIR='$(abs_top_srcdir)' MOLT_TOP_BUILDDIR='$(abs_top_builddir)' \
	  MOLT_BUILD_VERSION='$(MOLT_VERSION)' PYTHON3='$(PYTHON3)' \
	  bash '$(abs_top_srcdir)/bench/run.sh' $(BENCH_ARGS)

# Builds of the second version and the small releases are kept between runs in bench-cache/.
bench-clean:
	-rm -rf bench-cache bench-logs bench-results.json bench-work.*
.PHONY: bench bench-clean

EXTRA_DIST += bench/README.md bench/run.sh bench/lib.sh bench/bench.py bench/fig-heartbeat.sh \
	bench/fig-download.sh bench/fig-rate.sh bench/fig-pickup.sh bench/fig-e2e.sh bench/fig-fleet.sh \
	bench/fig-hostile.sh bench/fig-delta.sh bench/fig-trust.sh

# The channel figure's timing program (bench/fig-channel.sh): built for make bench only.
EXTRA_PROGRAMS = bench/channel_admit bench/curl_floor
bench_channel_admit_SOURCES = bench/channel_admit.c
bench_channel_admit_CFLAGS = $(AM_CFLAGS) $(MOLT_DEP_CFLAGS) -I$(top_srcdir)/agent
bench_channel_admit_LDADD = $(MOLT_AGENT_LIBS)
EXTRA_DIST += bench/fig-channel.sh

# The heartbeat figure's floor (bench/curl_floor.c): libcurl and nothing else, so that what it
# maps is what any HTTPS client with this libcurl maps.
bench_curl_floor_SOURCES = bench/curl_floor.c
bench_curl_floor_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
bench_curl_floor_LDADD = $(CURL_LIBS)
