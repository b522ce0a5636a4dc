"""A session's transcript as a file: both sources' Finals interleaved by start time.

Why not in tui/: the monitor's save key writes it now, and an export of the session log
(a command) will write the same text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from earwig.config import SAMPLE_RATE
from earwig.messages import Final

TITLES = {"mic": "Mic", "speakers": "Speakers"}


def clock(sample: int) -> str:
    """A sample position as minutes:seconds since the source started."""
    minutes, seconds = divmod(int(sample / SAMPLE_RATE), 60)
    return f"{minutes:02d}:{seconds:02d}"


def as_text(finals: Iterable[Final], started: datetime) -> str:
    """``[mm:ss Source] text`` lines in the order the words were spoken."""
    lines = [f"earwig transcript, started {started:%Y-%m-%d %H:%M:%S}"]
    for final in sorted(finals, key=lambda f: (f.start, f.source)):
        lines.append(f"[{clock(final.start)} {TITLES[final.source]}] {final.text}")
    return "\n".join(lines) + "\n"


def save_text(finals: Iterable[Final], started: datetime, folder: Path) -> Path:
    """Write the transcript into ``folder`` (made if missing), readable by the user alone."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"earwig-{started:%Y%m%d-%H%M%S}.txt"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(as_text(finals, started))
    return path
