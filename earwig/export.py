"""A session's transcript as a file: both sources' Finals interleaved by start time, as
text (the monitor's save key, ``earwig export``), subtitles (SRT, WebVTT) or JSON.

Times are each source's own clock (samples since it started); both sources start together.
"""

from __future__ import annotations

import json
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


def _timestamp(sample: int, decimal: str) -> str:
    milliseconds = round(sample * 1000 / SAMPLE_RATE)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, milliseconds = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{decimal}{milliseconds:03d}"


def as_subtitles(finals: Iterable[Final], webvtt: bool) -> str:
    """SRT, or WebVTT (with the source as the cue's voice); a cue per Final."""
    cues = ["WEBVTT\n"] if webvtt else []
    for number, final in enumerate(sorted(finals, key=lambda f: (f.start, f.source)), 1):
        decimal = "." if webvtt else ","
        times = f"{_timestamp(final.start, decimal)} --> {_timestamp(final.end, decimal)}"
        text = f"<v {TITLES[final.source]}>{final.text}" if webvtt else f"{TITLES[final.source]}: {final.text}"
        cues.append(f"{times}\n{text}\n" if webvtt else f"{number}\n{times}\n{text}\n")
    return "\n".join(cues)


def as_json(finals: Iterable[Final]) -> str:
    """A list of ``{"source", "start", "end", "text", "words"}``, times in seconds."""
    return json.dumps([{"source": f.source, "start": f.start / SAMPLE_RATE, "end": f.end / SAMPLE_RATE,
                        "text": f.text, "words": [{"word": w.text, "start": w.start / SAMPLE_RATE,
                                                   "end": w.end / SAMPLE_RATE} for w in f.words]}
                       for f in sorted(finals, key=lambda f: (f.start, f.source))], ensure_ascii=False, indent=1)
