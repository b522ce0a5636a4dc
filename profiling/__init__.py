"""Benchmarks against baselines measured in the same run (see profiling/README.md)."""
