"""The session log: every Final of a session, one JSON line each, written and fsync'd before
anyone is shown the Final. Whatever earwig showed, it kept.

Why written by the session's keeper (``session.keeper``), in the supervisor's process: every
Final passes through it on its way to the screen, dictation and the command line, so
logging there covers them all, and before any of them.

Where: ``$XDG_DATA_HOME/earwig/sessions/<started>-<pid>.jsonl``, mode 0600 in a 0700
folder. A line: ``{"source", "start", "end", "wall", "text", "words": [{"word", "start",
"end", "probability"}], "model"}``, positions in samples since the source started, ``wall``
the local time the Final was written (ISO 8601); ``"echo": true`` on a mic Final that
repeats the speakers (``echo_filter``), which nothing shows or exports; ``"revised": true`` on
a line read again (the monitor's retry, ``earwig ctl retry``). A revision is appended, never
written over the line: a reader takes the latest record of each span, in the place of the
first (``read_session``).

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


class _WordRecord(msgspec.Struct):
    word: str
    start: int
    end: int
    probability: float


class _Record(msgspec.Struct):
    """One line of the log, as ``SessionLog.append`` writes it."""

    source: Source
    start: int
    end: int
    wall: datetime
    text: str
    words: list[_WordRecord] = []
    echo: bool = False
    revised: bool = False


@dataclass
class SessionRead:
    """A session log's lines, and the lines that are not records: a crash or a full disk
    can leave a line cut short or blank, and one bad line must not cost the rest."""

    logged: list[Logged]
    #: Line numbers (from 1) that were left out.
    damaged: list[int]

    @property
    def finals(self) -> list[Final]:
        return [logged.final for logged in self.logged]

    def damage(self, path: Path) -> str | None:
        """One line saying what was left out, or None when nothing was."""
        if not self.damaged:
            return None
        lines = ", ".join(map(str, self.damaged[:5])) + (", ..." if len(self.damaged) > 5 else "")
        return f"{path}: {len(self.damaged)} damaged line(s) left out (line {lines}); the rest is read"


def read(path: Path) -> list[Final]:
    """A session log's Finals, in the order they were written."""
    return read_session(path).finals


def read_session(path: Path) -> SessionRead:
    """A session log's lines, in the order they were first written, each as its latest
    revision says (with the time of the first: when it was said). A line that is not a
    record (cut short, blank, not JSON, not UTF-8, a record without its fields) is left out
    and counted. A log that cannot be read at all is one EarwigError."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise EarwigError(f"cannot read the session log {path}: {error.strerror or error}",
                          "check that it is a file you may read") from None
    records: list[Logged] = []
    damaged: list[int] = []
    #: Where each span's line is in ``records``: a revision takes its place.
    places: dict[tuple[str, int, int], int] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = msgspec.json.decode(line, type=_Record)
        except (msgspec.DecodeError, msgspec.ValidationError):
            damaged.append(number)
            continue
        final = Final(source=record.source, start=record.start, end=record.end, text=record.text, language="",
                      words=[Word(w.word, w.start, w.end, w.probability) for w in record.words],
                      echo=record.echo, revised=record.revised)
        span = (final.source, final.start, final.end)
        if final.revised and span in places:
            first = records[places[span]]
            records[places[span]] = Logged(msgspec.structs.replace(final, echo=first.final.echo), first.wall)
            continue
        places[span] = len(records)
        records.append(Logged(final, record.wall))
    return SessionRead(records, damaged)


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
