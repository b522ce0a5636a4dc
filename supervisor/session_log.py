"""The session log: every Final of a session, one JSON line each, written and fsync'd before
anyone is shown the Final. Whatever earwig showed, it kept.

Why in the supervisor: every Final passes through it on its way to the screen, dictation
and the command line, so logging here covers them all, and before any of them.

Where: ``$XDG_DATA_HOME/earwig/sessions/<started>-<pid>.jsonl``, mode 0600 in a 0700
folder. A line: ``{"source", "start", "end", "wall", "text", "words": [{"word", "start",
"end", "probability"}], "model"}``, positions in samples since the source started, ``wall``
the local time the Final was written (ISO 8601); ``"echo": true`` on a mic Final that
repeats the speakers (``echo_filter``), which nothing shows or exports; ``"revised": true`` on
a line read again (the monitor's retry, ``earwig ctl retry``). A revision is appended, never
written over the line: a reader takes the latest record of each span, in the place of the
first (``read_logged``).

A folder that cannot be written (read-only, full) does not stop the session: the log says
so once (``problem``), and the Finals still reach the screen, which keeps them in memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from earwig import paths
from earwig.errors import EarwigError
from earwig.messages import Final, Source, Word


def sessions_dir() -> Path:
    return paths.data_dir() / "sessions"


def new_session_path(folder: Path | None = None, started: datetime | None = None) -> Path:
    """A new session's log: named by when it started and by the process that starts it."""
    return (folder or sessions_dir()) / f"{started or datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.jsonl"


class SessionLog:
    def __init__(self, folder: Path | None = None, started: datetime | None = None, path: Path | None = None) -> None:
        """``path``: the log's own (a client named it); else a new one in ``folder``."""
        self.path = path or new_session_path(folder, started)
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
        if final.revised:
            record["revised"] = True
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


@dataclass(frozen=True)
class Logged:
    """A Final as the log keeps it, with when it was written."""

    final: Final
    wall: datetime


def read(path: Path) -> list[Final]:
    """A session log's Finals, in the order they were written."""
    return [logged.final for logged in read_logged(path)]


def read_logged(path: Path) -> list[Logged]:
    """A session log's lines, in the order they were first written, each as its latest
    revision says (with the time of the first: when it was said). A last line cut short
    (the machine lost power mid-write) is left out; every line before it was on disk."""
    records: list[Logged] = []
    #: Where each span's line is in ``records``: a revision takes its place.
    places: dict[tuple[str, int, int], int] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if index == len(lines) - 1:
                break
            raise ValueError(f"{path}, line {index + 1}: not a session log record") from None
        final = Final(source=record["source"], start=record["start"], end=record["end"],
                      text=record["text"], language="",
                      words=[Word(w["word"], w["start"], w["end"], w["probability"]) for w in record["words"]],
                      echo=record.get("echo", False), revised=record.get("revised", False))
        span = (final.source, final.start, final.end)
        if final.revised and span in places:
            first = records[places[span]]
            records[places[span]] = Logged(msgspec.structs.replace(final, echo=first.final.echo), first.wall)
            continue
        places[span] = len(records)
        records.append(Logged(final, datetime.fromisoformat(record["wall"])))
    return records


def logged_sessions() -> list[Path]:
    """Every session's log, oldest first; one clear error where there is none."""
    logs = sorted(sessions_dir().glob("*.jsonl"))
    if not logs:
        raise EarwigError(f"no session has been logged yet (in {sessions_dir()})", "run `earwig` or `earwig dictate` first")
    return logs


def find_session(name: str | None) -> Path:
    """A session's log by its name (``earwig export --list``), a path, or None / "last" for
    the latest; one clear error where there is none."""
    if name in (None, "last"):
        return logged_sessions()[-1]
    path = Path(name).expanduser()
    path = path if path.exists() else sessions_dir() / f"{name}.jsonl"
    if not path.exists():
        raise EarwigError(f"no session {name!r}", "`earwig export --list` names them")
    return path


def audio_path(log: Path, source: Source) -> Path:
    """Where a session's audio of ``source`` is kept: beside its log."""
    return log.with_name(f"{log.stem}-{source}.flac")
