"""The session's audio: each source's ring, as the capture actors wrote it, into a FLAC file
beside the session log, so a Final can be heard again: while the monitor's session runs
(deleted at its end), and after it with ``--keep-audio``.

Why the rings' own positions: frame ``n`` of ``<session>-<source>.flac`` is sample ``n`` of
the source, the unit of every ``start``/``end`` in the session log, so a Final's audio is
``file[start:end]`` with no bookkeeping. Audio the keeper fell a whole ring behind on (it
never should: it reads twice a second) is written as silence, so positions still line up.

Why from the rings the supervisor holds (``session.keeper`` reads them in its process): they
last the whole session, so what a restarted capture actor wrote is kept without a gap, and
the files close after the last Final.

Audio meant to go at the session's end has a marker beside it (``<session>.audio-until-end``)
while the session runs: a supervisor killed before its end (SIGKILL, the power) leaves the
marker too, and the next session deletes that audio (``remove_abandoned``) once the
process named in it is gone. Nobody's words stay on disk because earwig was killed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import psutil
import soundfile

from earwig.config import SAMPLE_RATE
from earwig.messages import Source
from earwig.shm import Ring, RingReader
from earwig.session.log import audio_path

KEEP_EVERY_S = 0.5
#: The suffix of the marker that says a session's audio goes when the session ends.
UNTIL_END = ".audio-until-end"


def remove_abandoned(folder: Path) -> list[Path]:
    """Delete the audio of sessions that meant to delete it at their end and were killed
    first (their process, named in the session's name, is gone); the files deleted."""
    removed = []
    for marker in folder.glob(f"*{UNTIL_END}"):
        session = marker.name.removesuffix(UNTIL_END)
        pid = session.rsplit("-", 1)[-1]
        if pid.isdigit() and psutil.pid_exists(int(pid)):
            continue
        for path in folder.glob(f"{session}-*.flac"):
            path.unlink(missing_ok=True)
            removed.append(path)
        marker.unlink(missing_ok=True)
    return removed


class SessionAudio:
    def __init__(self, session_log: Path, rings: dict[Source, str], kept_after: bool = True) -> None:
        """``rings``: the PCM ring of each source to keep; ``kept_after``: the files stay
        once the session ends (else they are there while it runs, so that any line on
        screen can be played again, and deleted at its end)."""
        self.paths = {source: audio_path(session_log, source) for source in rings}
        self._kept_after = kept_after
        self._marker = session_log.with_name(session_log.stem + UNTIL_END)
        self._ring_names = rings
        self._readers: dict[Source, RingReader] = {}
        self._files: dict[Source, soundfile.SoundFile] = {}
        #: Why the audio cannot be kept, once it could not; None while it works.
        self.problem: str | None = None

    def start(self, rings: dict[str, Ring]) -> None:
        """Read the rings from their first sample on (0600 files, like the log)."""
        try:
            self._marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            remove_abandoned(self._marker.parent)
            if not self._kept_after:
                self._marker.touch(0o600)
            for source, name in self._ring_names.items():
                path = self.paths[source]
                # libsndfile writes the descriptor itself: a failed write (a full disk) is an
                # error it returns, where a Python file object's raised inside its callback
                # and was printed as a traceback.
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                self._files[source] = soundfile.SoundFile(descriptor, "w", SAMPLE_RATE, 1, "PCM_16",
                                                          format="FLAC", closefd=True)
                self._readers[source] = rings[name].reader(start=0)
        except (OSError, soundfile.LibsndfileError) as error:
            self._failed(error)

    def keep(self) -> None:
        """Append what the rings took since the last call. A line is read back from the file
        (played, retried) while the session still writes it: all of it is in the file but
        the FLAC encoder's block in progress (a quarter of a second of the newest audio)."""
        try:
            for source, reader in self._readers.items():
                batch = reader.read()
                if batch is None:
                    continue
                if batch.lost:
                    self._files[source].write(np.zeros(batch.lost * batch.data.shape[1], np.float32))
                self._files[source].write(batch.data.reshape(-1))
        except (OSError, soundfile.LibsndfileError) as error:
            self._failed(error)

    def close(self) -> None:
        """The last of the audio, then the files; a file that cannot be finished (the disk
        filled) is reported, never raised: the supervisor still has rings to unlink."""
        self.keep()
        for file in self._files.values():
            try:
                file.close()
            except (OSError, soundfile.LibsndfileError) as error:
                self._failed(error)
        self._files.clear()
        self._readers.clear()
        if not self._kept_after:
            for path in self.paths.values():
                path.unlink(missing_ok=True)
            self._marker.unlink(missing_ok=True)

    def _failed(self, error: Exception) -> None:
        folder = next(iter(self.paths.values())).parent
        reason = getattr(error, "strerror", None) or str(error)
        if isinstance(error, soundfile.LibsndfileError):  # its "System error." names no cause
            try:
                reason = f"a write failed ({shutil.disk_usage(folder).free // 2**20} MB free there)"
            except OSError:
                reason = "a write failed"
        if self.problem is None:
            self.problem = f"cannot keep the session's audio in {folder}: {reason}"
        self._readers.clear()
