include bench/bench.mk
