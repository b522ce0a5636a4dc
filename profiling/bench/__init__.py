"""The benchmarks: ``python -m earwig.profiling.bench NAME``, each against a baseline measured
in the same run (``profiling/README.md`` has the figures).

Why ratios: these machines are shared and noisy; a figure only means something beside its
baseline taken a moment before on the same machine. The benchmarks are development tools
in the repository, not part of the installed package (nor is ``profiling/harness``).
"""
