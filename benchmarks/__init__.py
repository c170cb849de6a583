"""Side-by-side benchmarks of vx-engine against its peers; `make bench` runs the CPU set."""
