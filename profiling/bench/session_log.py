"""What the session log costs per Final: ``SessionLog.append`` (write, then fsync) against the
same lines written without the fsync, in the same run, on the data dir's file system.

The Finals are typical: a 12-word sentence with word timestamps. The fsync is what makes
"on disk before it is shown" true, so it is paid on the way from the final actor to the
screen; this says how much that adds to end of speech -> Final.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from earwig import paths
from earwig.messages import Final, Word
from earwig.profiling.report import table
from earwig.session.log import SessionLog

SENTENCE = "Please send the quarterly report to the whole team by Friday afternoon".split()


def _final(index: int) -> Final:
    start = index * 64000
    words = [Word(word, start + i * 4000, start + (i + 1) * 4000, 0.9) for i, word in enumerate(SENTENCE)]
    return Final(source="mic", start=start, end=start + len(SENTENCE) * 4000, text=" ".join(SENTENCE),
                 language="en", words=words)


def run(quick: bool = False) -> str:
    count = 50 if quick else 300
    finals = [_final(i) for i in range(count)]
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.data_dir()) as scratch:
        log = SessionLog(Path(scratch) / "synced")
        synced, fsyncs = [], _Counted(os.fsync)
        os.fsync = fsyncs
        try:
            for final in finals:
                started = time.perf_counter()
                log.append(final, "base")
                synced.append(time.perf_counter() - started)
        finally:
            os.fsync = fsyncs.call
        log.close()
        lines = log.path.read_bytes().splitlines(keepends=True)
        descriptor = os.open(Path(scratch) / "unsynced.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        unsynced = []
        for line in lines:
            started = time.perf_counter()
            os.write(descriptor, line)
            unsynced.append(time.perf_counter() - started)
        os.close(descriptor)
    # Microseconds: a buffered write takes about one, which milliseconds to three places
    # printed as 0.000.
    us = lambda values, q: f"{1e6 * np.percentile(values, q):.1f}"  # noqa: E731
    rows = [("SessionLog.append (write + fsync)", us(synced, 50), us(synced, 95), us(synced, 99)),
            ("the same lines, write only (baseline)", us(unsynced, 50), us(unsynced, 95), us(unsynced, 99))]
    return "\n".join([f"session log: {count} Finals of {len(SENTENCE)} words, in {paths.data_dir()}"]
                     + table(("", "p50 µs", "p95 µs", "p99 µs"), rows)
                     + [f"fsync adds {1000 * (np.median(synced) - np.median(unsynced)):.3f} ms per Final (p50)",
                        f"fsync calls: {fsyncs.count} for {count} appends"])


class _Counted:
    """A function that counts its calls: the fsyncs the appends made, so the report shows
    they were made (their cost alone could be near nothing on a RAM disk)."""

    def __init__(self, call) -> None:
        self.call, self.count = call, 0

    def __call__(self, *args):
        self.count += 1
        return self.call(*args)
