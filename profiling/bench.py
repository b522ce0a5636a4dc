"""Benchmarks, each against a baseline measured in the same run: ``python -m earwig.profiling.bench NAME``.

Why ratios: these machines are shared and noisy; a figure only means something beside its
baseline taken a moment before on the same machine.
"""

from __future__ import annotations

import argparse
import sys

from earwig.profiling import (bench_dictation, bench_latency, bench_mel, bench_monitor, bench_peers, bench_ring,
                              bench_session_log)

BENCHMARKS = {"dictation": bench_dictation, "latency": bench_latency, "mel": bench_mel,
              "monitor": bench_monitor, "peers": bench_peers, "ring": bench_ring,
              "session_log": bench_session_log}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m earwig.profiling.bench", description=__doc__)
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark to run")
    parser.add_argument("--quick", action="store_true", help="fewer items: a smoke run, not figures")
    args = parser.parse_args(argv)
    print(BENCHMARKS[args.name].run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
