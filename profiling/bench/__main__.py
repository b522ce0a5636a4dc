"""Runs one benchmark: ``python -m earwig.profiling.bench NAME [--quick]``."""

from __future__ import annotations

import argparse
import sys

from earwig.profiling.bench import (dictation, echo, latency, mel, model_memory, monitor, peers, play, recovery,
                                    retry, ring, server, session_log, soak, wer)
from earwig.profiling.harness import degrade

BENCHMARKS = {"dictation": dictation, "echo": echo, "latency": latency, "mel": mel, "model_memory": model_memory,
              "monitor": monitor, "peers": peers, "play": play, "recovery": recovery, "retry": retry, "ring": ring,
              "server": server, "session_log": session_log, "soak": soak, "wer": wer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m earwig.profiling.bench",
                                     description="Benchmarks, each against a baseline measured in the same run.")
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark to run")
    parser.add_argument("--quick", action="store_true", help="fewer items: a smoke run, not figures")
    parser.add_argument("--language", help="wer: the corpus language (a MANIFEST code: en, de, es, ...)")
    parser.add_argument("--degrade", metavar="NAMES",
                        help="wer: also read degraded copies made in the run, comma-separated: "
                             f"{', '.join(degrade.DEGRADATIONS)} (measured), {', '.join(degrade.UNSEEN)} (held out)")
    parser.add_argument("--minutes", type=float, help=f"soak: minutes of speech per source (default {soak.MINUTES})")
    args = parser.parse_args(argv)
    if args.language and args.name != "wer":
        parser.error("--language is for the wer benchmark")
    if args.degrade and args.name != "wer":
        parser.error("--degrade is for the wer benchmark")
    unknown = [name for name in (args.degrade or "").split(",") if name and name not in degrade.EVERY]
    if unknown:
        parser.error(f"--degrade: no degradation named {', '.join(unknown)} (choose from {', '.join(degrade.EVERY)})")
    if args.minutes is not None and (args.name != "soak" or args.minutes <= 0):
        parser.error("--minutes is for the soak benchmark, and more than 0")
    options = {"language": args.language} if args.language else {}
    if args.degrade:
        options["degrade"] = args.degrade
    if args.minutes is not None:
        options["minutes"] = args.minutes
    print(BENCHMARKS[args.name].run(quick=args.quick, **options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
