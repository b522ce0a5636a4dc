"""The session log: every Final of a session, one JSON line each, written and fsync'd before
anyone is shown the Final. Whatever earwig showed, it kept.

Why in the supervisor: every Final passes through it on its way to the screen, dictation
and the command line, so logging here covers them all, and before any of them.

Where: ``$XDG_DATA_HOME/earwig/sessions/<started>-<pid>.jsonl``, mode 0600 in a 0700
folder. A line: ``{"source", "start", "end", "wall", "text", "words": [{"word", "start",
"end", "probability"}], "model"}``, positions in samples since the source started, ``wall``
the local time the Final was written (ISO 8601); ``"echo": true`` on a mic Final that
repeats the speakers (``echo_filter``), which nothing shows or exports.

A folder that cannot be written (read-only, full) does not stop the session: the log says
so once (``problem``), and the Finals still reach the screen, which keeps them in memory.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from earwig import paths
from earwig.messages import Final, Word


def sessions_dir() -> Path:
    return paths.data_dir() / "sessions"


class SessionLog:
    def __init__(self, folder: Path | None = None, started: datetime | None = None) -> None:
        started = started or datetime.now()
        self.path = (folder or sessions_dir()) / f"{started:%Y%m%d-%H%M%S}-{os.getpid()}.jsonl"
        #: Why the log cannot be written, once it could not; None while it works.
        self.problem: str | None = None
        self._descriptor: int | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            self.problem = f"cannot write the session log {self.path}: {error.strerror or error}"

    def append(self, final: Final, model: str) -> bool:
        """Write one Final and wait until it is on disk; False if it could not be."""
        if self._descriptor is None:
            return False
        record = {"source": final.source, "start": final.start, "end": final.end,
                  "wall": datetime.now().isoformat(timespec="milliseconds"), "text": final.text,
                  "words": [{"word": w.text, "start": w.start, "end": w.end, "probability": w.probability}
                            for w in final.words], "model": model}
        if final.echo:
            record["echo"] = True
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            written = os.write(self._descriptor, line)
            if written != len(line):
                raise OSError(f"only {written} of {len(line)} bytes written")
            os.fsync(self._descriptor)
        except OSError as error:
            self.problem = f"cannot write the session log {self.path}: {getattr(error, 'strerror', None) or error}"
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def read(path: Path) -> list[Final]:
    """A session log's Finals, in the order they were written. A last line cut short (the
    machine lost power mid-write) is left out; every line before it was on disk."""
    finals = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if index == len(lines) - 1:
                break
            raise ValueError(f"{path}, line {index + 1}: not a session log record") from None
        finals.append(Final(source=record["source"], start=record["start"], end=record["end"],
                            text=record["text"], language="",
                            words=[Word(w["word"], w["start"], w["end"], w["probability"])
                                   for w in record["words"]], echo=record.get("echo", False)))
    return finals
