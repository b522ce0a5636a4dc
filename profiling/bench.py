"""Benchmarks, each against a baseline measured in the same run: ``python -m earwig.profiling.bench NAME``.

Why ratios: these machines are shared and noisy; a figure only means something beside its
baseline taken a moment before on the same machine.
"""

from __future__ import annotations

import argparse
import sys

from earwig.profiling import (bench_dictation, bench_latency, bench_mel, bench_monitor, bench_peers, bench_ring,
                              bench_session_log, bench_wer)

BENCHMARKS = {"dictation": bench_dictation, "latency": bench_latency, "mel": bench_mel,
              "monitor": bench_monitor, "peers": bench_peers, "ring": bench_ring,
              "session_log": bench_session_log, "wer": bench_wer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m earwig.profiling.bench", description=__doc__)
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark to run")
    parser.add_argument("--quick", action="store_true", help="fewer items: a smoke run, not figures")
    parser.add_argument("--language", help="wer: the corpus language (a MANIFEST code: en, de, es, ...)")
    args = parser.parse_args(argv)
    if args.language and args.name != "wer":
        parser.error("--language is for the wer benchmark")
    options = {"language": args.language} if args.language else {}
    print(BENCHMARKS[args.name].run(quick=args.quick, **options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
